"""Runs a real ``timonel serve`` on 127.0.0.1 free ports for tests that need a server.

Imported by tests as ``import serving``; the caller owns the fixture and its scope.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Served:
    rest: str  # http://127.0.0.1:PORT
    grpc: str  # grpc://127.0.0.1:PORT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def timonel_serve(model: str, base: Path, log: Path, *flags: str) -> Iterator[Served]:
    """``timonel serve`` for ``model`` at ``base``; yields once its latest version is AVAILABLE.

    Fails (RuntimeError with the server's log) if the server exits or is not ready in 90 s.
    """
    grpc_port, rest_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "timonel", "serve", "--port", str(grpc_port),
        "--rest_api_port", str(rest_port), "--model_name", model, "--model_base_path", str(base),
        *flags,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )  # fmt: skip
    rest = f"http://127.0.0.1:{rest_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"timonel serve exited with {process.returncode}: {log.read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"timonel serve was not ready in 90 s: {log.read_text()}")
            try:
                if '"AVAILABLE"' in httpx.get(f"{rest}/v1/models/{model}", timeout=2).text:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield Served(rest=rest, grpc=f"grpc://127.0.0.1:{grpc_port}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
