from __future__ import annotations

from collections.abc import Callable

import pytest

from rollouts.fakeclock import FakeClock
from rollouts.faketraffic import FakeTraffic
from timonel.errors import RolloutFailed, SpecError
from timonel.kube.records import ROLLOUT_STATE
from timonel.rollouts.driver import ABORTED, PROMOTED, ROLLED_BACK, abort, drive, pair_of
from timonel.rollouts.evidence import Agreement, RevisionEvidence, WindowEvidence
from timonel.rollouts.plan import Gates, RolloutPlan
from timonel.rollouts.sources import Clock, Pair
from timonel.rollouts.state import RolloutState, describe, read_state

V2 = "gs://repo/m/v2"


class Scripted:
    """Evidence made up per phase: ``canary(percent)`` gives (requests, errors, p99, agreed %)."""

    name = "scripted"

    def __init__(self, canary: Callable[[int], tuple[int, int, float, float]]) -> None:
        self.canary = canary
        self.seen: list[Pair] = []
        self.traffic: FakeTraffic | None = None

    def gather(self, pair: Pair, start: float, end: float, clock: Clock) -> WindowEvidence:
        self.seen.append(pair)
        clock.sleep(end - clock.now())
        percent = (
            self.traffic.isvc["spec"]["predictor"]["canaryTrafficPercent"] if self.traffic else 0
        )
        requests, errors, p99, agreed = self.canary(percent)
        return WindowEvidence(
            self.name,
            RevisionEvidence(pair.stable.revision, 100, 0, p99_ms=20.0),
            RevisionEvidence(pair.canary.revision, requests, errors, p99_ms=p99),
            Agreement(100, round(agreed)),
        )


def run(
    canary: Callable[[int], tuple[int, int, float, float]], plan: RolloutPlan, clock: FakeClock
):  # type: ignore[no-untyped-def]  # test helper
    traffic = FakeTraffic()
    source = Scripted(canary)
    source.traffic = traffic
    result = drive(
        traffic, RolloutState(V2, plan), [source], clock=clock, gateway="http://127.0.0.1:8080"
    )
    return traffic, source, result


PLAN = RolloutPlan(steps=(10, 25, 50, 100), interval=60.0, gates=Gates(min_requests=20))


def good(percent: int) -> tuple[int, int, float, float]:
    return 100, 0, 21.0, 100.0


def test_a_good_canary_is_promoted_through_every_step(clock: FakeClock) -> None:
    traffic, _, result = run(good, PLAN, clock)
    assert result.outcome == PROMOTED and result.promoted
    assert [p.name for p in result.phases] == ["step-10", "step-25", "step-50"]  # 100: promote
    assert traffic.calls == [("split", 10), ("split", 25), ("split", 50), ("promote",)]
    assert clock.slept == pytest.approx(3 * 60.0)
    assert traffic.isvc["spec"]["predictor"]["model"]["storageUri"] == V2
    assert ROLLOUT_STATE not in traffic.annotations
    assert result.raise_for_outcome() is result


def test_probes_reach_each_revision_through_its_tag_host(clock: FakeClock) -> None:
    _, source, _ = run(good, PLAN, clock)
    pair = source.seen[0]
    assert (pair.stable.revision, pair.canary.revision) == (
        "m-predictor-00001",
        "m-predictor-00002",
    )
    assert pair.stable.host == "prev-m-predictor.default.example.com"
    assert pair.canary.host == "latest-m-predictor.default.example.com"
    assert pair.canary.url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("canary", "failed_at", "gate", "numbers"),
    [
        (lambda p: (100, 30, 21.0, 100.0), "step-10", "error-rate", "0.3000 above stable"),
        (
            lambda p: (100, 0, 21.0 if p < 50 else 400.0, 100.0),
            "step-50",
            "latency",
            "canary p99 400.0 ms",
        ),
        (lambda p: (100, 0, 21.0, 80.0), "step-10", "agreement", "80/100 examples agree"),
    ],
    ids=["errors", "slow-under-load", "differs"],
)
def test_a_bad_canary_is_rolled_back_at_the_first_gate_it_fails(
    canary: Callable[[int], tuple[int, int, float, float]],
    failed_at: str,
    gate: str,
    numbers: str,
    clock: FakeClock,
) -> None:
    traffic, _, result = run(canary, PLAN, clock)
    assert result.outcome == ROLLED_BACK
    assert result.failed_phase is not None and result.failed_phase.name == failed_at
    assert result.failed_phase.decision.failed_gates == (gate,)
    assert numbers in result.reason
    assert traffic.calls[-1] == ("rollback",)
    assert traffic.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert ROLLOUT_STATE not in traffic.annotations
    with pytest.raises(RolloutFailed, match=f"rolled back {V2}: {failed_at} failed"):
        result.raise_for_outcome()


def test_a_differing_model_is_caught_in_the_shadow_phase_before_taking_traffic(
    clock: FakeClock,
) -> None:
    plan = RolloutPlan(
        steps=(10, 100), shadow=300.0, shadow_percent=50, gates=Gates(min_requests=20)
    )
    traffic, _, result = run(lambda p: (100, 0, 21.0, 80.0), plan, clock)
    assert result.outcome == ROLLED_BACK
    assert [p.name for p in result.phases] == ["shadow"]
    assert traffic.calls == [("split", 0), ("rollback",)]
    assert result.phases[0].mirrored == 50
    assert clock.slept == pytest.approx(300.0)


