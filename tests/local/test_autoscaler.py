"""The local KPA's decisions, ported from Knative's ``pkg/autoscaler/scaling/autoscaler_test.go``.

Knative's tests build their autoscaler with ``newTestAutoscaler``: panic threshold 2 (200%),
scale-up and scale-down rates 10, a 60 s stable window, one ready pod. Excess burst capacity is
not emulated, so its expectations are left out.
"""

from __future__ import annotations

import dataclasses

import pytest

from timonel.errors import SpecError
from timonel.local.autoscaler import (
    RPS,
    Autoscaler,
    Buckets,
    DeciderSpec,
    Meter,
    bounded,
    decider_spec,
)

STABLE_WINDOW = 60.0


def spec(target: float, **changes: object) -> DeciderSpec:
    """Knative's ``newTestAutoscaler`` DeciderSpec."""
    base = DeciderSpec(
        target_value=target,
        panic_threshold=2.0,
        max_scale_up_rate=10.0,
        max_scale_down_rate=10.0,
        stable_window=STABLE_WINDOW,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # DeciderSpec's own fields


def autoscaler(target: float, ready: int = 1, **changes: object) -> Autoscaler:
    return Autoscaler(spec(target, **changes), ready=ready, now=0.0)


@pytest.mark.parametrize(
    ("label", "target", "stable", "panic", "ready", "want"),
    [
        ("NoDataAtZeroNoAutoscale", 10, 0, 0, 1, 0),
        ("StableModeUnlimitedTBC", 181, 21, 26, 1, 1),
        ("StableModeNoChange", 10, 50, 50, 1, 5),
        ("StableModeNoChangeAlreadyScaled", 10, 50, 50, 5, 5),
        ("PanicModeDoublePodCount", 10, 50, 100, 1, 10),
    ],
)
def test_autoscaler_scale_table(
    label: str, target: float, stable: float, panic: float, ready: int, want: int
) -> None:
    scaler = Autoscaler(spec(target), ready=1, now=0.0)
    assert scaler.scale(1.0, ready, stable, panic) == want, label


@pytest.mark.parametrize(("stable", "want"), [(50, 50), (20, 30)])
def test_in_panic_the_larger_of_stable_and_panic_wins(stable: float, want: int) -> None:
    scaler = autoscaler(1)
    scaler.panic_since, scaler.max_panic_pods = -5.0, 5
    assert scaler.scale(0.0, 5, stable, 30) == want


def test_small_scale_up_and_down_rates_limit_the_step() -> None:
    assert autoscaler(1, max_scale_up_rate=1.1).scale(0.0, 2, 3, 3.1) == 3
    assert autoscaler(10, max_scale_down_rate=1.1).scale(0.0, 100, 1, 1) == 90
    unreachable = autoscaler(10, max_scale_down_rate=1.1, reachable=False)
    assert unreachable.scale(0.0, 100, 1, 1) == 1


#: Knative's scenarios: target, DeciderSpec changes, and steps of (now, ready pods, stable,
#: panic, desired pods).
Step = tuple[float, int, float, float, int]
SCENARIOS: dict[str, tuple[float, dict[str, object], list[Step]]] = {
    "StableModeIncreaseWithConcurrencyDefault": (10, {}, [(0, 1, 50, 10, 5), (0, 1, 100, 10, 10)]),
    "StableModeIncreaseWithRPS": (10, {"metric": RPS}, [(0, 1, 50, 50, 5), (0, 1, 100, 99, 10)]),
    "StableModeDecrease": (10, {}, [(0, 8, 100, 100, 10), (0, 8, 50, 50, 5)]),
    "StableModeNoTrafficScaleToZero": (10, {}, [(0, 1, 1, 0, 1), (0, 1, 0, 0, 0)]),
    "ActivationScale": (10, {"activation_scale": 2}, [(0, 1, 0, 0, 0), (0, 1, 1, 0, 2)]),
    "PanicModeExponentialTrackAndStabilize": (
        1,
        {},
        [(0, 1, 6, 6, 6), (0, 6, 36, 36, 36), (1, 36, 216, 216, 216),
         (1, 216, 1296, 1296, 1296), (2, 1296, 1296, 1296, 1296)],
    ),
    # still in panic at 30 s: the scale stays; after the stable window it comes down
    "PanicThenUnPanicScaleDown": (
        10,
        {},
        [(0, 1, 100, 100, 10), (0, 10, 100, 1000, 100), (30, 10, 1, 1, 100), (61, 10, 1, 1, 1)],
    ),
    "RateLimitScaleUp": (10, {}, [(0, 1, 1000, 1001, 10), (0, 10, 1000, 1001, 100)]),
    "RateLimitScaleDown": (10, {}, [(0, 100, 1, 1, 10), (0, 10, 1, 1, 1)]),
}  # fmt: skip


@pytest.mark.parametrize("name", SCENARIOS)
def test_knative_scenarios(name: str) -> None:
    target, changes, steps = SCENARIOS[name]
    scaler = Autoscaler(spec(target, **changes), ready=1, now=0.0)
    for now, ready, stable, panic, want in steps:
        assert scaler.scale(float(now), ready, stable, panic) == want, (name, now)


def test_unpanic_after_a_slow_increase() -> None:
    scaler = autoscaler(1)
    assert scaler.scale(0.0, 10, 11, 25) == 25
    assert scaler.panic_since == 0.0
    assert scaler.scale(STABLE_WINDOW / 2, 40, 30, 41) == 41
    assert scaler.panic_since == 0.0  # 41 / 40 is under the threshold: panic time stays
    assert scaler.scale(STABLE_WINDOW + 2, 55, 50, 56) == 50
    assert scaler.panic_since is None


def test_panic_window_extends_while_still_surging() -> None:
    scaler = autoscaler(1)
    assert scaler.scale(0.0, 10, 11, 25) == 25
    assert scaler.scale(STABLE_WINDOW / 2, 40, 30, 80) == 80
    assert scaler.panic_since == STABLE_WINDOW / 2


def test_no_ready_pods_count_as_one() -> None:
    assert autoscaler(10).scale(0.0, 0, 1000, 888) == 10


def test_a_new_autoscaler_starts_in_panic_above_one_pod() -> None:
    for ready in (0, 1):
        scaler = autoscaler(100, ready=ready)
        assert scaler.panic_since is None and scaler.max_panic_pods == ready
    scaler = autoscaler(100, ready=2)
    assert scaler.panic_since is not None and scaler.max_panic_pods == 2


def test_scale_down_delay_holds_the_largest_recent_decision() -> None:
    delay = dict(max_scale_down_rate=10, max_scale_up_rate=10, panic_threshold=100)
    scaler = autoscaler(10, ready=0, scale_down_delay=300, **delay)
    assert scaler.scale(2.0, 0, 40, 40) == 4
    assert scaler.scale(300.0, 0, 0, 0) == 4  # five minutes: not yet
    assert scaler.scale(302.0, 0, 0, 0) == 0
    # gradual
    assert scaler.scale(540.0, 0, 40, 40) == 4
    assert scaler.scale(600.0, 0, 30, 30) == 4  # 4 still dominates
    assert scaler.scale(660.0, 0, 0, 0) == 4
    assert scaler.scale(840.0, 0, 0, 0) == 3  # 4 scrolls out
    assert scaler.scale(900.0, 0, 0, 0) == 0


def test_without_a_delay_or_unreachable_the_decision_is_at_once() -> None:
    unreachable = autoscaler(10, scale_down_delay=300, reachable=False, panic_threshold=100)
    assert unreachable.scale(2.0, 0, 40, 40) == 4
    assert unreachable.scale(4.0, 0, 0, 0) == 0


def test_decider_spec_from_kserve_fields_and_knative_annotations() -> None:
    found = decider_spec(
        {"minReplicas": 1, "maxReplicas": 3, "scaleMetric": "concurrency", "scaleTarget": 1}, {}
    )
    assert found.target_value == pytest.approx(0.7)  # 70% target utilization
    assert (found.min_scale, found.max_scale) == (1, 3)
    assert (found.stable_window, found.panic_window, found.panic_threshold) == (60.0, 6.0, 2.0)
    rps = decider_spec(
        {"scaleMetric": "rps"},
        {
            "autoscaling.knative.dev/target-utilization-percentage": "50",
            "autoscaling.knative.dev/window": "2m",
            "autoscaling.knative.dev/scale-down-delay": "30s",
        },
    )
    assert (rps.metric, rps.target_value, rps.stable_window) == (RPS, 100.0, 120.0)
    assert rps.panic_window == 12.0 and rps.scale_down_delay == 30.0
    capped = decider_spec({"containerConcurrency": 2, "scaleTarget": 10}, {})
    assert capped.target_value == pytest.approx(1.4)
    with pytest.raises(SpecError, match="target-utilization-percentage is 'most'"):
        decider_spec({}, {"autoscaling.knative.dev/target-utilization-percentage": "most"})


def test_bounds_keep_one_process_and_the_machines_limit() -> None:
    two = DeciderSpec(target_value=1, max_scale=2)
    assert [bounded(n, two, machine=8) for n in (0, 1, 2, 5)] == [1, 1, 2, 2]
    assert bounded(5, DeciderSpec(target_value=1), machine=3) == 3
    assert bounded(0, DeciderSpec(target_value=1, min_scale=2), machine=3) == 2


def test_buckets_average_over_the_seconds_written_then_the_window() -> None:
    window = Buckets(6)
    assert window.average(0.0) == 0.0
    window.record(10.2, 2.0)
    window.record(11.5, 4.0)
    assert window.average(11.9) == 3.0  # two seconds written
    assert window.average(13.0) == 3.0  # the two empty seconds since are not counted
    for second in range(12, 20):
        window.record(float(second), 1.0)
    assert window.average(19.0) == 1.0
    assert window.average(40.0) == 0.0  # nothing for longer than the window


def test_meter_averages_requests_in_flight_over_time() -> None:
    meter = Meter(0.0)
    meter.add(0.0, 1)
    meter.add(0.5, 1)
    meter.add(1.0, -2)
    concurrency, rate = meter.take(1.0)
    assert concurrency == pytest.approx(1.5) and rate == 2.0
    assert meter.take(2.0) == (0.0, 0.0)
