"""``make demo`` is the main job: it must run end to end and tell what it did.

It is also the suite's end-to-end run of the ``train_and_deploy`` pipeline with kfp.local against
``timonel local``: v1 replaces, v2 canaries at 30%, both smoke tested over REST and gRPC.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from timonel import local

# Two pipeline runs and a rollout: longer than the suite's per-test timeout allows.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_the_demo_runs_the_pipeline_twice_and_promotes(tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TIMONEL_LOCAL_HOME": str(tmp_path)}
    env.pop("KUBECONFIG", None)
    try:
        result = subprocess.run(
            [sys.executable, str(DEMO), "--down"],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
    finally:
        local.down(home=local.Home(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for line in (
        "== pipeline train_and_deploy, v1",
        "traffic: digits-predictor-00001 100%",
        "gRPC 127.0.0.1:",
        "agrees with REST: True",
        "== pipeline train_and_deploy, v2 as a canary",
        "traffic: digits-predictor-00002 30% [latest], digits-predictor-00001 70% [prev]",
        "== v2 rolled out progressively",
        "step-60: canary at 60%",
        "promoted: every phase passed (step-60)",
        "rollout report: ",
        "timonel local down",
        "Next: `timonel pipeline run train_and_deploy --local",
    ):
        assert line in out, line
    report = Path(out.split("rollout report: ", 1)[1].split("\n", 1)[0])
    assert report.read_text().startswith("<!DOCTYPE html>"), "the rollout's HTML report"
    # kfp.local logs each task's end; where (stdout or stderr) depends on the logging setup.
    logs = result.stdout + result.stderr
    smoke_tests = logs.count("Task \x1b[96m'smoke-test'\x1b[0m finished with status")
    assert smoke_tests == 2, "each run smoke tests what it deployed"
