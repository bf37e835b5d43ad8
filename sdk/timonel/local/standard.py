"""What KServe in Standard mode and the Deployment controller make of one InferenceService.

Pure: the controller (``timonel.local.controller`` with ``timonel.local.workloads``) reads and
writes the objects; these functions say what they should be. They follow KServe's code at the
commit ``../shared/kserve/KSERVE_FACTS.md`` cites:

- ``predictors`` is ``components/predictor.go``: the stable predictor ``<isvc>-predictor`` (or
  ``<isvc>-<spec.predictor.name>-predictor``) and one per ``spec.canary[]`` entry,
  ``<isvc>-<name>-predictor``, whose spec is the stable one merged with the entry's
  (``buildCanaryPredictor``: autoscaling fields cleared, fixed replicas: the entry's
  ``minReplicas``, else ceil(stable min x percent / 100), ``canaryReplicaCount``). The stable
  minimum is reduced by the replicas of canaries ``status.canaryStatuses`` reports ready, not
  below 1 (``adjustStableMinReplicasForCanaries``).
- ``deployment_manifest`` and ``service_manifest`` are the raw reconcilers' Deployment and
  Service (labels ``serving.kserve.io/inferenceservice``, ``component: predictor``, the pod's
  ``app: isvc.<deployment>``; the Service's port 80 to the container's first port).
- ``isvc_status`` is ``PropagateRawStatus`` (``PredictorReady`` from the stable Deployment's
  Available, Progressing and ReplicaFailure conditions; ``observedGeneration`` copied from the
  Deployment), the canary statuses and ``CanaryPredictorReady`` (a canary is ready when its
  Deployment has an available replica), ``PropagateModelStatus`` for raw deployments (from the
  stable predictor's pods) and the raw ingress reconciler (``url`` from the domain template
  ``{{.Name}}-{{.Namespace}}.{{.IngressDomain}}``, ``address`` the stable Service, and
  ``IngressReady`` once the predictor is ready).
- ``rollout`` and ``deployment_status`` are the Deployment controller: one ReplicaSet per pod
  template (``<deployment>-<pod-template-hash>``), a rolling update that keeps the old
  ReplicaSet's pods until the new one's are ready, and the status with ``Available`` (at least
  replicas - maxUnavailable available, maxUnavailable 25% rounded down) and ``Progressing``.

Replicas: the Deployment runs the HorizontalPodAutoscaler's floor, ``max(minReplicas, 1)``
(``minReplicas`` itself with ``serving.kserve.io/autoscalerClass: none``), as an idle cluster
does. The HPA's CPU metric has no local counterpart, so load never scales a Deployment above it;
``maxReplicas`` only bounds the HPA. The Deployment controller's progress deadline is not kept:
a pod that cannot start crash-loops (the supervisor's back-off), so ``Available`` stays False.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from timonel.kserve.vocabulary import (
    AUTOSCALER_CLASS,
    INITIALIZER_CONTAINER,
    STANDARD,
    STORAGE_INITIALIZER_SOURCE_URI,
    predictor_service_name,
)
from timonel.kube.status import revision_metadata
from timonel.local.conditions import FALSE, TRUE, UNKNOWN
from timonel.local.model_status import set_ready_copies, update_model_state, update_transition
from timonel.local.pods import ISVC_LABEL, NODE_NAME, REPLICA_ANNOTATION, pod_spec, template_hash
from timonel.local.reconcile import (
    DEFAULT_DOMAIN,
    INGRESS_READY,
    ISVC_CONDITIONS,
    PREDICTOR_READY,
    storage_uri,
    storage_uri_error,
)
from timonel.local.runtimes import Chosen, NoRuntime

#: KServe's condition on the canaries of a Standard-mode InferenceService.
CANARY_PREDICTOR_READY = "CanaryPredictorReady"
#: The label KServe's raw mode selects a predictor's pods by (``RawDeploymentAppLabel``).
APP_LABEL = "app"
COMPONENT_LABEL = "component"
#: Fields ``buildCanaryPredictor`` clears on a canary (the HPA's, which canaries do not get).
_AUTOSCALING_FIELDS = ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling")
#: The Deployment's default rolling update: 25% surge, 25% unavailable.
_ROLLING_PERCENT = 25


@dataclass(frozen=True)
class Predictor:
    """One Deployment and Service KServe makes for the InferenceService."""

    name: str  # of the Deployment and the Service
    spec: Mapping[str, Any]  # the predictor spec they are built from
    replicas: int
    canary: str | None = None  # the canary entry's predictor.name; None for the stable predictor
    traffic_percent: int = 0


@dataclass(frozen=True)
class PodState:
    """A pod of a ReplicaSet as the Deployment controller counts it."""

    name: str
    replica_set: str
    ready: bool


@dataclass(frozen=True)
class Rollout:
    """What the Deployment controller wants: the current ReplicaSet and each one's replicas."""

    replica_set: str
    replicas: dict[str, int]


