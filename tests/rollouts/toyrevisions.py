"""Toy revisions for rollout tests: TF Serving's REST predict with a chosen behaviour, and the
queue-proxy's request histogram for Prometheus to scrape.

``Revision(name, behaviour)`` serves ``POST /v1/models/<any>:predict`` on 127.0.0.1: it answers
``{"predictions": [[p, 1-p], ...]}`` (class scores for each instance ``[x]``, with p = x), or
with ``flip`` the other class, fails every ``error_every``-th request with HTTP 500 as TF
Serving does, and waits ``delay`` seconds first when asked. ``GET /metrics`` exports
``kn_serving_invocation_duration_seconds`` with the labels and buckets Knative's queue-proxy
uses (``pkg/queue/request_metric.go``), recorded for each predict request.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from rollouts.toyserver import GOOD, Behaviour, answer

#: Knative's queue-proxy latency buckets, in seconds.
KNATIVE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


class Revision:
    def __init__(self, name: str, behaviour: Behaviour = GOOD) -> None:
        self.name = name
        self.behaviour = behaviour
        self.registry = CollectorRegistry()
        self.histogram = Histogram(
            "kn_serving_invocation_duration_seconds",
            "The duration of task execution",
            ["kn_revision_name", "http_response_status_code"],
            buckets=KNATIVE_BUCKETS,
            registry=self.registry,
        )
        for code in ("200", "500"):  # series exist before the first request, as counters at 0
            self.histogram.labels(name, code)
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

            def _send(self, code: int, data: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, generate_latest(revision.registry), "text/plain; version=0.0.4")

            def do_POST(self) -> None:
                started = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                code, reply = revision.answer(json.loads(self.rfile.read(length)))
                self._send(code, json.dumps(reply).encode(), "application/json")
                revision.histogram.labels(revision.name, str(code)).observe(
                    time.perf_counter() - started
                )

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
