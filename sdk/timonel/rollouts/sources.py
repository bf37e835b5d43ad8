"""Where a rollout's evidence comes from, behind one interface, and the clock it runs on.

A source ``gather``s one window: given the two revisions and the window's end, it returns what
it saw of each (``WindowEvidence``). Active sources (probes) send requests until the end;
passive ones (mirrored traffic, Prometheus) wait for the end and read what happened. The driver
asks every source of the rollout for each window, in order, and the gates judge all of them.

Time is passed in as a ``Clock`` so that tests move through windows of minutes without waiting:
``SystemClock`` is the real one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from timonel.rollouts.evidence import WindowEvidence


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class Endpoint:
    """One revision and how to reach it alone: a URL and the ``Host`` its route answers to
    (a tag route such as ``prev-NAME-predictor.NAMESPACE.example.com``)."""

    revision: str
    url: str
    host: str | None = None


@dataclass(frozen=True)
class Pair:
    """The stable revision and the canary of one InferenceService, and the TF Serving model
    name both serve."""

    model: str
    stable: Endpoint
    canary: Endpoint


class EvidenceSource(Protocol):
    name: str

    def gather(self, pair: Pair, start: float, end: float, clock: Clock) -> WindowEvidence:
        """What this source saw of both revisions between ``start`` and ``end`` (clock times);
        returns once ``end`` has passed."""


def wait_until(clock: Clock, moment: float) -> None:
    clock.sleep(max(0.0, moment - clock.now()))