def app_label(deployment: str) -> str:
    """KServe's ``GetRawServiceLabel``: the ``app`` label of a Deployment's pods."""
    return f"isvc.{deployment}"


def predictors(isvc: Mapping[str, Any]) -> tuple[Predictor, ...]:
    """The stable predictor first, then one per ``spec.canary[]`` entry."""
    metadata = isvc.get("metadata") or {}
    spec = isvc.get("spec") or {}
    name = str(metadata["name"])
    stable: Mapping[str, Any] = spec.get("predictor") or {}
    stable_min = stable.get("minReplicas")
    canaries: list[Predictor] = []
    for entry in spec.get("canary") or []:
        overrides: Mapping[str, Any] = entry.get("predictor") or {}
        percent = int(entry.get("trafficPercent") or 0)
        if overrides.get("minReplicas") is not None:
            replicas = int(overrides["minReplicas"])
        else:
            replicas = math.ceil((1 if stable_min is None else int(stable_min)) * percent / 100)
        merged = _merged(stable, overrides)
        for key in _AUTOSCALING_FIELDS:
            merged.pop(key, None)
        merged["minReplicas"] = replicas
        canary = str(overrides.get("name") or "")
        canaries.append(
            Predictor(predictor_service_name(name, canary), merged, replicas, canary, percent)
        )
    ready = {
        str(c.get("name")) for c in (isvc.get("status") or {}).get("canaryStatuses") or []
        if c.get("ready")
    }  # fmt: skip
    minimum = None if stable_min is None else int(stable_min)
    ready_replicas = sum(c.replicas for c in canaries if c.canary in ready)
    if minimum is not None and ready_replicas > 0:
        minimum = max(minimum - ready_replicas, 1)
    annotations = metadata.get("annotations") or {}
    if annotations.get(AUTOSCALER_CLASS) == "none" and minimum is not None:
        replicas = minimum
    else:
        replicas = max(minimum or 1, 1)
    stable_name = predictor_service_name(name, stable.get("name"))
    return (Predictor(stable_name, dict(stable), replicas), *canaries)


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """mergo's ``Merge(WithOverride)``: maps merged key by key, set values of ``overrides`` win."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        elif value not in (None, "", [], {}):
            merged[key] = copy.deepcopy(value)
    return merged


def _object_meta(isvc: Mapping[str, Any], predictor: Predictor) -> dict[str, Any]:
    """``buildObjectMeta``: the InferenceService's labels and the predictor's, and KServe's own."""
    metadata = isvc["metadata"]
    passed_on = revision_metadata(isvc)
    labels = {
        **passed_on["labels"],
        **(predictor.spec.get("labels") or {}),
        ISVC_LABEL: metadata["name"],
        COMPONENT_LABEL: "predictor",
    }
    annotations = {**passed_on["annotations"], **(predictor.spec.get("annotations") or {})}
    uri = storage_uri(predictor.spec)
    if uri:
        annotations[STORAGE_INITIALIZER_SOURCE_URI] = uri
    return {
        "name": predictor.name,
        "namespace": metadata.get("namespace") or "default",
        "labels": labels,
        "annotations": annotations,
    }


def _controller_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ownerReferences`` entry naming ``owner`` (an object as the API returns it) as the
    controller, which the garbage collector follows."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"].get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def deployment_manifest(isvc: Mapping[str, Any], predictor: Predictor) -> dict[str, Any]:
    """The ``apps/v1`` Deployment KServe's deployment reconciler writes for a predictor."""
    meta = _object_meta(isvc, predictor)
    pod_labels = {**meta["labels"], APP_LABEL: app_label(predictor.name)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**meta, "ownerReferences": [_controller_ref(isvc)]},
        "spec": {
            "replicas": predictor.replicas,
            "selector": {"matchLabels": {APP_LABEL: app_label(predictor.name)}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": meta["annotations"]},
                "spec": pod_spec(str(isvc["metadata"]["name"]), predictor.spec),
            },
        },
    }


