"""The Pod a revision's process stands for, as KServe's Knative mode and the kubelet write it.

Pure: ``pod_manifest`` is the Pod the revision's ReplicaSet creates, ``pod_status`` what the
kubelet reports for it from the supervisor's ``RevisionObservation``; the controller
(``timonel.local.controller``) creates, updates and deletes the objects.

Names and labels follow Knative's: the Deployment ``<revision>-deployment``, its ReplicaSet
``<revision>-deployment-<pod-template-hash>``, the Pod that name plus five generated characters;
the labels KServe and Knative put on the pod template (``serving.kserve.io/inferenceservice``,
``serving.knative.dev/revision``, ``serving.knative.dev/service``, ``component: predictor``, ...).
The containers are KServe's ``kserve-container`` and the ``storage-initializer`` init container.

A revision the autoscaler runs with several processes has one Pod per process, all of the same
ReplicaSet, as on a cluster; the emulation adds the annotation ``timonel.dev/replica`` (the
process's number, 0 for the first) so that a Pod's log is its own process's.

What the emulation cannot copy: Knative's ``queue-proxy`` sidecar is not listed (the local
ingress plays its part, with no container of its own), so ``kubectl get pods`` counts one
container where a cluster counts two (READY ``1/1``, not ``2/2``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from timonel.kserve.vocabulary import CONTAINER_NAME
from timonel.kserve.vocabulary import INITIALIZER_CONTAINER as INITIALIZER_CONTAINER
from timonel.kserve.vocabulary import ISVC_LABEL as ISVC_LABEL
from timonel.kserve.vocabulary import REVISION_LABEL as REVISION_LABEL
from timonel.local.reconcile import (
    Phase,
    Revision,
    RevisionObservation,
    container_args,
    predictor_service_name,
    storage_uri,
)

#: KServe's predictor container and its storage initializer.
SERVER_CONTAINER = CONTAINER_NAME
#: Where KServe's storage initializer puts the model, and the runtime reads it.
MODEL_MOUNT = "/mnt/models"

#: The server is a local ``timonel serve`` process, not an image: this name says so.
SERVER_IMAGE = "local/timonel-serve"
INITIALIZER_IMAGE = "kserve/storage-initializer"

#: The node every local pod runs on.
NODE_NAME = "timonel-local"

#: The number of the revision's process a Pod stands for (the emulation's own annotation).
REPLICA_ANNOTATION = "timonel.dev/replica"

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(revision: str) -> str:
    """A ReplicaSet's ``pod-template-hash``: ten characters, fixed for a revision (its template
    never changes)."""
    digest = hashlib.sha256(revision.encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


def pod_replica(pod: dict[str, Any]) -> int:
    """The number of the revision's process the Pod stands for."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(REPLICA_ANNOTATION, "0")
    return int(value) if str(value).isdigit() else 0


def replica_set_of(pod: dict[str, Any]) -> str:
    """The ReplicaSet that owns the Pod ("" for none)."""
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("kind") == "ReplicaSet":
            return str(owner.get("name") or "")
    return ""


def pod_manifest(isvc: dict[str, Any], revision: Revision, replica: int = 0) -> dict[str, Any]:
    """The Pod (without status) the revision's ReplicaSet creates for one of its processes,
    named by ``generateName``."""
    metadata = isvc["metadata"]
    name, namespace = metadata["name"], metadata.get("namespace", "default")
    service = predictor_service_name(name)
    replica_set = f"{revision.name}-deployment-{template_hash(revision.name)}"
    template = dict(revision.template)
    labels = {
        **(metadata.get("labels") or {}),
        "app": revision.name,
        "component": "predictor",
        ISVC_LABEL: name,
        "pod-template-hash": template_hash(revision.name),
        "serving.knative.dev/configuration": service,
        "serving.knative.dev/configurationGeneration": str(revision.number),
        REVISION_LABEL: revision.name,
        "serving.knative.dev/service": service,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{replica_set}-",
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                "serving.knative.dev/creator": "system:serviceaccount:kserve",
                REPLICA_ANNOTATION: str(replica),
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": replica_set,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {**pod_spec(name, template), "nodeName": NODE_NAME},
    }


