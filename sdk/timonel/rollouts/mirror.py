"""Evidence from mirrored live traffic: what the local ingress recorded in the shadow phase.

In the shadow phase the driver asks the ingress (``timonel.dev/mirror-revision`` and
``-percent``) to copy a share of the stable revision's live requests to the candidate; the
clients get the stable revision's answers only. The ingress compares each pair of answers and
keeps running counts per (InferenceService, primary revision, mirror revision), which it serves as
JSON on ``GET /mirror`` (``timonel.local.ingress.mirror.MirrorCount``). This source reads them
at the end of each window and keeps the difference from its previous reading, so a window
counts the requests mirrored during it.

What the counts give, and how they become a window's evidence:

- requests: the mirrored requests, answered by both revisions;
- errors: the ingress counts a mirror error only where the stable revision succeeded (the
  candidate failed or could not be reached), so these are the canary's errors *beyond* the
  stable revision's, and the stable side shows none;
- agreement: answers the ingress found identical (same status, same JSON body). That is
  stricter than the probes' comparison (same argmax, or a relative difference): a candidate
  whose scores move while its classes do not (a retrained model) fails it. Shadow a release
  that must answer as the stable one does (a re-export, a new runtime or batching setting);
  roll a retrained model out with no shadow phase, where the probes judge agreement;
- no latency: the ingress times no mirrored request, so no latency gate judges these windows.

The first window after a resume also counts what was mirrored before the interruption (the
counts have no time), which is the same candidate against the same stable revision. Only
``timonel local``'s ingress mirrors: KServe and Knative do not, and a gateway without
``/mirror`` is refused with a ``SpecError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from timonel.errors import EvidenceUnreachable, SpecError
from timonel.local.ingress.mirror import MirrorCount
from timonel.rollouts.evidence import Agreement, RevisionEvidence, WindowEvidence
from timonel.rollouts.sources import Clock, Pair, wait_until

_Key = tuple[str, str, str, str]


@dataclass
class MirrorSource:
    """Reads ``GET <gateway>/mirror`` once each shadow window has passed."""

    gateway: str
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = None
    name: str = "mirror"
    _seen: dict[_Key, MirrorCount] = field(default_factory=dict, init=False, repr=False)

    def _counts(self) -> list[MirrorCount]:
        url = f"{self.gateway.rstrip('/')}/mirror"
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise EvidenceUnreachable(
                f"cannot read the mirror records at {url} ({exc}); check --gateway and that "
                "`timonel local` is up"
            ) from exc
        if response.status_code == 404:
            raise SpecError(
                f"the gateway {self.gateway} keeps no mirror records (GET /mirror: 404); only "
                "timonel local's ingress mirrors traffic to a candidate (KServe and Knative do "
                "not): roll out with no --shadow, or through timonel local's ingress",
                field="shadow",
            )
        try:
            response.raise_for_status()
            items: list[dict[str, Any]] = response.json()
            return [MirrorCount(**item) for item in items]
        except (httpx.HTTPError, ValueError, TypeError) as exc:
            raise EvidenceUnreachable(
                f"the mirror records at {url} are not what timonel local's ingress serves "
                f"({exc}); is --gateway that ingress?"
            ) from exc

    def gather(self, pair: Pair, start: float, end: float, clock: Clock) -> WindowEvidence | None:
        if pair.mirrored <= 0:
            return None
        wait_until(clock, end)
        key = (pair.namespace, pair.model, pair.stable.revision, pair.canary.revision)
        now = next(
            (c for c in self._counts() if (c.namespace, c.isvc, c.primary, c.mirror) == key),
            MirrorCount(*key),
        )
        before = self._seen.get(key, MirrorCount(*key))
        self._seen[key] = now
        requests = now.requests - before.requests
        errors = now.errors - before.errors
        differences = now.differences - before.differences
        answered = requests - errors
        return WindowEvidence(
            self.name,
            RevisionEvidence(pair.stable.revision, requests, 0),
            RevisionEvidence(pair.canary.revision, requests, errors),
            Agreement(answered, answered - differences),
            queries={
                f"{pair.canary.revision} mirrored": (
                    f"GET {self.gateway.rstrip('/')}/mirror: {pair.namespace}/{pair.model} "
                    f"{pair.stable.revision} -> {pair.canary.revision}"
                )
            },
            timed=False,
        )