def service_manifest(isvc: Mapping[str, Any], predictor: Predictor) -> dict[str, Any]:
    """The ``v1`` Service KServe's service reconciler writes: port 80 to the container's port."""
    meta = _object_meta(isvc, predictor)
    container = pod_spec(str(isvc["metadata"]["name"]), predictor.spec)["containers"][0]
    first = (container.get("ports") or [{}])[0]
    port: dict[str, Any] = {
        "name": first.get("name") or predictor.name,
        "port": 80,
        "targetPort": int(first.get("containerPort") or 8080),
        "protocol": first.get("protocol") or "TCP",
    }
    if "grpc" in port["name"] or "h2c" in port["name"]:
        port["appProtocol"] = "kubernetes.io/h2c"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**meta, "ownerReferences": [_controller_ref(isvc)]},
        "spec": {
            "selector": {APP_LABEL: app_label(predictor.name)},
            "ports": [port],
            "type": "ClusterIP",
        },
    }


# --- the Deployment controller ---------------------------------------------------------------


def pod_template_hash(deployment: Mapping[str, Any]) -> str:
    """The ``pod-template-hash`` of a Deployment's current pod template."""
    template = deployment["spec"]["template"]
    return template_hash(json.dumps(template, sort_keys=True, separators=(",", ":")))


def replica_set_manifest(deployment: Mapping[str, Any], replicas: int) -> dict[str, Any]:
    """The ReplicaSet ``<deployment>-<pod-template-hash>`` for the Deployment's pod template."""
    metadata = deployment["metadata"]
    digest = pod_template_hash(deployment)
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"]["labels"]["pod-template-hash"] = digest
    selector = {**deployment["spec"]["selector"]["matchLabels"], "pod-template-hash": digest}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{metadata['name']}-{digest}",
            "namespace": metadata.get("namespace") or "default",
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(deployment["spec"]["replicas"]),
                "deployment.kubernetes.io/revision": str(metadata.get("generation") or 1),
            },
            "ownerReferences": [_controller_ref(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": template,
        },
    }


def pod_manifest(replica_set: Mapping[str, Any], replica: int) -> dict[str, Any]:
    """A Pod (without status) of a ReplicaSet, named by ``generateName`` as it names them;
    ``replica`` numbers its process among the ReplicaSet's (``timonel.dev/replica``)."""
    metadata = replica_set["metadata"]
    template = replica_set["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{metadata['name']}-",
            "namespace": metadata.get("namespace") or "default",
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {
                **(template["metadata"].get("annotations") or {}),
                REPLICA_ANNOTATION: str(replica),
            },
            "ownerReferences": [_controller_ref(replica_set)],
        },
        "spec": {**copy.deepcopy(template["spec"]), "nodeName": NODE_NAME},
    }


def rollout(deployment: Mapping[str, Any], pods: Sequence[PodState]) -> Rollout:
    """The replicas of each ReplicaSet: the current one at the Deployment's, the old ones
    keeping as many pods as the current one lacks ready ones, so capacity never drops."""
    current = f"{deployment['metadata']['name']}-{pod_template_hash(deployment)}"
    wanted = int(deployment["spec"].get("replicas", 1))
    ready_new = sum(1 for pod in pods if pod.replica_set == current and pod.ready)
    replicas = {current: wanted}
    left = max(0, wanted - ready_new)
    for old in sorted({pod.replica_set for pod in pods} - {current}):
        kept = min(left, sum(1 for pod in pods if pod.replica_set == old))
        replicas[old] = kept
        left -= kept
    return Rollout(current, replicas)


def _max_unavailable(replicas: int) -> int:
    return replicas * _ROLLING_PERCENT // 100


def replica_set_status(replica_set: Mapping[str, Any], pods: Sequence[PodState]) -> dict[str, Any]:
    """The ReplicaSet controller's status of its pods."""
    mine = [pod for pod in pods if pod.replica_set == replica_set["metadata"]["name"]]
    ready = sum(1 for pod in mine if pod.ready)
    status: dict[str, Any] = {
        "replicas": len(mine),
        "fullyLabeledReplicas": len(mine),
        "observedGeneration": int(replica_set["metadata"].get("generation") or 1),
    }
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    return status