def pod_spec(model_name: str, template: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec KServe builds from a predictor: the storage initializer, then TF Serving
    serving ``model_name`` with the predictor's own ``args``."""
    return {
        "initContainers": [
            {
                "name": INITIALIZER_CONTAINER,
                "image": INITIALIZER_IMAGE,
                "args": [storage_uri(template) or "", MODEL_MOUNT],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "containers": [
            {
                "name": SERVER_CONTAINER,
                "image": SERVER_IMAGE,
                "args": [
                    f"--model_name={model_name}",
                    f"--model_base_path={MODEL_MOUNT}",
                    *container_args(template),
                ],
                "ports": [{"name": "h2c", "containerPort": 9000, "protocol": "TCP"}],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "restartPolicy": "Always",
    }


def pod_status(
    observation: RevisionObservation, previous: dict[str, Any] | None, *, now: str
) -> dict[str, Any]:
    """The kubelet's status for the pod: phase, conditions, init and server container states.

    ``previous``: the pod's current status, whose timestamps stay while a state lasts and whose
    QoS class kube-apiserver set when it created the pod.
    """
    phase = observation.phase
    failure = observation.last_failure
    initialized = phase not in (Phase.PENDING, Phase.INITIALIZING) and not (
        failure is not None and failure.in_initializer
    )
    ready = phase is Phase.READY
    server_started = phase in (Phase.STARTING, Phase.READY)
    old = previous or {}

    def since(container: str, *states: str, field: str = "startedAt") -> str:
        """A time of the container's ``previous`` state if it was one of ``states``, else now."""
        for status in (*old.get("initContainerStatuses", []), *old.get("containerStatuses", [])):
            if status.get("name") == container:
                for state, found in (status.get("state") or {}).items():
                    if state in states and found.get(field):
                        return str(found[field])
        return now

    def condition(kind: str, true: bool) -> dict[str, Any]:
        for item in old.get("conditions", []):
            if item.get("type") == kind and (item.get("status") == "True") == true:
                return dict(item)
        return {"type": kind, "status": "True" if true else "False", "lastTransitionTime": now}

    if phase is Phase.INITIALIZING:
        init_state: dict[str, Any] = {
            "running": {"startedAt": since("running", INITIALIZER_CONTAINER)}
        }
    elif initialized:
        init_state = {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": since(INITIALIZER_CONTAINER, "running", "terminated"),
                "finishedAt": since(INITIALIZER_CONTAINER, "terminated", field="finishedAt"),
            }
        }
    elif failure is not None and failure.in_initializer:
        init_state = {"waiting": {"reason": "CrashLoopBackOff"}}
    else:
        init_state = {"waiting": {"reason": "PodInitializing"}}
    if server_started:
        server_state: dict[str, Any] = {
            "running": {"startedAt": since("running", SERVER_CONTAINER)}
        }
    elif failure is not None and not failure.in_initializer:
        server_state = {"waiting": {"reason": "CrashLoopBackOff"}}
    else:
        server_state = {"waiting": {"reason": "PodInitializing"}}

    def last_state(container: str, for_initializer: bool) -> dict[str, Any]:
        """The failed run's end; its ``finishedAt`` stays until the container fails again."""
        if failure is None or failure.in_initializer is not for_initializer:
            return {}
        finished = now
        for status in (*old.get("initContainerStatuses", []), *old.get("containerStatuses", [])):
            ended = (status.get("lastState") or {}).get("terminated") or {}
            if status.get("name") == container and status.get("restartCount") == restarts:
                finished = str(ended.get("finishedAt") or now)
        return {
            "terminated": {
                "exitCode": failure.exit_code,
                "reason": "Error",
                "message": failure.message,
                "finishedAt": finished,
            }
        }

    restarts = observation.restarts
    return {
        "phase": "Running" if initialized else "Pending",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "qosClass": old.get("qosClass", "BestEffort"),
        "startTime": str(old.get("startTime") or now),
        "conditions": [
            condition("PodScheduled", True),
            condition("Initialized", initialized),
            condition("ContainersReady", ready),
            condition("Ready", ready),
        ],
        "initContainerStatuses": [
            {
                "name": INITIALIZER_CONTAINER,
                "image": INITIALIZER_IMAGE,
                "imageID": "",
                "ready": initialized,
                "restartCount": restarts if failure is not None and failure.in_initializer else 0,
                "state": init_state,
                "lastState": last_state(INITIALIZER_CONTAINER, True),
            }
        ],
        "containerStatuses": [
            {
                "name": SERVER_CONTAINER,
                "image": SERVER_IMAGE,
                "imageID": "",
                "ready": ready,
                "started": server_started,
                "restartCount": 0 if failure is not None and failure.in_initializer else restarts,
                "state": server_state,
                "lastState": last_state(SERVER_CONTAINER, False),
            }
        ],
    }
