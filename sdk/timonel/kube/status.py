"""What an InferenceService says about itself, read into one typed view.

KServe spreads the answer to "is it serving, and what?" over conditions, per-component revisions,
a Knative traffic list or Standard-mode canary statuses, and the model status. ``ServiceStatus``
gathers those into one value for the CLI table, ``-o json`` and the waiter; reading it is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from timonel.errors import SpecError
from timonel.kserve.vocabulary import (
    DEPLOYMENT_MODE,
    KNATIVE,
    KNATIVE_MAX_SCALE,
    KNATIVE_MIN_SCALE,
    STANDARD,
    STOP,
    STORAGE_INITIALIZER_SOURCE_URI,
    predictor_service_name,
    resolve_mode,
)

#: The predictor implementations a TF Serving InferenceService may use (``model`` after defaulting).
IMPLEMENTATIONS = ("model", "tensorflow")


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""

    def __str__(self) -> str:
        why = ": ".join(part for part in (self.reason, self.message) if part)
        return f"{self.type}={self.status}" + (f" ({why})" if why else "")


@dataclass(frozen=True)
class TrafficTarget:
    """One slice of the traffic split: which revision, what share, under which tag."""

    revision: str
    percent: int
    latest: bool = False
    tag: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    """An InferenceService's readiness, revisions and traffic split."""

    name: str
    namespace: str
    mode: str
    ready: bool
    url: str | None
    storage_uri: str | None
    generation: int
    observed_generation: int
    latest_created_revision: str | None
    latest_ready_revision: str | None
    latest_rolledout_revision: str | None
    previous_rolledout_revision: str | None
    canary_percent: int | None
    traffic: tuple[TrafficTarget, ...]
    conditions: tuple[Condition, ...]
    model_state: str | None
    failure: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def why_not_ready(self) -> str:
        """The conditions that are not True, with their reasons: the answer to "why not?"."""
        failing = [str(c) for c in self.conditions if c.status != "True"]
        if self.failure:
            failing.append(f"model: {self.failure}")
        return "; ".join(failing) or "no conditions reported yet"


#: Annotations KServe keeps off the Knative Service and its revision template
#: (``ServiceAnnotationDisallowedList`` in ``pkg/constants/constants.go``; a cluster's
#: ``inferenceservice`` ConfigMap may add keys).
NOT_PASSED_ON = frozenset(
    {
        KNATIVE_MIN_SCALE,
        KNATIVE_MAX_SCALE,
        STORAGE_INITIALIZER_SOURCE_URI,
        "kubectl.kubernetes.io/last-applied-configuration",
        "modelFormat",  # the defaulter writes it
    }
)


#: Annotations KServe moves from the revision template onto the Knative Service itself
#: (``managedKsvcAnnotations`` in ``ksvc_reconciler.go``): a change to them alone changes the
#: Service's metadata, not its spec, so it makes no revision and moves no generation.
MOVED_TO_KNATIVE_SERVICE = frozenset(
    {"serving.knative.dev/rollout-duration", "serving.knative.openshift.io/enablePassthrough"}
)

#: Labels KServe keeps off the revision template (``RevisionTemplateLabelDisallowedList``).
NOT_ON_REVISION_TEMPLATE = frozenset({"networking.knative.dev/visibility"})


def revision_metadata(isvc: Mapping[str, Any]) -> dict[str, Any]:
    """The labels and annotations KServe copies into the revision (or pod) template: a change
    to them alone makes a new revision."""
    metadata = isvc.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    left_out = NOT_PASSED_ON | MOVED_TO_KNATIVE_SERVICE
    return {
        "labels": {k: v for k, v in labels.items() if k not in NOT_ON_REVISION_TEMPLATE},
        "annotations": {k: v for k, v in annotations.items() if k not in left_out},
    }


def deployment_mode(isvc: dict[str, Any]) -> str:
    """``Knative`` or ``Standard``: what the controller resolved, else what the annotation asks."""
    resolved = isvc.get("status", {}).get("deploymentMode")
    asked = isvc.get("metadata", {}).get("annotations", {}).get(DEPLOYMENT_MODE)
    return STANDARD if resolve_mode(resolved or asked) == STANDARD else KNATIVE


