"""A scripted Kubernetes API server on 127.0.0.1 for testing the client edge without a cluster.

Each request is recorded and answered by a handler the test supplies; watch answers are streamed
as chunked JSON lines and can be cut off mid-stream, as a restarting API server does.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from timonel.kube.client import Cluster


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    code: int = 200
    body: Any = None
    events: list[dict[str, Any]] | None = None  # a watch: one JSON line each
    text: list[str] | None = None  # a streamed text answer (a followed log): one chunk each
    cut: bool = False  # drop the connection after the events instead of ending the stream
    hold: float = 0.0  # seconds to keep a watch open after its events, as a quiet server does


Handler = Callable[[Recorded], Reply]


def status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details,
    }


@dataclass
class FakeApi:
    handler: Handler
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                recorded = Recorded(
                    self.command,
                    url.path,
                    dict(parse_qsl(url.query)),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                api.requests.append(recorded)
                reply = api.handler(recorded)
                if reply.text is not None:
                    chunks = [chunk.encode() for chunk in reply.text]
                elif reply.events is not None:
                    chunks = [json.dumps(event).encode() + b"\n" for event in reply.events]
                else:
                    body = reply.body if reply.body is not None else {}
                    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                    self.send_response(reply.code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(reply.code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                time.sleep(reply.hold)
                if reply.cut:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write_kubeconfig(
        self, path: Path, *, token: str = "s3cret", namespace: str = "ml", context: str = "fake"
    ) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def cluster(self, tmp_path: Path, **kwargs: Any) -> Cluster:
        return Cluster.connect(kubeconfig=self.write_kubeconfig(tmp_path / "kubeconfig", **kwargs))


@dataclass
class Script:
    """Answers requests in order from a list of (method, path-suffix, reply); fails otherwise."""

    steps: list[tuple[str, str, Reply]]

    def __call__(self, request: Recorded) -> Reply:
        if not self.steps:
            return Reply(500, status_body(500, "InternalError", f"unexpected {request.method}"))
        method, suffix, reply = self.steps[0]
        if request.method != method or not request.path.endswith(suffix):
            return Reply(
                500,
                status_body(
                    500,
                    "InternalError",
                    f"expected {method} …{suffix}, got {request.method} {request.path}",
                ),
            )
        self.steps.pop(0)
        return reply


def serve(handler: Handler) -> Iterator[FakeApi]:
    api = FakeApi(handler)
    try:
        yield api
    finally:
        api.close()
