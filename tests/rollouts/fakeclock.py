"""A clock for rollout tests: time passes only when slept on."""

from __future__ import annotations


class FakeClock:
    """Windows of minutes take no wall-clock time; ``slept`` adds up what was waited."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start
        self.slept = 0.0

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)
        self.slept += max(0.0, seconds)