def is_stopped(isvc: Mapping[str, Any]) -> bool:
    """Whether the stop annotation is set (``true``, in any case, as KServe reads it)."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(STOP, "")).lower() == "true"


def implementation(predictor: dict[str, Any], *, where: str = "spec.predictor") -> str:
    """The key holding the model server (``model`` or ``tensorflow``) in a predictor."""
    for key in IMPLEMENTATIONS:
        if isinstance(predictor.get(key), dict):
            return key
    raise SpecError(
        f"{where} has neither `model` nor `tensorflow`: Timonel manages InferenceServices that "
        "serve a model from a storage URI; render one with `timonel render`",
        field=where,
    )


def predictor_storage_uri(predictor: dict[str, Any]) -> str | None:
    uri = predictor.get(implementation(predictor), {}).get("storageUri")
    return uri if isinstance(uri, str) else None


def conditions_of(isvc: dict[str, Any]) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "Unknown")),
            reason=str(c.get("reason") or ""),
            message=str(c.get("message") or ""),
        )
        for c in isvc.get("status", {}).get("conditions") or []
    )


def is_true(isvc: dict[str, Any], condition: str) -> bool:
    return any(c.type == condition and c.status == "True" for c in conditions_of(isvc))


def _knative_traffic(predictor_status: dict[str, Any]) -> tuple[TrafficTarget, ...]:
    targets = []
    for entry in predictor_status.get("traffic") or []:
        latest = bool(entry.get("latestRevision"))
        revision = entry.get("revisionName") or (
            predictor_status.get("latestReadyRevision") if latest else None
        )
        targets.append(
            TrafficTarget(
                revision=str(revision or ""),
                percent=int(entry.get("percent") or 0),
                latest=latest,
                tag=entry.get("tag"),
                url=entry.get("url"),
            )
        )
    return tuple(targets)


def _standard_traffic(isvc: dict[str, Any]) -> tuple[TrafficTarget, ...]:
    """Standard mode has no traffic list: weights live on canary statuses (ready ones only)."""
    name = isvc["metadata"]["name"]
    stable = isvc.get("spec", {}).get("predictor", {}).get("name")
    canaries = [
        TrafficTarget(
            revision=predictor_service_name(name, c["name"]),
            percent=int(c.get("trafficPercent") or 0) if c.get("ready") else 0,
            latest=True,
            tag=c["name"],
        )
        for c in isvc.get("status", {}).get("canaryStatuses") or []
    ]
    stable_target = TrafficTarget(
        revision=predictor_service_name(name, stable),
        percent=100 - sum(c.percent for c in canaries),
        latest=not canaries,
        tag=stable,
    )
    return (stable_target, *canaries)


def read_status(isvc: dict[str, Any]) -> ServiceStatus:
    """Read an InferenceService object (as the API returns it) into a ``ServiceStatus``."""
    metadata = isvc.get("metadata", {})
    predictor = isvc.get("spec", {}).get("predictor", {})
    status = isvc.get("status", {})
    component = status.get("components", {}).get("predictor", {})
    mode = deployment_mode(isvc)
    model_status = status.get("modelStatus", {})
    failure_info = model_status.get("lastFailureInfo") or {}
    failure = failure_info.get("message") or failure_info.get("reason")
    percent = predictor.get("canaryTrafficPercent")
    if mode == "Standard":
        canaries = isvc.get("spec", {}).get("canary") or []
        percent = sum(int(c.get("trafficPercent") or 0) for c in canaries) if canaries else None
    return ServiceStatus(
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace", "")),
        mode=mode,
        ready=is_true(isvc, "Ready"),
        url=status.get("url"),
        storage_uri=predictor_storage_uri(predictor) if predictor else None,
        generation=int(metadata.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        latest_created_revision=component.get("latestCreatedRevision"),
        latest_ready_revision=component.get("latestReadyRevision"),
        latest_rolledout_revision=component.get("latestRolledoutRevision"),
        previous_rolledout_revision=component.get("previousRolledoutRevision"),
        canary_percent=None if percent is None else int(percent),
        traffic=_standard_traffic(isvc) if mode == "Standard" else _knative_traffic(component),
        conditions=conditions_of(isvc),
        model_state=model_status.get("states", {}).get("targetModelState"),
        failure=str(failure) if failure else None,
    )
