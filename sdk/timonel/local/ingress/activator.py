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

Scaling above one process per revision (``maxReplicas`` with a concurrency or rps target) is not
done here: every revision runs at most one ``timonel serve`` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from timonel.errors import TimonelError
from timonel.local.ingress.routes import RoutingTable
from timonel.local.reconcile import Phase, RevisionObservation
from timonel.local.revisions import RevisionKey

#: How often a held request looks at its revision again.
_POLL_SECONDS = 0.02


class Revisions(Protocol):
    """The controller's side: what a revision's process does, and scaling it to zero and back."""

    def revision_state(self, key: RevisionKey) -> RevisionObservation | None: ...

    def scale(self, key: RevisionKey, replicas: int) -> None: ...


class Unavailable(TimonelError):
    """A request could not be given to its revision (503)."""


@dataclass(frozen=True)
class Endpoint:
    rest: str  # host:port
    grpc: str


@dataclass
class _Load:
    in_flight: int = 0
    held: int = 0
    last_request: float = 0.0


class Activator:
    """Hands requests their revision's endpoint, starting a revision at zero; stops idle ones."""

    def __init__(
        self,
        revisions: Revisions,
        *,
        queue_depth: int = 100,
        timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._revisions = revisions
        self._queue_depth = queue_depth
        self._timeout = timeout
        self._clock = clock
        self._load: dict[RevisionKey, _Load] = {}

    @contextlib.asynccontextmanager
    async def hold(
        self, backend: RevisionKey, *, avoid: Endpoint | None = None
    ) -> AsyncIterator[Endpoint]:
        """The backend's endpoint for one request, counted in flight until the block ends.

        ``avoid`` is an endpoint that just refused a connection: wait for another one (the
        revision's process is restarting). Raises ``Unavailable``.
        """
        load = self._load.setdefault(backend, _Load())
        load.in_flight += 1
        load.last_request = self._clock()
        try:
            yield await self._endpoint(backend, load, avoid)
        finally:
            load.in_flight -= 1
            load.last_request = self._clock()

    async def _endpoint(
        self, backend: RevisionKey, load: _Load, avoid: Endpoint | None
    ) -> Endpoint:
        found = self._ready(backend, avoid)
        if found is not None:
            return found
        if load.held >= self._queue_depth:
            raise Unavailable(
                f"revision {backend} is starting and {load.held} requests already wait for it "
                f"(the activator holds at most {self._queue_depth}); retry shortly"
            )
        load.held += 1
        try:
            before = self._revisions.revision_state(backend)
            restarts = before.restarts if before is not None else 0
            self._revisions.scale(backend, 1)
            deadline = self._clock() + self._timeout
            while True:
                await asyncio.sleep(_POLL_SECONDS)
                found = self._ready(backend, avoid)
                if found is not None:
                    return found
                state = self._revisions.revision_state(backend)
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
        state = self._revisions.revision_state(key)
        if state is None or state.phase is not Phase.READY or not state.rest:
            return None
        endpoint = Endpoint(state.rest, state.grpc)
        return None if endpoint == avoid else endpoint

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
            load = self._load.setdefault(backend, _Load(last_request=now))
            if load.in_flight or now - load.last_request < window:
                continue
            if self._revisions.revision_state(backend) is None:
                continue  # at zero already
            self._revisions.scale(backend, 0)
            stopped.append(backend)
        return stopped
