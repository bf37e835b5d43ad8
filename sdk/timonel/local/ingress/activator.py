"""The activator: scale to zero when idle, and hold requests while a revision starts again.

What Knative's activator and autoscaler do for a revision with min-scale 0 (KServe writes it from
``minReplicas: 0``):

- A revision that has had no request in flight for its idle window is scaled to zero: its
  ``timonel serve`` process stops. The window is the larger of the ingress's own (60 s unless
  configured: Knative's stable window),
  ``autoscaling.knative.dev/scale-to-zero-pod-retention-period`` and
  ``autoscaling.knative.dev/scale-down-delay`` (``timonel.local.ingress.routes``).
- A request for a revision at zero is held (Knative's throttler queue, ``breakerQueueDepth``) while
  the revision starts, then proxied; nothing is dropped. The queue is bounded: past ``queue_depth``
  held requests, and when the wait passes ``timeout`` (the revision's request timeout, 300 s in
  Knative), the answer is 503 naming the revision, as the activator answers
  ``ErrRequestQueueFull`` and ``context.DeadlineExceeded``. A revision that fails to start answers
  503 with its error (the server's last words) as soon as an attempt that began after the request
  arrived fails, where Knative would keep the request until the timeout: waiting out a crash loop
  helps no one locally. A request that arrives while a crashed revision waits out its back-off is
  held for the restart.

Knative scales a revision back to zero only through the activator and keeps its Ready condition;
so here: the revision stays in the traffic and Ready, with no process (``modelStatus.copies`` has
no ``totalCopies``).

Above one process: a revision whose predictor has ``maxReplicas`` above one is scaled by Knative's
KPA (``timonel.local.autoscaler``) on the concurrency (or rate) of its requests as counted here,
in flight or held: each second the time-weighted average enters the stable and panic windows,
every two seconds the autoscaler decides, bounded by min-scale, max-scale and the machine
(``machine_replicas``: the CPUs this process may run on, since a ``timonel serve`` process beyond
one per CPU only competes for the same cores). Requests go to the ready process with the fewest
requests in flight (ties taken in turn). A process the controller stops (a scale-down, a
revision that left the traffic) is first taken out of the choice, then ``drain`` waits until no
request is in flight to it, as Knative removes a terminating pod from the endpoints and its
queue-proxy drains. A request for a revision that no route reaches any more (a promote moved the
traffic while it was read) is not held: ``Rerouted`` tells the router to pick again.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from timonel.errors import TimonelError
from timonel.local.autoscaler import (
    RPS,
    TICK_SECONDS,
    Autoscaler,
    Buckets,
    DeciderSpec,
    Meter,
    bounded,
)
from timonel.local.ingress.routes import RoutingTable
from timonel.local.reconcile import Phase, RevisionObservation
from timonel.local.revisions import RevisionKey

#: How often a held request looks at its revision again, and a drain at its requests in flight.
_POLL_SECONDS = 0.02
#: A drain ends after this many polls in a row with nothing in flight.
_DRAIN_QUIET_POLLS = 3


class Revisions(Protocol):
    """The controller's side: what a revision's processes do, and scaling them."""

    def revision_state(self, key: RevisionKey) -> RevisionObservation | None: ...

    def revision_replicas(self, key: RevisionKey) -> list[RevisionObservation]: ...

    def scale(self, key: RevisionKey, replicas: int) -> None: ...


class Unavailable(TimonelError):
    """A request could not be given to its revision (503)."""


class Rerouted(Unavailable):
    """The revision is no longer in any route and has no process: pick from the split again."""


@dataclass(frozen=True)
class Endpoint:
    rest: str  # host:port
    grpc: str


@dataclass
class _Load:
    meter: Meter
    held: int = 0
    last_request: float = 0.0
    #: the KPA's state, for a revision that may run more than one process
    autoscaler: Autoscaler | None = None
    stable: Buckets | None = None
    panic: Buckets | None = None
    sampled: int = 0  # the last whole second fed to the windows

    @property
    def in_flight(self) -> int:
        return self.meter.in_flight


def machine_replicas() -> int:
    """How many processes of one revision the machine can use: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Activator:
    """Hands requests their revision's endpoint, starting a revision at zero; stops idle ones;
    scales busy ones."""

    def __init__(
        self,
        revisions: Revisions,
        *,
        queue_depth: int = 100,
        timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        routable: Callable[[RevisionKey], bool] = lambda key: True,
        machine: int | None = None,
    ) -> None:
        self._revisions = revisions
        self._queue_depth = queue_depth
        self._timeout = timeout
        self._clock = clock
        self._routable = routable
        self._machine = machine or machine_replicas()
        self._load: dict[RevisionKey, _Load] = {}
        self._at: dict[str, int] = {}  # requests in flight by REST address
        self._turn = 0

    def _load_of(self, backend: RevisionKey) -> _Load:
        load = self._load.get(backend)
        if load is None:
            now = self._clock()
            load = self._load[backend] = _Load(Meter(now), last_request=now)
        return load

    @contextlib.asynccontextmanager
    async def hold(
        self, backend: RevisionKey, *, avoid: Endpoint | None = None
    ) -> AsyncIterator[Endpoint]:
        """The endpoint of one of the backend's processes for one request, counted in flight
        until the block ends.

        ``avoid`` is an endpoint that just refused a connection: wait for another one (the
        revision's process is restarting). Raises ``Unavailable`` (``Rerouted`` for a revision
        no route reaches any more).
        """
        load = self._load_of(backend)
        now = self._clock()
        load.meter.add(now, 1)
        load.last_request = now
        endpoint: Endpoint | None = None
        try:
            endpoint = await self._endpoint(backend, load, avoid)
            self._at[endpoint.rest] = self._at.get(endpoint.rest, 0) + 1
            yield endpoint
        finally:
            if endpoint is not None:
                self._at[endpoint.rest] -= 1
                if not self._at[endpoint.rest]:
                    del self._at[endpoint.rest]
            now = self._clock()
            load.meter.add(now, -1)
            load.last_request = now

    async def _endpoint(
        self, backend: RevisionKey, load: _Load, avoid: Endpoint | None
    ) -> Endpoint:
        found = self._ready(backend, avoid)
        if found is not None:
            return found
        if not self._routable(backend):
            raise Rerouted(f"revision {backend} no longer takes traffic")
        if load.held >= self._queue_depth:
            raise Unavailable(
                f"revision {backend} is starting and {load.held} requests already wait for it "
                f"(the activator holds at most {self._queue_depth}); retry shortly"
            )
        load.held += 1
        try:
            before = self._revisions.revision_state(backend)
            restarts = before.restarts if before is not None else 0
            # At zero (or on its way there): one process again; a revision that has processes
            # keeps their count.
            self._revisions.scale(backend, max(1, len(self._revisions.revision_replicas(backend))))
            deadline = self._clock() + self._timeout
            while True:
                await asyncio.sleep(_POLL_SECONDS)
                found = self._ready(backend, avoid)
                if found is not None:
                    return found
                state = self._revisions.revision_state(backend)
                if state is None and not self._routable(backend):
                    raise Rerouted(f"revision {backend} no longer takes traffic")
                if (
                    state is not None
                    and state.phase is Phase.FAILED
                    and state.last_failure is not None
                    and state.restarts > restarts
                ):
                    raise Unavailable(
                        f"revision {backend} cannot start: {state.last_failure.message}"
                    )
                if self._clock() > deadline:
                    raise Unavailable(
                        f"revision {backend} did not become ready within {self._timeout:.0f} s "
                        "(the revision's request timeout); see its server.log"
                    )
        finally:
            load.held -= 1

    def _ready(self, key: RevisionKey, avoid: Endpoint | None) -> Endpoint | None:
        """The ready process with the fewest requests in flight, ties taken in turn."""
        ready = [
            Endpoint(state.rest, state.grpc)
            for state in self._revisions.revision_replicas(key)
            if state.phase is Phase.READY and state.rest
        ]
        ready = [endpoint for endpoint in ready if endpoint != avoid]
        if len(ready) < 2:
            return ready[0] if ready else None
        self._turn += 1
        start = self._turn % len(ready)
        turned = ready[start:] + ready[:start]
        return min(turned, key=lambda endpoint: self._at.get(endpoint.rest, 0))

    def drain(self, key: RevisionKey, rest: str) -> None:
        """Block (on the controller's thread) until no request is in flight to ``rest``, a
        process the controller took out of the choice, or the request timeout passed."""
        deadline = time.monotonic() + self._timeout
        quiet = 0
        while quiet < _DRAIN_QUIET_POLLS and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            quiet = quiet + 1 if not self._at.get(rest) else 0

    def autoscale(self, deciders: Mapping[RevisionKey, DeciderSpec]) -> dict[RevisionKey, int]:
        """Feed each revision's last second to its windows and, every tick, scale the revisions
        whose decision changed; the new counts."""
        now = self._clock()
        second = math.floor(now)
        scaled: dict[RevisionKey, int] = {}
        for backend, spec in deciders.items():
            load = self._load_of(backend)
            if load.stable is None or load.panic is None or load.autoscaler is None:
                load.stable, load.panic = Buckets(spec.stable_window), Buckets(spec.panic_window)
                load.autoscaler = Autoscaler(spec, ready=self._ready_count(backend), now=now)
                load.sampled = second
            load.autoscaler.spec = spec
            if second <= load.sampled:
                continue
            load.sampled = second
            concurrency, rate = load.meter.take(now)
            value = rate if spec.metric == RPS else concurrency
            load.stable.record(now, value)
            load.panic.record(now, value)
            if second % TICK_SECONDS:
                continue
            replicas = self._revisions.revision_replicas(backend)
            if not replicas:
                continue  # at zero: the activator starts it on the next request
            ready = sum(1 for state in replicas if state.phase is Phase.READY)
            wanted = load.autoscaler.scale(
                now, ready, load.stable.average(now), load.panic.average(now)
            )
            wanted = bounded(wanted, spec, self._machine)
            if wanted != len(replicas):
                self._revisions.scale(backend, wanted)
                scaled[backend] = wanted
        for gone in [key for key, load in self._load.items() if key not in deciders]:
            self._load[gone].autoscaler = None
        return scaled

    def _ready_count(self, key: RevisionKey) -> int:
        return sum(
            1 for state in self._revisions.revision_replicas(key) if state.phase is Phase.READY
        )

    def scale_down_idle(self, table: RoutingTable) -> list[RevisionKey]:
        """Stop every revision that may scale to zero and has been idle past its window."""
        now = self._clock()
        stopped = []
        windows: dict[RevisionKey, float] = {}
        for route in [*table.hosts.values(), *table.models.values()]:
            if route.idle_seconds is None:
                continue
            for target in route.targets:
                if target.backend.revision in route.scale_to_zero:
                    windows[target.backend] = route.idle_seconds
        for backend, window in windows.items():
            load = self._load_of(backend)
            if load.in_flight or now - load.last_request < window:
                continue
            if self._revisions.revision_state(backend) is None:
                continue  # at zero already
            self._revisions.scale(backend, 0)
            stopped.append(backend)
        return stopped
