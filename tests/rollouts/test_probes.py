from __future__ import annotations

import json
from pathlib import Path

import pytest
from local.standin_server import DIFFERS, ERRORS, GOOD, SLOW, Behaviour

from rollouts.fakeclock import FakeClock
from rollouts.toyrevisions import Revision, probe_bodies
from timonel.errors import SpecError
from timonel.rollouts.gates import Verdict, judge
from timonel.rollouts.plan import Gates
from timonel.rollouts.probes import ProbeSource, load_probe_data
from timonel.rollouts.sources import Endpoint, Pair


def gather(canary_behaviour: Behaviour, clock: FakeClock, requests: int = 30):  # type: ignore[no-untyped-def]  # test helper
    with (
        Revision("m-predictor-00001") as stable,
        Revision("m-predictor-00002", canary_behaviour) as canary,
    ):
        pair = Pair("m", Endpoint(stable.name, stable.url), Endpoint(canary.name, canary.url))
        source = ProbeSource(probe_bodies(), requests=requests)
        start = clock.now()
        return source.gather(pair, start, start + 60.0, clock)


@pytest.mark.parametrize(
    ("behaviour", "verdict", "failed"),
    [
        (GOOD, Verdict.PASS, ()),
        (ERRORS, Verdict.FAIL, ("error-rate",)),
        (SLOW, Verdict.FAIL, ("latency",)),
        (DIFFERS, Verdict.FAIL, ("agreement",)),
    ],
)
def test_probes_catch_what_each_canary_does_wrong(
    behaviour: Behaviour, verdict: Verdict, failed: tuple[str, ...], clock: FakeClock
) -> None:
    evidence = gather(behaviour, clock)
    decision = judge(Gates(min_requests=20, latency_slack_ms=50.0), [evidence])
    assert (decision.verdict, decision.failed_gates) == (verdict, failed)


def test_probes_spread_over_the_window_and_count_every_request(clock: FakeClock) -> None:
    evidence = gather(ERRORS, clock, requests=30)
    assert clock.slept == pytest.approx(60.0)
    assert (evidence.stable.requests, evidence.stable.errors) == (30, 0)
    assert (evidence.canary.requests, evidence.canary.errors) == (30, 10)
    assert evidence.agreement is not None and evidence.agreement.compared == 40  # 20 answered x 2


def test_probe_data_reads_a_list_or_one_body_per_line(tmp_path: Path) -> None:
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(probe_bodies(3)))
    lines = tmp_path / "lines.jsonl"
    lines.write_text("\n".join(json.dumps(b) for b in probe_bodies(3)))
    assert load_probe_data(listed) == load_probe_data(lines) == probe_bodies(3)


@pytest.mark.parametrize("text", ["{not json", '[{"signature_name": "x"}]', "[]"])
def test_probe_data_that_is_not_predict_bodies_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "probes.json"
    path.write_text(text)
    with pytest.raises(SpecError, match="predict bodies"):
        load_probe_data(path)


def test_no_probe_requests_says_how_to_give_some() -> None:
    with pytest.raises(SpecError, match="--probe-data FILE"):
        ProbeSource([])
