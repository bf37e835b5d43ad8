"""A model server with ``timonel serve``'s flags and TF Serving's REST status, without TensorFlow.

The controller's process handling (start, probe, crash, restart, stop) is tested with it in well
under a second per process; the lifecycle tests run the real ``timonel serve``. It serves the
highest numeric version folder under ``--model_base_path``: ``GET /v1/models/<name>`` reports it
AVAILABLE, and ``POST /v1/models/<name>:predict`` answers ``{"predictions": [<version>]}`` so a
test can tell which release answered. A version folder whose ``saved_model.pb`` starts with
``corrupt`` makes it exit with code 1 after printing why, as a server that cannot load its model.

A version folder written by ``write_classifier`` holds a toy classifier instead, for the rollout
tests: it scores each instance ``[x]`` as the two classes ``[x, 1 - x]``, and its
``behaviour.json`` can make it misbehave on purpose: ``flip`` scores the other class (a model that
predicts differently), ``error_every`` N fails every N-th predict with HTTP 500 and TF Serving's
``{"error": ...}``, ``delay`` answers that many seconds later. These are a stand-in's rather than
SavedModels' because TF Serving's own failures are 500s a graph cannot raise on purpose (a failed
assertion is a 400 the client caused), and slowness in a graph would load the machine's cores
instead of waiting.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from timonel.local.supervisor import ServeArgs


def standin_command(args: ServeArgs) -> Sequence[str]:
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


def write_model(root: Path, version: int = 1, graph: bytes = b"graph") -> Path:
    """A version folder the stand-in serves: ``<root>/<version>/saved_model.pb``."""
    folder = root / str(version)
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(graph)
    return root


BEHAVIOUR_FILE = "behaviour.json"
#: Every answer names the REST port of the process that gave it, so a test sees which replica did.
PORT_HEADER = "Standin-Port"


@dataclass(frozen=True)
class Behaviour:
    """How a toy classifier misbehaves (nothing, by default)."""

    flip: bool = False
    error_every: int = 0
    delay: float = 0.0


GOOD = Behaviour()
ERRORS = Behaviour(error_every=3)
SLOW = Behaviour(delay=0.3)
DIFFERS = Behaviour(flip=True)


def answer(behaviour: Behaviour, count: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The toy classifier's status and reply to its ``count``-th predict, as TF Serving's."""
    if behaviour.delay:
        time.sleep(behaviour.delay)
    if behaviour.error_every and count % behaviour.error_every == 0:
        return 500, {"error": "Internal: the toy model failed on purpose"}
    rows = []
    for (x,) in body["instances"]:
        p = 1.0 - x if behaviour.flip else x
        rows.append([p, 1.0 - p])
    return 200, {"predictions": rows}


def write_classifier(root: Path, behaviour: Behaviour = GOOD, version: int = 1) -> Path:
    """A version folder of the toy classifier with ``behaviour``: ``<root>/<version>/``."""
    write_model(root, version=version, graph=b"toy classifier")
    (root / str(version) / BEHAVIOUR_FILE).write_text(json.dumps(asdict(behaviour)))
    return root


def write_release(
    repo: Path, name: str, version: int, *, tensorflow_version: str = "2.21.0"
) -> str:
    """A published release of a stand-in model: ``<repo>/<name>/v<N>`` with its ``timonel.json``
    (so the storage initializer downloads and verifies it, and deploy reads its manifest).
    Timonel's modules are imported here, not at the top, to keep the server script's start quick.
    """
    from timonel.releases.layout import MANIFEST_NAME, release_dirname
    from timonel.releases.manifest import FileEntry, Manifest
    from timonel.signatures import SignatureDef, TensorInfo

    folder = write_model(repo / name / release_dirname(version), version=version)
    graph = (folder / str(version) / "saved_model.pb").read_bytes()
    tensor = TensorInfo("DT_FLOAT", (-1,), "x:0")
    manifest = Manifest(
        name=name,
        version=version,
        signature_name="serving_default",
        signatures={"serving_default": SignatureDef({"x": tensor}, {"y": tensor})},
        tensorflow_version=tensorflow_version,
        files=(
            FileEntry(f"{version}/saved_model.pb", len(graph), hashlib.sha256(graph).hexdigest()),
        ),
        created="2026-01-01T00:00:00Z",
        source=os.fspath(folder),
        timonel_version="0",
    )
    (folder / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return os.fspath(folder)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rest_api_port", type=int, required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_base_path", required=True)
    args = parser.parse_args()
    base = Path(args.model_base_path)
    versions = sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        print(f"No versions of servable {args.model_name} found under base path {base}", flush=True)
        return 1
    version = versions[-1]
    graph = base / str(version) / "saved_model.pb"
    if graph.read_bytes().startswith(b"corrupt"):
        print(f"Failed to load servable {args.model_name} version {version}: bad graph", flush=True)
        return 1
    status = {
        "model_version_status": [
            {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK"}}
        ]
    }
    behaviour_file = base / str(version) / BEHAVIOUR_FILE
    behaviour = (
        Behaviour(**json.loads(behaviour_file.read_text())) if behaviour_file.is_file() else None
    )
    lock = threading.Lock()
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header(PORT_HEADER, str(args.rest_api_port))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == f"/v1/models/{args.model_name}":
                self._send(200, status)
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != f"/v1/models/{args.model_name}:predict":
                self._send(404, {"error": f"no route {self.path}"})
            elif behaviour is None:
                self._send(200, {"predictions": [version]})
            else:
                with lock:
                    served[0] += 1
                    count = served[0]
                self._send(*answer(behaviour, count, json.loads(body)))

        def log_message(self, format: str, *values: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.rest_api_port), Handler)
    print(f"serving {args.model_name} version {version} on {args.rest_api_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
