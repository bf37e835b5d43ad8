"""The access log: a JSON line per answered request, on stderr beside the server's other logs.

The event loop answers every request and is what limits a small model's throughput, and a
``logging`` call per request (a ``LogRecord``, the caller's frame looked up, a handler's lock)
costs it about a tenth of such a request. So ``add`` queues a request's fields and the time, and
``flush`` (every half second, off the loop) formats the queued lines and writes them in one
write, under the target handler's lock so they never interleave with other log lines.

``AccessLog`` is the ``timonel.server.access`` logger's handler, so that logger's level turns
the log on and off, and a record logged to it the usual way joins the same queue.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from typing import Any

import orjson

LOGGER = "timonel.server.access"


class AccessLog(logging.Handler):
    """Queues access-log lines and writes them to ``target``'s stream in one write per flush."""

    def __init__(self, target: logging.StreamHandler[Any]) -> None:
        super().__init__()
        self.target = target
        self._lines: deque[tuple[float, dict[str, Any]]] = deque()

    def add(self, fields: dict[str, Any]) -> None:
        """One request's line: its fields, stamped with the time now."""
        self._lines.append((time.time(), fields))

    def emit(self, record: logging.LogRecord) -> None:
        fields = dict(getattr(record, "fields", {}))
        if message := record.getMessage():
            fields = {"msg": message, **fields}
        self._lines.append((record.created, fields))

    def flush(self) -> None:
        lines = []
        while self._lines:
            lines.append(self._lines.popleft())
        if not lines:
            return
        text = "".join(
            orjson.dumps(
                {"ts": round(ts, 6), "level": "info", "logger": LOGGER, **fields}, default=str
            ).decode()
            + "\n"
            for ts, fields in lines
        )
        with self.target.lock or contextlib.nullcontext():
            self.target.stream.write(text)
            self.target.stream.flush()

    def close(self) -> None:
        self.flush()
        super().close()


def access_log() -> AccessLog | None:
    """The access log when the ``timonel.server.access`` logger takes INFO lines, else None."""
    logger = logging.getLogger(LOGGER)
    if not logger.isEnabledFor(logging.INFO):
        return None
    return next((h for h in logger.handlers if isinstance(h, AccessLog)), None)
