"""Every error Timonel raises on purpose, in one tree.

    TimonelError
    ├── SpecError          a ServingSpec, manifest or flag that cannot be served as written
    ├── ModelError         a SavedModel that TF Serving could not load or call
    ├── ReleaseError       a release that is missing, unpublished, changed or corrupt
    ├── StorageError       a bucket or folder that cannot be read or written
    ├── ServingError       a prediction or model-server call failed (carries the TF Serving code)
    ├── ApiError           the Kubernetes API refused a call (carries the parsed Status)
    ├── ClusterUnreachable no Kubernetes API to talk to: a kubeconfig that cannot be loaded, or a
    │                      server that cannot be reached (refused, DNS, TLS, cut mid-call)
    ├── WaitTimeout        a resource did not become ready in time (carries the last conditions)
    ├── EvidenceUnreachable a rollout's evidence (Prometheus, the ingress's mirror records)
    │                      cannot be read
    └── RolloutFailed      a rollout stopped and rolled back

Third-party errors (kubernetes, fsspec, grpc, TensorFlow) become one of these at the edge that calls
them, with ``raise ... from exc``, so the CLI can print one line and callers can branch on types.
Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class TimonelError(Exception):
    """The root: catch this to handle anything Timonel raises on purpose."""


class SpecError(TimonelError):
    """A spec or manifest that KServe, GKE or TF Serving would refuse or silently ignore.

    ``field`` is the dotted path of the offending field (``spec.predictor.minReplicas``) when one
    field is to blame, so the local API server can report it as a Kubernetes field cause.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ModelError(TimonelError):
    """A SavedModel that is missing, unreadable, or has no usable serving signature."""


class ReleaseError(TimonelError):
    """A release that cannot be published, found or verified."""


class StorageError(TimonelError):
    """A model repository (file://, gs://, s3://) that cannot be read or written."""


class ServingError(TimonelError):
    """A call to a TF-Serving-compatible server failed.

    ``code`` is the canonical status name TF Serving uses (``NOT_FOUND``, ``INVALID_ARGUMENT``...),
    shared by REST and gRPC so callers handle both transports the same way.
    """

    def __init__(self, message: str, *, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Status:
    """The parts of a Kubernetes ``Status`` object a caller branches on."""

    code: int
    reason: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, body: dict[str, Any], *, code: int | None = None) -> Status:
        return cls(
            code=int(body.get("code") or code or 0),
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or ""),
            details=dict(body.get("details") or {}),
        )


class ApiError(TimonelError):
    """The Kubernetes API answered with an error; ``status`` holds what it said."""

    def __init__(self, message: str, *, status: Status) -> None:
        super().__init__(message)
        self.status = status


class ClusterUnreachable(TimonelError):
    """No answer from the Kubernetes API: the configuration that names it cannot be loaded, or
    the server it names cannot be reached.

    Kept apart from ``ApiError`` because no server has spoken: there is no ``Status`` to branch
    on, and the fix is on the caller's side (another context, a running cluster, a trusted
    certificate). ``context`` and ``server`` say which cluster was meant, when known.
    """

    def __init__(
        self, message: str, *, context: str | None = None, server: str | None = None
    ) -> None:
        super().__init__(message)
        self.context = context
        self.server = server


class WaitTimeout(TimonelError):
    """A resource did not reach the wanted state before the deadline.

    ``conditions`` are the last status conditions seen, so the message can say why.
    """

    def __init__(self, message: str, *, conditions: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.conditions = conditions or []


class EvidenceUnreachable(TimonelError):
    """A source of a rollout's evidence (Prometheus, the ingress's mirror records) cannot be
    reached, or does not answer as that service does: the gates cannot judge without it."""


class RolloutFailed(TimonelError):
    """A progressive rollout measured a regression and rolled back."""


__all__ = [
    "ApiError",
    "ClusterUnreachable",
    "EvidenceUnreachable",
    "ModelError",
    "ReleaseError",
    "RolloutFailed",
    "ServingError",
    "SpecError",
    "Status",
    "StorageError",
    "TimonelError",
    "WaitTimeout",
]
