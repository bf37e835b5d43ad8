"""The model lifecycle under load: versions 1→2→3 appear, a broken 4 fails, nobody notices."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import tfmodels
from serverproc import StartServer

pytestmark = pytest.mark.slow


def _status(rest: str) -> dict[str, tuple[str, str]]:
    reply = httpx.get(f"{rest}/v1/models/hpt", timeout=10).json()
    return {
        s["version"]: (s["state"], s["status"]["error_code"]) for s in reply["model_version_status"]
    }


def _wait_for(
    rest: str, version: str, state: str, timeout: float = 90
) -> dict[str, tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(rest)
        if status.get(version, ("",))[0] == state:
            return status
        time.sleep(0.2)
    raise AssertionError(f"version {version} not {state} in {timeout} s: {_status(rest)}")


def _publish(staged: Path, base: Path) -> None:
    """Move a finished version folder into place in one rename, as TF Serving advises."""
    os.rename(staged, base / staged.name)


def test_versions_swap_under_load_and_a_broken_version_leaves_the_old_one_serving(
    tmp_path: Path, server_factory: StartServer
) -> None:
    base, staging = tmp_path / "hpt", tmp_path / "staging"
    for version in (1, 2, 3):
        tfmodels.write_half_plus_two(staging / str(version), offset=float(version))
    (staging / "4").mkdir()
    (staging / "4" / "saved_model.pb").write_bytes(b"not a SavedModel")
    base.mkdir()
    shutil.move(staging / "1", base / "1")
    server = server_factory(
        "--model_name=hpt",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=1",
        "--max_num_load_retries=0",
    )

    answers: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.rest, timeout=10) as client:
            deadline = time.monotonic() + 240
            for _ in range(200_000):  # bounded in count and in time
                if stop.is_set() or time.monotonic() > deadline:
                    return
                reply = client.post("/v1/models/hpt:predict", json={"instances": [0.0]})
                if reply.status_code != 200:
                    failures.append(reply.text)
                else:
                    answers.append(reply.json()["predictions"][0])

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(600):  # version 1 answers under load before the swaps begin
            if answers or failures:
                break
            time.sleep(0.05)
        for version in (2, 3):
            _publish(staging / str(version), base)
            status = _wait_for(server.rest, str(version), "AVAILABLE")
            status = _wait_for(server.rest, str(version - 1), "END")
            assert status[str(version - 1)] == ("END", "OK")
        _publish(staging / "4", base)
        status = _wait_for(server.rest, "4", "END")
        time.sleep(1.0)
        status = _status(server.rest)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert status["4"][0] == "END" and status["4"][1] != "OK"
    assert status["3"] == ("AVAILABLE", "OK")
    assert failures == []
    assert set(answers) == {1.0, 2.0, 3.0}  # offset = version; x = 0
    assert answers[-1] == 3.0
    reply = httpx.get(f"{server.rest}/v1/models/hpt/versions/4", timeout=10).json()
    assert reply["model_version_status"][0]["status"]["error_message"]
