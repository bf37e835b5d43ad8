"""The Knative Service and Revisions KServe's Knative mode leaves in a cluster, as objects.

Pure: ``service_manifest`` is the Knative Service KServe's ``ksvc_reconciler.go``
(``createKnativeService``) writes for an InferenceService's predictor, with what Knative's
webhook adds; ``revision_manifest`` is a Revision as Knative's Configuration creates it from that
template, with the status its revision reconciler reports from the process's observation. The
status of the Service itself is computed by ``timonel.local.reconcile`` (it decides the isvc's
status from it, as KServe's ``PropagateStatus`` does); the controller writes the objects.

The template carries what KServe puts there: the InferenceService's labels and the annotations it
passes on (``timonel.kube.status.revision_metadata``), KServe's own labels, the autoscaling
annotations of ``SetAutoScalingAnnotations`` and the storage initializer's source URI (Knative
has no init containers; KServe's pod webhook adds one from that annotation). Annotations KServe
moves onto the Service (``serving.knative.dev/rollout-duration``) go to its metadata.

What the emulation cannot copy: Knative's Configuration and Route objects are not served (the
Revisions' owner reference names the Configuration as Knative does, with a uid derived from the
Service's); the container's image is the local ``timonel serve``, not the runtime's image. On a
cluster a user may write these objects, and KServe overwrites them on its next reconcile; here
they are read-only (``timonel.local.apiserver``), written only by the local controller under the
field manager ``WRITER``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from timonel.errors import ApiError, Status
from timonel.kserve.vocabulary import (
    KNATIVE_CLASS,
    KNATIVE_MAX_SCALE,
    KNATIVE_METRIC,
    KNATIVE_MIN_SCALE,
    KNATIVE_TARGET,
    KPA_CLASS,
    STORAGE_INITIALIZER_SOURCE_URI,
)
from timonel.kube.resources import INFERENCE_SERVICE, KNATIVE_REVISION, KNATIVE_SERVICE, Kind
from timonel.kube.status import MOVED_TO_KNATIVE_SERVICE, revision_metadata
from timonel.local.pods import ISVC_LABEL, SERVER_CONTAINER, pod_spec
from timonel.local.reconcile import (
    Phase,
    Revision,
    RevisionObservation,
    predictor_service_name,
    storage_uri,
)

#: The field manager the local controller writes Knative objects under; the local API server
#: refuses writes to them from anyone else.
WRITER = "timonel-local-controller"

#: Who Knative's webhook records as creator and last modifier: KServe's controller.
_KSERVE = "system:serviceaccount:kserve:kserve-controller-manager"
#: Knative's defaults for a revision template (``revision_defaults.go``).
_TIMEOUT_SECONDS = 300

# Knative's labels on revisions (``serving.knative.dev/...``).
CONFIGURATION_LABEL = "serving.knative.dev/configuration"
_CONFIGURATION_GENERATION = "serving.knative.dev/configurationGeneration"
_CONFIGURATION_UID = "serving.knative.dev/configurationUID"
_ROUTING_STATE = "serving.knative.dev/routingState"
_SERVICE_LABEL = "serving.knative.dev/service"
_SERVICE_UID = "serving.knative.dev/serviceUID"


def refusal(kind: Kind, method: str, name: str | None) -> ApiError:
    """The 405 for a write to a Knative object by anyone but the local controller.

    A cluster accepts such a write and KServe overwrites it on its next reconcile, so the change
    would not last there either; here it is refused with what to change instead.
    """
    target = f'{kind.group_resource} "{name}"' if name else kind.group_resource
    isvc = name.split("-predictor")[0] if name else "NAME"
    message = (
        f"{target}: {method} is not allowed: Knative Services and Revisions are written by the "
        "local KServe controller from their InferenceService; change the InferenceService "
        f"instead (kubectl edit isvc {isvc}): its spec.predictor is the revision template and "
        "canaryTrafficPercent the traffic split. On a cluster the write would be accepted and "
        "KServe would overwrite it on its next reconcile"
    )
    details: dict[str, Any] = {"group": kind.group, "kind": kind.plural}
    if name:
        details["name"] = name
    return ApiError(message, status=Status(405, "MethodNotAllowed", message, details))


def template_metadata(isvc: Mapping[str, Any], predictor: Mapping[str, Any]) -> dict[str, Any]:
    """The revision template's labels and annotations, as KServe builds them for a predictor."""
    name = str((isvc.get("metadata") or {})["name"])
    passed_on = revision_metadata(isvc)
    labels = {**passed_on["labels"], ISVC_LABEL: name, "component": "predictor"}
    annotations = dict(passed_on["annotations"])
    annotations.setdefault(KNATIVE_CLASS, KPA_CLASS)
    if predictor.get("scaleTarget") is not None:
        annotations[KNATIVE_TARGET] = str(int(predictor["scaleTarget"]))
    if predictor.get("scaleMetric") is not None:
        annotations[KNATIVE_METRIC] = str(predictor["scaleMetric"])
    annotations[KNATIVE_MIN_SCALE] = str(int(predictor.get("minReplicas", 1)))
    if int(predictor.get("maxReplicas") or 0) != 0:
        annotations[KNATIVE_MAX_SCALE] = str(int(predictor["maxReplicas"]))
    uri = storage_uri(predictor)
    if uri:
        annotations[STORAGE_INITIALIZER_SOURCE_URI] = uri
    return {"labels": labels, "annotations": annotations}


