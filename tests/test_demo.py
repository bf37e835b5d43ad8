"""``make demo`` is the main job: it must run end to end and tell what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_the_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TIMONEL_LOCAL_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for line in (
        "== package them as pinned releases",
        "published: [1, 2]",
        "kind: InferenceService",
        "ready=True",
        "digits-predictor-00002 30%, digits-predictor-00001 70% [prev]",
        "digits-predictor-00002 100%",
        "gRPC agrees with REST: True",
        "digits deleted",
        "timonel local down",
    ):
        assert line in out, line
