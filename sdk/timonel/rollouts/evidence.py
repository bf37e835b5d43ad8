"""What one window of a rollout measured, per revision: requests, errors, latency, agreement.

Every evidence source (probes, mirrored traffic, Prometheus) reduces what it saw to these values,
so the gates judge them all the same way and the report shows them side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: The latency percentiles kept per revision and window.
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class RevisionEvidence:
    """One revision's requests in one window; latency percentiles in milliseconds (None when the
    window had no successful request to time)."""

    revision: str
    requests: int
    errors: int
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def from_samples(
        cls, revision: str, latencies_ms: Sequence[float], errors: int
    ) -> RevisionEvidence:
        """From each request's latency (successes and failures alike) and the failures' count."""
        if not latencies_ms:
            return cls(revision, requests=errors, errors=errors)
        p50, p90, p99 = (float(v) for v in np.percentile(latencies_ms, PERCENTILES))
        return cls(revision, len(latencies_ms), errors, p50, p90, p99)


@dataclass(frozen=True)
class Agreement:
    """How many examples both revisions answered, and on how many their answers agreed."""

    compared: int = 0
    agreed: int = 0

    @property
    def rate(self) -> float:
        return self.agreed / self.compared if self.compared else 1.0

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(self.compared + other.compared, self.agreed + other.agreed)


@dataclass(frozen=True)
class WindowEvidence:
    """What one source saw of the stable and canary revisions over one window.

    ``agreement`` is None for sources that see no answers (Prometheus); ``timed`` is False for
    sources that time no request (mirrored traffic), whose windows no latency gate judges;
    ``queries`` are the queries a source ran, so the report shows how each number was obtained.
    """

    source: str
    stable: RevisionEvidence
    canary: RevisionEvidence
    agreement: Agreement | None = None
    queries: Mapping[str, str] = field(default_factory=dict)
    timed: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["queries"] = dict(self.queries)
        for side in ("stable", "canary"):
            data[side]["error_rate"] = getattr(self, side).error_rate
        if self.agreement is not None:
            data["agreement"]["rate"] = self.agreement.rate
        return data