def _revision_spec(model_name: str, predictor: Mapping[str, Any]) -> dict[str, Any]:
    """The template's spec: the serving container, with Knative's defaults filled in (Knative
    runs no init containers: KServe's pod webhook adds the storage initializer to the pod)."""
    timeout = predictor.get("timeout")
    return {
        "containerConcurrency": int(predictor.get("containerConcurrency") or 0),
        "timeoutSeconds": int(timeout) if timeout is not None else _TIMEOUT_SECONDS,
        **({"responseStartTimeoutSeconds": int(timeout)} if timeout is not None else {}),
        "enableServiceLinks": False,
        "containers": pod_spec(model_name, predictor)["containers"],
    }


def _owner(kind_api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": kind_api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def service_manifest(
    isvc: Mapping[str, Any], latest: Revision, route: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The Knative Service (without status) for the latest revision's template and the traffic
    block KServe writes (``timonel.local.reconcile.Outcome.route``)."""
    metadata = isvc.get("metadata") or {}
    name = str(metadata["name"])
    annotations = (metadata.get("annotations") or {}).items()
    moved = {key: value for key, value in annotations if key in MOVED_TO_KNATIVE_SERVICE}
    return {
        "apiVersion": KNATIVE_SERVICE.api_version,
        "kind": KNATIVE_SERVICE.kind,
        "metadata": {
            "name": predictor_service_name(name),
            "namespace": str(metadata.get("namespace") or "default"),
            "labels": {
                **(metadata.get("labels") or {}),
                ISVC_LABEL: name,
                "component": "predictor",
            },
            "annotations": {
                **moved,
                "serving.knative.dev/creator": _KSERVE,
                "serving.knative.dev/lastModifier": _KSERVE,
            },
            "ownerReferences": [
                _owner(
                    INFERENCE_SERVICE.api_version,
                    INFERENCE_SERVICE.kind,
                    name,
                    str(metadata.get("uid") or ""),
                )
            ],
        },
        "spec": {
            "template": {
                "metadata": template_metadata(isvc, latest.template),
                "spec": _revision_spec(name, latest.template),
            },
            "traffic": [dict(target) for target in route],
        },
    }


def configuration_uid(service: Mapping[str, Any]) -> str:
    """The uid of the Service's Configuration, which is not served: fixed for the Service."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"configuration/{service['metadata']['uid']}"))


def revision_manifest(
    service: Mapping[str, Any],
    isvc: Mapping[str, Any],
    revision: Revision,
    observation: RevisionObservation,
    *,
    routed: bool,
    replicas: Sequence[RevisionObservation],
    now: str,
) -> dict[str, Any]:
    """A Revision of the Service, with the status Knative reports for its processes.

    ``routed``: a traffic target names it (routingState active, else reserve); ``replicas``: its
    processes (one for each replica the controller wants).
    """
    meta = service["metadata"]
    config = str(meta["name"])
    template = (
        template_metadata(isvc, revision.template)
        if revision.metadata is None
        else _recorded_template(isvc, revision)
    )
    labels = {
        **template["labels"],
        CONFIGURATION_LABEL: config,
        _CONFIGURATION_GENERATION: str(revision.number),
        _CONFIGURATION_UID: configuration_uid(service),
        _ROUTING_STATE: "active" if routed else "reserve",
        _SERVICE_LABEL: config,
        _SERVICE_UID: str(meta["uid"]),
    }
    annotations = {
        **template["annotations"],
        "serving.knative.dev/creator": _KSERVE,
        "serving.knative.dev/routes": config,
        "serving.knative.dev/routingStateModified": now,
    }
    return {
        "apiVersion": KNATIVE_REVISION.api_version,
        "kind": KNATIVE_REVISION.kind,
        "metadata": {
            "name": revision.name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                _owner(
                    KNATIVE_SERVICE.api_version, "Configuration", config, configuration_uid(service)
                )
            ],
        },
        "spec": _revision_spec(str(isvc["metadata"]["name"]), revision.template),
        "status": revision_status(revision, observation, replicas=replicas),
    }


