"""The rollout report: JSON with every number, and an HTML page that headless Chromium (Debian's
``chromium``) loads without a console error, showing the chart and every phase."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rollouts.fakeclock import FakeClock
from rollouts.faketraffic import FakeTraffic
from rollouts.test_driver import Scripted, good
from timonel.rollouts.driver import RolloutResult, drive
from timonel.rollouts.plan import Gates, RolloutPlan
from timonel.rollouts.report import write_report
from timonel.rollouts.state import RolloutState

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def rolled_back_at_step_25(clock: FakeClock) -> RolloutResult:
    plan = RolloutPlan(steps=(10, 25, 50, 100), shadow=60.0, gates=Gates(min_requests=20))
    traffic = FakeTraffic()
    source = Scripted(lambda p: (100, 12, 21.0, 100.0) if p == 25 else good(p))
    source.traffic = traffic
    return drive(traffic, RolloutState("gs://repo/m/v2", plan), [source], clock=clock)


def test_report_json_holds_every_phase_and_its_numbers(tmp_path: Path, clock: FakeClock) -> None:
    result = rolled_back_at_step_25(clock)
    write_report(result, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["outcome"] == "rolled-back"
    assert [p["name"] for p in report["phases"]] == ["shadow", "step-10", "step-25"]
    failed = report["phases"][-1]
    assert failed["verdict"] == "fail" and "0.1200 above stable" in failed["reason"]
    canary = failed["windows"][0]["evidence"][0]["canary"]
    assert (canary["requests"], canary["errors"], canary["error_rate"]) == (100, 12, 0.12)


@pytest.mark.slow
def test_report_html_opens_in_headless_chromium(tmp_path: Path, clock: FakeClock) -> None:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("Debian's chromium is not installed: run `make install`")
    page = write_report(rolled_back_at_step_25(clock), tmp_path / "report")
    profile = tmp_path / "profile"
    common = [binary, *_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    assert '<svg id="chart"' in dom.stdout
    for phase in ("shadow", "step-10", "step-25"):
        assert f'data-phase="{phase}"' in dom.stdout
        assert f">{phase}</text>" in dom.stdout  # on the chart too
    screenshot = page.with_name("report.png")
    shot = subprocess.run(
        [*common, f"--screenshot={screenshot}", "--window-size=1000,700", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.returncode == 0, shot.stderr
    assert screenshot.stat().st_size > 10_000
