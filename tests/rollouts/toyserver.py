"""A toy classifier served with TF Serving's REST API, whose model can be good or bad on purpose.

The rollout tests on ``timonel local`` run it as each revision's model server (the controller's
``command``, with ``timonel serve``'s flags), so a candidate that fails, is slow or predicts
differently is a model folder, rolled out like any release. The model scores each instance
``[x]`` as the two classes ``[x, 1 - x]``; a ``behaviour.json`` beside ``saved_model.pb`` in the
version folder makes it:

- ``flip``: score the other class (``[1 - x, x]``): a model that predicts differently;
- ``error_every`` N: fail every N-th predict with HTTP 500 and TF Serving's ``{"error": ...}``;
- ``delay`` seconds: answer that much later.

It is a stand-in rather than a SavedModel because TF Serving's own failures are 500s the model
cannot be made to raise on purpose (a graph's failed assertion is a 400 the client caused), and
slowness in a graph would load the machine's two cores instead of waiting. The script imports
nothing from the tests, since the controller runs it as a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from timonel.local.supervisor import ServeArgs

BEHAVIOUR_FILE = "behaviour.json"


@dataclass(frozen=True)
class Behaviour:
    flip: bool = False
    error_every: int = 0
    delay: float = 0.0


GOOD = Behaviour()
ERRORS = Behaviour(error_every=3)
SLOW = Behaviour(delay=0.3)
DIFFERS = Behaviour(flip=True)


def answer(behaviour: Behaviour, count: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The ``count``-th predict's status and reply, as TF Serving writes them."""
    if behaviour.delay:
        time.sleep(behaviour.delay)
    if behaviour.error_every and count % behaviour.error_every == 0:
        return 500, {"error": "Internal: the toy model failed on purpose"}
    rows = []
    for (x,) in body["instances"]:
        p = 1.0 - x if behaviour.flip else x
        rows.append([p, 1.0 - p])
    return 200, {"predictions": rows}


def write_model(release: Path, behaviour: Behaviour = GOOD, version: int = 1) -> Path:
    """A release folder the toy server serves: ``<release>/<version>/`` with the behaviour."""
    folder = release / str(version)
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"toy classifier")
    (folder / BEHAVIOUR_FILE).write_text(json.dumps(asdict(behaviour)))
    return release


def toy_command(args: ServeArgs) -> Sequence[str]:
    """The supervisor's command for this script, with the flags ``timonel serve`` takes."""
    return [
        sys.executable,
        __file__,
        "serve",
        f"--port={args.grpc_port}",
        f"--rest_api_port={args.rest_port}",
        f"--model_name={args.model_name}",
        f"--model_base_path={args.model_base_path}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rest_api_port", type=int, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_base_path", required=True)
    args = parser.parse_args()
    base = Path(args.model_base_path)
    version = max(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())
    behaviour = Behaviour(**json.loads((base / str(version) / BEHAVIOUR_FILE).read_text()))
    status = {
        "model_version_status": [
            {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK"}}
        ]
    }
    lock = threading.Lock()
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == f"/v1/models/{args.model_name}":
                self._send(200, status)
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            if self.path != f"/v1/models/{args.model_name}:predict":
                self._send(404, {"error": f"no route {self.path}"})
                return
            with lock:
                served[0] += 1
                count = served[0]
            self._send(*answer(behaviour, count, body))

        def log_message(self, format: str, *values: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.rest_api_port), Handler)
    print(f"serving {args.model_name} version {version} on {args.rest_api_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
