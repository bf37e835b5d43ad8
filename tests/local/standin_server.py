"""A model server with ``timonel serve``'s flags and TF Serving's REST status, without TensorFlow.

The controller's process handling (start, probe, crash, restart, stop) is tested with it in well
under a second per process; the lifecycle tests run the real ``timonel serve``. It serves the
highest numeric version folder under ``--model_base_path``: ``GET /v1/models/<name>`` reports it
AVAILABLE, and ``POST /v1/models/<name>:predict`` answers ``{"predictions": [<version>]}`` so a
test can tell which release answered. A version folder whose ``saved_model.pb`` starts with
``corrupt`` makes it exit with code 1 after printing why, as a server that cannot load its model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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

    class Handler(BaseHTTPRequestHandler):
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
            if self.path == f"/v1/models/{args.model_name}:predict":
                self._send(200, {"predictions": [version]})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def log_message(self, format: str, *values: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.rest_api_port), Handler)
    print(f"serving {args.model_name} version {version} on {args.rest_api_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
