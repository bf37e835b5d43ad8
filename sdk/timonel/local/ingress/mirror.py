"""Mirroring: a copy of a share of requests goes to another revision; answers are compared.

The rollout measures a candidate on live traffic before it takes any: the client always gets the
primary's answer, and the mirror's answer is only compared with it. What is compared is the
status code and the body, as JSON when both bodies parse (so key order and number spelling do not
count as a difference), as bytes otherwise. A mirror that cannot be reached, or answers with an
error status while the primary did not, counts as an error.

``MirrorRecords.snapshot()`` is the API the rollout reads: one ``MirrorCount`` per
(InferenceService, primary revision, mirror revision). The same counts are Prometheus counters in
the ingress's registry: ``timonel_mirror_requests_total``, ``timonel_mirror_errors_total`` and
``timonel_mirror_differences_total``, labelled ``k8s_namespace_name``, ``isvc``,
``primary_revision`` and ``mirror_revision``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from timonel.local.revisions import RevisionKey

#: Headers that ask for mirroring of one request (they win over the InferenceService's
#: ``timonel.dev/mirror-revision`` and ``timonel.dev/mirror-percent`` annotations).
MIRROR_REVISION_HEADER = "Timonel-Mirror-Revision"
MIRROR_PERCENT_HEADER = "Timonel-Mirror-Percent"


@dataclass(frozen=True)
class MirrorCount:
    """What mirroring to one revision has seen so far."""

    namespace: str
    isvc: str
    primary: str
    mirror: str
    requests: int = 0
    errors: int = 0
    differences: int = 0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def differs(primary: Answer, mirror: Answer) -> bool:
    """Whether the mirror answered otherwise than the primary."""
    if primary.status != mirror.status:
        return True
    if primary.body == mirror.body:
        return False
    try:
        return bool(json.loads(primary.body) != json.loads(mirror.body))
    except ValueError:
        return True


class MirrorRecords:
    """The counts of mirrored requests, thread-safe, also exported as Prometheus counters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("k8s_namespace_name", "isvc", "primary_revision", "mirror_revision")
        self._requests = Counter(
            "timonel_mirror_requests", "Requests copied to a mirror revision", labels,
            registry=registry,
        )  # fmt: skip
        self._errors = Counter(
            "timonel_mirror_errors", "Mirrored requests the mirror failed", labels,
            registry=registry,
        )  # fmt: skip
        self._differences = Counter(
            "timonel_mirror_differences", "Mirrored requests answered otherwise than the primary",
            labels, registry=registry,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str, str], MirrorCount] = {}

    def record(
        self, primary: RevisionKey, mirror: RevisionKey, answer: Answer, mirrored: Answer | None
    ) -> None:
        """One mirrored request: ``mirrored`` is None when the mirror could not be reached."""
        error = mirrored is None or (mirrored.status >= 500 and answer.status < 500)
        different = mirrored is not None and not error and differs(answer, mirrored)
        key = (primary.namespace, primary.isvc, primary.revision, mirror.revision)
        self._requests.labels(*key).inc()
        if error:
            self._errors.labels(*key).inc()
        if different:
            self._differences.labels(*key).inc()
        with self._lock:
            count = self._counts.get(key) or MirrorCount(*key)
            self._counts[key] = MirrorCount(
                *key,
                requests=count.requests + 1,
                errors=count.errors + int(error),
                differences=count.differences + int(different),
            )

    def snapshot(self) -> list[MirrorCount]:
        with self._lock:
            return sorted(self._counts.values(), key=lambda c: (c.namespace, c.isvc, c.mirror))