def _recorded_template(isvc: Mapping[str, Any], revision: Revision) -> dict[str, Any]:
    """The template metadata the revision was created with (its labels and annotations as the
    InferenceService had them then), not the InferenceService's current ones."""
    recorded = revision.metadata or {}
    then = {
        **isvc,
        "metadata": {
            **isvc["metadata"],
            "labels": recorded.get("labels") or {},
            "annotations": recorded.get("annotations") or {},
        },
    }
    return template_metadata(then, revision.template)


def revision_status(
    revision: Revision,
    observation: RevisionObservation,
    *,
    replicas: Sequence[RevisionObservation],
) -> dict[str, Any]:
    """Knative's revision status: Ready from ever having been ready (a revision scaled to zero
    stays Ready, with Active False), a container that failed before, replicas from the processes
    (desired: those that run; actual: those that are ready)."""
    actual = sum(1 for replica in replicas if replica.phase is Phase.READY)
    serving = actual > 0
    failure = observation.last_failure
    if observation.has_been_ready:
        ready = {"type": "Ready", "status": "True"}
        healthy = {"type": "ContainerHealthy", "status": "True"}
    elif failure is not None:
        reason = f"ExitCode{failure.exit_code}"
        message = f"Container failed with: {failure.message}"
        ready = {"type": "Ready", "status": "False", "reason": reason, "message": message}
        healthy = {
            "type": "ContainerHealthy",
            "status": "False",
            "reason": reason,
            "message": message,
        }
    else:
        ready = {"type": "Ready", "status": "Unknown", "reason": "Deploying"}
        healthy = {"type": "ContainerHealthy", "status": "Unknown", "reason": "Deploying"}
    active = (
        {"type": "Active", "status": "True"}
        if serving
        else {
            "type": "Active",
            "status": "False",
            "reason": "NoTraffic",
            "message": "The target is not receiving traffic.",
        }
    )
    resources = {"type": "ResourcesAvailable", "status": ready["status"]}
    if "reason" in ready:
        resources["reason"] = ready["reason"]
    return {
        "observedGeneration": 1,
        "conditions": [active, healthy, ready, resources],
        "serviceName": revision.name,
        "actualReplicas": actual,
        "desiredReplicas": len(replicas),
        "containerStatuses": [{"name": SERVER_CONTAINER}],
    }
