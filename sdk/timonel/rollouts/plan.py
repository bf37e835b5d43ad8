"""What a progressive rollout will do and what it must measure to go on: plain, validated values.

A ``RolloutPlan`` says the phases (an optional shadow phase, then the traffic steps), how long each
window of evidence lasts, and the ``Gates`` every window must pass. Durations are written as the
CLI takes them (``90s``, ``5m``, ``1h``) and kept in seconds. Invalid values raise ``SpecError``
at construction, naming the flag-free field and what it accepts, so the CLI, the SDK and the KFP
component refuse the same plans with the same words.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from timonel.errors import SpecError

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str | float, *, what: str = "duration") -> float:
    """Seconds from ``90``, ``90s``, ``5m``, ``1h30m`` (a number alone is seconds)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip()
        found = _DURATION.match(value) if value else None
        try:
            seconds = float(value)
        except ValueError:
            if found is None or not any(found.groups()):
                raise SpecError(
                    f"{what} {text!r} is not a duration; write seconds (90 or 90s), minutes "
                    "(5m) or hours (1h), e.g. 1m30s",
                    field=what,
                ) from None
            hours, minutes, secs = (float(part or 0) for part in found.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    if seconds < 0:
        raise SpecError(f"{what} {text!r} is negative; expected 0 or more seconds", field=what)
    return seconds


def parse_steps(text: str) -> tuple[int, ...]:
    """``10,25,50,100`` as the canary percentages of each step."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SpecError(
            f"steps {text!r} are not whole percentages; expected a comma-separated list such "
            "as 10,25,50,100",
            field="steps",
        ) from None


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise SpecError(
            f"{name} {value!r} is out of range; expected a fraction from 0 to 1 (0.01 = 1%)",
            field=name,
        )


@dataclass(frozen=True)
class Gates:
    """The limits a canary must keep, judged on each window of evidence.

    ``max_error_rate``: the canary's error rate may exceed the stable revision's in the same
    window by at most this much (with a stable revision that never fails, it is an absolute
    limit), so errors the clients cause on both revisions do not fail the canary.
    ``max_p99_latency_ms``: an absolute limit on the canary's p99 latency.
    ``max_latency_ratio``: the canary's p99 may be at most this times the stable revision's in the
    same window; ``latency_slack_ms`` is the difference always allowed, so that a revision
    answering in 2 ms instead of 1 ms (noise, not a regression) does not fail a 1.2 ratio.
    ``min_agreement``: the share of compared examples on which both revisions give the same
    answer (the same argmax for class scores; a relative difference of at most
    ``max_relative_difference`` for regressions; equality for integers and strings).
    ``min_requests``: below this many requests per revision (or compared examples) in a window
    nothing is decided; the window is extended instead.
    """

    max_error_rate: float = 0.01
    max_p99_latency_ms: float | None = None
    max_latency_ratio: float | None = 1.2
    latency_slack_ms: float = 10.0
    min_agreement: float = 0.99
    max_relative_difference: float = 0.01
    min_requests: int = 20

    def __post_init__(self) -> None:
        _check_fraction("max_error_rate", self.max_error_rate)
        _check_fraction("min_agreement", self.min_agreement)
        if self.max_p99_latency_ms is not None and self.max_p99_latency_ms <= 0:
            raise SpecError(
                f"max_p99_latency_ms {self.max_p99_latency_ms!r} must be above 0 (milliseconds)",
                field="max_p99_latency_ms",
            )
        if self.max_latency_ratio is not None and self.max_latency_ratio < 1.0:
            raise SpecError(
                f"max_latency_ratio {self.max_latency_ratio!r} must be 1 or more (1.2 lets the "
                "canary's p99 be 20% above the stable revision's)",
                field="max_latency_ratio",
            )
        if self.latency_slack_ms < 0 or self.max_relative_difference < 0:
            raise SpecError(
                "latency_slack_ms and max_relative_difference must be 0 or more",
                field="latency_slack_ms",
            )
        if isinstance(self.min_requests, bool) or self.min_requests < 1:
            raise SpecError(
                f"min_requests {self.min_requests!r} must be a whole number of at least 1",
                field="min_requests",
            )


@dataclass(frozen=True)
class RolloutPlan:
    """The phases of a rollout and the gates each window must pass.

    ``shadow`` seconds of mirrored traffic first (0: no shadow phase), ``shadow_percent`` of the
    live requests copied to the candidate, which answers none of them; then one step per
    percentage in ``steps`` (increasing, 1 to 100), each judged over windows of ``interval``
    seconds. A window with too few requests is followed by another, at most ``patience`` windows
    per phase; then the rollout rolls back, since it cannot show the canary is safe.
    """

    steps: tuple[int, ...] = (10, 25, 50, 100)
    interval: float = 60.0
    shadow: float = 0.0
    shadow_percent: float = 100.0
    gates: Gates = field(default_factory=Gates)
    patience: int = 3

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        if (
            not steps
            or any(isinstance(s, bool) or not isinstance(s, int) for s in steps)
            or any(not 1 <= s <= 100 for s in steps)
            or any(b <= a for a, b in itertools.pairwise(steps))
        ):
            raise SpecError(
                f"steps {list(steps)!r} are not a rollout; expected increasing whole percentages "
                "from 1 to 100, e.g. 10,25,50,100",
                field="steps",
            )
        object.__setattr__(self, "steps", steps)
        if self.interval <= 0:
            raise SpecError(
                f"interval {self.interval!r} must be above 0 seconds (each step's window)",
                field="interval",
            )
        if self.shadow < 0 or not 0 < self.shadow_percent <= 100:
            raise SpecError(
                f"shadow {self.shadow!r}s at {self.shadow_percent!r}% is not a shadow phase; "
                "expected 0 or more seconds and a share above 0 and at most 100 percent",
                field="shadow",
            )
        if isinstance(self.patience, bool) or self.patience < 1:
            raise SpecError(
                f"patience {self.patience!r} must be at least 1 window", field="patience"
            )

    def phases(self) -> tuple[str, ...]:
        """The measured phases in order: ``shadow`` (when planned), then ``step-<percent>``.

        A step of 100 is the promotion itself: with the canary at 100% Knative drops the
        ``prev`` tag, so no window could compare the two revisions any more.
        """
        names = [f"step-{percent}" for percent in self.steps if percent < 100]
        return ("shadow", *names) if self.shadow > 0 else tuple(names)


def plan_of(
    *,
    steps: str = "10,25,50,100",
    interval: str | float = "60s",
    shadow: str | float = 0,
    shadow_percent: float = 100.0,
    max_error_rate: float = 0.01,
    max_p99_latency_ms: float | None = None,
    max_latency_ratio: float | None = None,
    min_agreement: float = 0.99,
    min_requests: int = 20,
) -> RolloutPlan:
    """A plan from options as the CLI and the KFP component take them (steps and durations as
    text; one latency gate: an absolute p99 limit, or a ratio to stable's, 1.2 when neither)."""
    if max_p99_latency_ms is not None and max_latency_ratio is not None:
        raise SpecError(
            "give max_p99_latency_ms (--max-p99-latency-ms) or max_latency_ratio "
            "(--max-latency-ratio), not both: one latency gate",
            field="max_latency_ratio",
        )
    return RolloutPlan(
        steps=parse_steps(steps),
        interval=parse_duration(interval, what="interval"),
        shadow=parse_duration(shadow, what="shadow"),
        shadow_percent=shadow_percent,
        gates=Gates(
            max_error_rate=max_error_rate,
            max_p99_latency_ms=max_p99_latency_ms,
            max_latency_ratio=(
                None if max_p99_latency_ms is not None else (max_latency_ratio or 1.2)
            ),
            min_agreement=min_agreement,
            min_requests=min_requests,
        ),
    )