def deployment_status(
    deployment: Mapping[str, Any], pods: Sequence[PodState], *, now: str
) -> dict[str, Any]:
    """The Deployment controller's status: counts, ``Available`` and ``Progressing``."""
    current = f"{deployment['metadata']['name']}-{pod_template_hash(deployment)}"
    wanted = int(deployment["spec"].get("replicas", 1))
    ready = sum(1 for pod in pods if pod.ready)
    updated = [pod for pod in pods if pod.replica_set == current]
    updated_ready = sum(1 for pod in updated if pod.ready)
    previous = {c["type"]: c for c in (deployment.get("status") or {}).get("conditions") or []}

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        old = previous.get(kind) or {}
        moved = old.get("status") != status
        kept = {} if moved else old
        return {
            "type": kind,
            "status": status,
            "lastUpdateTime": now
            if old.get("reason") != reason
            else old.get("lastUpdateTime", now),
            "lastTransitionTime": kept.get("lastTransitionTime", now),
            "reason": reason,
            "message": message,
        }

    if ready >= wanted - _max_unavailable(wanted):
        available = condition(
            "Available", TRUE, "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
    else:
        available = condition(
            "Available",
            FALSE,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    if len(updated) == wanted and updated_ready == wanted and len(pods) == wanted:
        progressing = condition(
            "Progressing",
            TRUE,
            "NewReplicaSetAvailable",
            f'ReplicaSet "{current}" has successfully progressed.',
        )
    else:
        progressing = condition(
            "Progressing", TRUE, "ReplicaSetUpdated", f'ReplicaSet "{current}" is progressing.'
        )
    status: dict[str, Any] = {
        "observedGeneration": int(deployment["metadata"].get("generation") or 1),
        "replicas": len(pods),
        "updatedReplicas": len(updated),
        "conditions": [available, progressing],
    }
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    if len(pods) - ready:
        status["unavailableReplicas"] = len(pods) - ready
    return status


# --- KServe's status ----------------------------------------------------------------------


def isvc_status(
    isvc: Mapping[str, Any],
    deployments: Mapping[str, Mapping[str, Any]],
    stable_pods: Sequence[Mapping[str, Any]],
    *,
    now: str,
    domain: str = DEFAULT_DOMAIN,
    runtime: Chosen | NoRuntime | None = None,
) -> dict[str, Any]:
    """The status KServe writes in Standard mode.

    ``deployments``: the predictors' Deployments by name, as the API returns them (status
    included); ``stable_pods``: the stable predictor's pods with their status.
    """
    metadata = isvc.get("metadata") or {}
    name = str(metadata["name"])
    namespace = str(metadata.get("namespace") or "default")
    status: dict[str, Any] = copy.deepcopy(dict(isvc.get("status") or {}))
    conditions = ISVC_CONDITIONS.manage(status.setdefault("conditions", []), now)
    conditions.initialize()
    status["deploymentMode"] = STANDARD
    stable, *canaries = predictors(isvc)
    problem = reconcile_error(isvc, runtime)
    if problem is not None:
        reason, message = problem
        if reason == "InvalidPredictorSpec":
            conditions.mark_false(PREDICTOR_READY, "InternalError", message)
        update_transition(status, "InvalidSpec", {"reason": reason, "message": message})
        return status
    if isinstance(runtime, Chosen):
        status.pop("servingRuntimeName", None)
        status.pop("clusterServingRuntimeName", None)
        key = "clusterServingRuntimeName" if runtime.cluster else "servingRuntimeName"
        status[key] = runtime.name

    # reconcileCanaryDeployments
    canary_statuses = []
    for canary in canaries:
        found = deployments.get(canary.name) or {}
        ready = int((found.get("status") or {}).get("availableReplicas") or 0) > 0
        canary_statuses.append(
            {"name": canary.canary, "ready": ready, "trafficPercent": canary.traffic_percent}
        )
    if canary_statuses:
        status["canaryStatuses"] = canary_statuses
        all_ready = all(entry["ready"] for entry in canary_statuses)
        conditions.mark_info(
            CANARY_PREDICTOR_READY,
            TRUE if all_ready else FALSE,
            "AllCanariesReady" if all_ready else "CanariesNotReady",
            "",
        )
    else:
        status.pop("canaryStatuses", None)
        conditions.remove(CANARY_PREDICTOR_READY)

    # PropagateRawStatus
    deployment = deployments.get(stable.name) or {}
    component: dict[str, Any] = status.setdefault("components", {}).setdefault("predictor", {})
    kind, reason, message = _predictor_ready(deployment)
    if kind == TRUE:
        conditions.mark_true_with_reason(PREDICTOR_READY, reason, message)
        component["url"] = f"http://{predictor_host(stable.name, namespace, domain)}"
    else:
        conditions.mark(PREDICTOR_READY, kind, reason, message)
    if deployment:
        status["observedGeneration"] = int(
            (deployment.get("status") or {}).get("observedGeneration") or 0
        )
    _propagate_model_status(status, conditions.is_happy(), stable_pods)

    # the raw ingress reconciler
    if conditions.status_of(PREDICTOR_READY) != TRUE:
        conditions.mark_false(INGRESS_READY, "Predictor ingress not created")
        return status
    status["url"] = f"http://{predictor_host(name, namespace, domain)}"
    status["address"] = {"url": f"http://{stable.name}.{namespace}.svc.cluster.local"}
    conditions.mark_true(INGRESS_READY)
    return status


def reconcile_error(
    isvc: Mapping[str, Any], runtime: Chosen | NoRuntime | None
) -> tuple[str, str] | None:
    """Why KServe stops before writing any workload: (reason, message) for ``modelStatus``.

    An unsupported ``storageUri`` (which also turns ``PredictorReady`` False here, where KServe
    only records an event: ``timonel.local.reconcile`` says why), or no serving runtime.
    """
    stable = (isvc.get("spec") or {}).get("predictor") or {}
    uri = storage_uri(stable)
    problem = storage_uri_error(uri) if uri else None
    if problem is not None:
        return "InvalidPredictorSpec", f"fails to reconcile component: {problem}"
    if isinstance(runtime, NoRuntime):
        return runtime.reason, runtime.message
    return None


def predictor_host(name: str, namespace: str, domain: str) -> str:
    """KServe's default ingress domain template, ``{{.Name}}-{{.Namespace}}.{{.IngressDomain}}``."""
    return f"{name}-{namespace}.{domain}"


def _predictor_ready(deployment: Mapping[str, Any]) -> tuple[str, str, str]:
    """``PropagateRawStatus`` for one Deployment: (status, reason, message) of PredictorReady."""
    found = {c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []}
    available = found.get("Available") or {}
    progressing = found.get("Progressing") or {}
    failure = found.get("ReplicaFailure") or {}
    result = (FALSE, "", "")
    if available.get("status") == TRUE:
        result = (TRUE, available.get("reason", ""), available.get("message", ""))
    if progressing.get("status") == FALSE and progressing.get("message"):
        result = (FALSE, progressing.get("reason", ""), progressing["message"])
    elif progressing.get("status") == TRUE:
        if progressing.get("reason") == "NewReplicaSetAvailable":
            result = (TRUE, progressing["reason"], progressing.get("message", ""))
        elif available.get("status") != TRUE:
            result = (UNKNOWN, progressing.get("reason", ""), progressing.get("message", ""))
    if available.get("status") == FALSE:
        result = (FALSE, available.get("reason", ""), available.get("message", ""))
    if failure.get("status") == TRUE:
        result = (FALSE, failure.get("reason", ""), failure.get("message", ""))
    return result


def _propagate_model_status(
    status: dict[str, Any], ready: bool, pods: Sequence[Mapping[str, Any]]
) -> None:
    """KServe's ``PropagateModelStatus`` for a raw deployment, from the stable predictor's pods."""
    ready_pods = sum(
        1
        for pod in pods
        if (pod.get("status") or {}).get("phase") == "Running"
        and any(
            c.get("type") == "Ready" and c.get("status") == TRUE
            for c in (pod.get("status") or {}).get("conditions") or []
        )
    )
    set_ready_copies(status, ready_pods)
    if not pods:
        update_model_state(status, "Pending", None)
        return
    first = pods[0].get("status") or {}
    for container in first.get("initContainerStatuses") or []:
        if container.get("name") != INITIALIZER_CONTAINER:
            continue
        state = container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated")
        if "running" in state:
            if last is None:
                update_model_state(status, "Loading", None)
            return
        terminated = state.get("terminated") or {}
        if terminated.get("reason") == "Error":
            update_model_state(status, "FailedToLoad", _failure(terminated))
            return
        if (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff" and last:
            update_model_state(status, "FailedToLoad", _failure(last))
            return
    if ready:
        update_model_state(status, "Loaded", None)
        return
    for container in first.get("containerStatuses") or []:
        if container.get("name") != "kserve-container":
            continue
        state = container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated")
        if (state.get("terminated") or {}).get("reason") == "Error":
            update_model_state(status, "FailedToLoad", _failure(state["terminated"]))
        elif (state.get("waiting") or {}).get("reason") == "CrashLoopBackOff" and last:
            update_model_state(status, "FailedToLoad", _failure(last))
        else:
            update_model_state(status, "Pending", None)


def _failure(terminated: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "reason": "ModelLoadFailed",
        "message": terminated.get("message", ""),
        "exitCode": int(terminated.get("exitCode") or 0),
    }
