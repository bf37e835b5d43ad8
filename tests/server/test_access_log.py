"""The access log's handler: lines wait for ``flush`` and leave in one write, in order."""

from __future__ import annotations

import io
import json
import logging

from timonel.server.app import BatchedStreamHandler, JsonLogFormatter


class _CountingStream(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_records_are_written_in_one_write_per_flush_as_json_lines() -> None:
    stream = _CountingStream()
    target = logging.StreamHandler(stream)
    target.setFormatter(JsonLogFormatter())
    handler = BatchedStreamHandler(target)
    logger = logging.getLogger("timonel.test.access")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for n in range(3):
        logger.info("", extra={"fields": {"n": n, "status": "OK"}})
    assert stream.getvalue() == ""
    handler.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["n"], line["status"], line["logger"]) for line in lines] == [
        (0, "OK", "timonel.test.access"),
        (1, "OK", "timonel.test.access"),
        (2, "OK", "timonel.test.access"),
    ]
    assert stream.writes == 1
    logger.info("", extra={"fields": {"n": 3}})
    handler.close()
    assert json.loads(stream.getvalue().splitlines()[-1])["n"] == 3
