"""Toy revisions for probe tests: the stand-in's toy classifier (``local.standin_server``) on
127.0.0.1 in this process, no cluster around it.

``Revision(name, behaviour)`` serves ``POST /v1/models/<any>:predict`` with TF Serving's REST
format: class scores ``[x, 1 - x]`` for each instance ``[x]``, or as ``behaviour`` says.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.standin_server import GOOD, Behaviour, answer


class Revision:
    def __init__(self, name: str, behaviour: Behaviour = GOOD) -> None:
        self.name = name
        self.behaviour = behaviour
        self.count = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.count += 1
            count = self.count
        return answer(self.behaviour, count, body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        revision = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                code, reply = revision.answer(json.loads(self.rfile.read(length)))
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def __enter__(self) -> Revision:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def probe_bodies(count: int = 10) -> list[dict[str, Any]]:
    """Predict bodies of two instances each, scores spread so every class appears."""
    return [{"instances": [[0.04 + 0.1 * i], [0.96 - 0.1 * i]]} for i in range(count)]
