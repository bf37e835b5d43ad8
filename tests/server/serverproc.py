"""A ``python -m timonel serve`` child process on free ports, for the server's tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import serving


@dataclass
class ServerProcess:
    """One ``python -m timonel serve`` child with its ports and captured output."""

    process: subprocess.Popen[bytes]
    grpc_port: int
    rest_port: int
    stdout: Path
    stderr: Path

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.grpc_target)

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the REST port answers (ports open only once the models are loaded)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"timonel serve exited with {self.process.returncode}: "
                    f"{self.stderr.read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"timonel serve not ready in {timeout} s: {self.stderr.read_text()}"
                )
            try:
                httpx.get(f"{self.rest}/v1/models/_readiness_probe", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def spawn(tmp: Path, *flags: str) -> ServerProcess:
    """Start ``timonel serve`` on free ports with ``flags``; does not wait for readiness."""
    grpc_port, rest_port = serving.free_port(), serving.free_port()
    stdout, stderr = tmp / "stdout.log", tmp / "stderr.log"
    command = [
        sys.executable, "-m", "timonel", "serve", f"--port={grpc_port}",
        f"--rest_api_port={rest_port}", *flags,
    ]  # fmt: skip
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, start_new_session=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )  # fmt: skip
    return ServerProcess(process, grpc_port, rest_port, stdout, stderr)


@contextmanager
def running(tmp: Path, *flags: str) -> Iterator[ServerProcess]:
    """``timonel serve`` with ``flags``, ready, for the block; terminated after it."""
    process = spawn(tmp, *flags)
    try:
        process.wait_ready()
        yield process
    finally:
        process.terminate()


#: The ``server_factory`` fixture: ``start(*flags, ready=True)`` → a running ServerProcess.
StartServer = Callable[..., ServerProcess]
