"""Runs real servers (``timonel serve`` or another) on 127.0.0.1 free ports, for tests and benches.

Imported by tests as ``import serving`` (and by ``bench/serve.py``); the caller owns the fixture and
its scope.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclass(frozen=True)
class Served:
    rest: str  # http://127.0.0.1:PORT
    grpc: str  # grpc://127.0.0.1:PORT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, text: str = "", *, without: str = "") -> Callable[[], bool]:
    """A readiness probe: ``url`` answers 200 with ``text`` in its body and ``without`` not."""

    def probe() -> bool:
        try:
            reply = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return False
        body = reply.text
        return reply.status_code == 200 and text in body and not (without and without in body)

    return probe


@contextmanager
def running(
    command: list[str], log: Path, ready: Callable[[], bool], *, timeout: float = 90
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in its own process group, output in ``log``; yields once ``ready()`` is true.

    Fails (RuntimeError with the end of the log) if the process exits or is not ready within
    ``timeout`` seconds; on the way out the group gets SIGTERM, then SIGKILL after 20 s.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=ENV
        )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{command[:4]} exited with {process.returncode}: {log.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{command[:4]} was not ready in {timeout:g} s: {log.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


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
    rest = f"http://127.0.0.1:{rest_port}"
    with running(command, log, answers(f"{rest}/v1/models/{model}", '"AVAILABLE"')):
        yield Served(rest=rest, grpc=f"grpc://127.0.0.1:{grpc_port}")