def test_shadow_mirrors_to_the_candidate_then_steps_stop_mirroring(clock: FakeClock) -> None:
    plan = RolloutPlan(steps=(10, 100), shadow=60.0, gates=Gates(min_requests=20))
    seen: list[dict[str, str]] = []
    traffic = FakeTraffic()
    source = Scripted(lambda p: (seen.append(traffic.annotations), good(p))[1])
    drive(traffic, RolloutState(V2, plan), [source], clock=clock)
    assert seen[0]["timonel.dev/mirror-revision"] == "m-predictor-00002"
    assert seen[0]["timonel.dev/mirror-percent"] == "100"
    assert "timonel.dev/mirror-revision" not in seen[1]
    assert "timonel.dev/mirror-revision" not in traffic.annotations
    assert [(pair.namespace, pair.mirrored) for pair in source.seen] == [
        ("default", 100.0),
        ("default", 0.0),
    ]


class ShadowOnly(Scripted):
    """A source that sees nothing outside the shadow phase, as mirrored traffic."""

    def gather(self, pair: Pair, start: float, end: float, clock: Clock) -> WindowEvidence | None:
        return super().gather(pair, start, end, clock) if pair.mirrored else None


def test_a_source_that_sees_nothing_of_a_step_leaves_it_to_the_others(clock: FakeClock) -> None:
    plan = RolloutPlan(steps=(10, 100), shadow=60.0, gates=Gates(min_requests=20))
    traffic = FakeTraffic()
    mirror = ShadowOnly(good)
    mirror.name = "mirror"
    result = drive(traffic, RolloutState(V2, plan), [mirror, Scripted(good)], clock=clock)
    assert result.promoted
    assert [[e.source for e in p.windows[0]] for p in result.phases] == [
        ["mirror", "scripted"],
        ["scripted"],
    ]


def test_too_few_requests_extends_the_window_then_rolls_back(clock: FakeClock) -> None:
    plan = RolloutPlan(steps=(10, 100), interval=60.0, patience=3, gates=Gates(min_requests=20))
    _, _, result = run(lambda p: (5, 0, 21.0, 100.0), plan, clock)
    assert result.outcome == ROLLED_BACK
    assert len(result.phases[0].windows) == 3
    assert "undecided after 3 windows" in result.reason
    assert clock.slept == pytest.approx(180.0)


class Interrupt(Exception):
    pass


def test_an_interrupted_rollout_is_recorded_resumed_and_promoted(clock: FakeClock) -> None:
    traffic = FakeTraffic()

    def stop_at_50(percent: int) -> tuple[int, int, float, float]:
        if percent == 50:
            raise Interrupt
        return good(percent)

    source = Scripted(stop_at_50)
    source.traffic = traffic
    with pytest.raises(Interrupt):
        drive(traffic, RolloutState(V2, PLAN), [source], clock=clock)
    state = read_state(traffic.recorded)
    assert state is not None and (state.phase_name, state.passed) == (
        "step-50",
        ("step-10", "step-25"),
    )
    assert describe(state, "m").startswith(
        "unfinished rollout of gs://repo/m/v2 at step-50 (2 of 3 phases passed): continue with "
        "`timonel rollout m --resume`"
    )
    assert traffic.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 50

    resumed = Scripted(good)
    resumed.traffic = traffic
    result = drive(traffic, state, [resumed], clock=clock)
    assert result.outcome == PROMOTED
    assert result.passed_before == ("step-10", "step-25")
    assert [p.name for p in result.phases] == ["step-50"]
    assert read_state(traffic.recorded) is None


def test_an_interrupted_rollout_is_aborted(clock: FakeClock) -> None:
    traffic = FakeTraffic()
    source = Scripted(lambda p: (_ for _ in ()).throw(Interrupt) if p == 25 else good(p))
    source.traffic = traffic
    with pytest.raises(Interrupt):
        drive(traffic, RolloutState(V2, PLAN), [source], clock=clock)
    state = read_state(traffic.recorded)
    assert state is not None
    result = abort(traffic, state)
    assert result.outcome == ABORTED and "aborted at step-25" in result.reason
    assert traffic.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert read_state(traffic.recorded) is None


def test_pair_of_needs_the_tag_routes(clock: FakeClock) -> None:
    traffic = FakeTraffic()
    traffic.canary(V2, 10, tag_routing=False)  # KServe then gives the latest revision no URL
    with pytest.raises(Exception, match="enable-tag-routing"):
        pair_of(traffic.isvc)


def test_a_record_timonel_did_not_write_says_how_to_roll_back_and_clear_it() -> None:
    traffic = FakeTraffic()
    traffic.record({ROLLOUT_STATE: "{not json"})
    with pytest.raises(SpecError) as caught:
        read_state(traffic.recorded)
    assert str(caught.value).startswith(
        "the timonel.dev/rollout annotation of ConfigMap default/m-rollout is not a rollout state "
        "Timonel wrote ("
    )
    assert str(caught.value).endswith(
        "roll back with `timonel rollback m -n default` and clear it with `kubectl delete "
        "configmap m-rollout -n default`"
    )
