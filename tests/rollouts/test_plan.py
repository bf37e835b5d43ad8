from __future__ import annotations

import pytest

from timonel.errors import SpecError
from timonel.rollouts.plan import Gates, RolloutPlan, parse_duration, parse_steps


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("0.5s", 0.5),
        (2, 2.0),
    ],
)
def test_durations_read_as_the_cli_writes_them(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "1ms", "m", "-3"])
def test_a_duration_that_is_not_one_is_refused_with_examples(text: str) -> None:
    with pytest.raises(SpecError, match=r"duration|negative"):
        parse_duration(text, what="interval")


def test_steps_parse_as_percentages() -> None:
    assert parse_steps("10,25,50,100") == (10, 25, 50, 100)
    with pytest.raises(SpecError, match="whole percentages"):
        parse_steps("10,half")


@pytest.mark.parametrize("steps", [(), (0, 50), (50, 25), (10, 10), (10, 101)])
def test_steps_must_increase_within_1_and_100(steps: tuple[int, ...]) -> None:
    with pytest.raises(SpecError, match="increasing whole percentages"):
        RolloutPlan(steps=steps)


def test_phases_put_the_shadow_first_when_planned() -> None:
    assert RolloutPlan(steps=(10, 100)).phases() == ("step-10",)  # 100 is the promotion
    assert RolloutPlan(steps=(50,), shadow=30).phases() == ("shadow", "step-50")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_error_rate": 1.5}, "max_error_rate"),
        ({"min_agreement": -0.1}, "min_agreement"),
        ({"max_p99_latency_ms": 0}, "max_p99_latency_ms"),
        ({"max_latency_ratio": 0.9}, "max_latency_ratio"),
        ({"min_requests": 0}, "min_requests"),
    ],
)
def test_gates_refuse_limits_that_mean_nothing(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        Gates(**kwargs)  # type: ignore[arg-type]  # the table mixes float and int fields
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"interval": 0}, "interval"), ({"shadow": -1}, "shadow"), ({"patience": 0}, "patience")],
)
def test_plans_refuse_windows_that_cannot_be_measured(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        RolloutPlan(**kwargs)  # type: ignore[arg-type]  # the table mixes float and int fields
    assert caught.value.field == field
