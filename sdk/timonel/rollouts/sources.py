"""Where a rollout's evidence comes from, behind one interface, and the clock it runs on.

A source ``gather``s one window: given the two revisions and the window's end, it returns what
it saw of each (``WindowEvidence``), or None when it sees nothing of the phase (mirrored traffic
outside the shadow phase). Active sources (probes) send requests until the end; passive ones
(mirrored traffic, Prometheus) wait for the end and read what happened. The driver asks every
source of the rollout for each window, in order, and the gates judge all of them.

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
    """The stable revision and the canary of one InferenceService (``model``, also the TF
    Serving model name both serve, in ``namespace``), and the share of the live requests
    ``mirrored`` to the canary (percent; above 0 only in the shadow phase)."""

    model: str
    stable: Endpoint
    canary: Endpoint
    namespace: str = "default"
    mirrored: float = 0.0


class EvidenceSource(Protocol):
    name: str

    def gather(self, pair: Pair, start: float, end: float, clock: Clock) -> WindowEvidence | None:
        """What this source saw of both revisions between ``start`` and ``end`` (clock times),
        None if it sees nothing of this phase; returns once ``end`` has passed."""


def wait_until(clock: Clock, moment: float) -> None:
    clock.sleep(max(0.0, moment - clock.now()))
