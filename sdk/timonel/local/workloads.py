"""Standard mode's objects and processes: Deployments, ReplicaSets, Pods and Services through the
API, one ``timonel serve`` process per scheduled Pod.

The I/O around ``timonel.local.standard``: for one InferenceService, ``Workloads.reconcile``
writes what KServe's raw reconcilers write (a Deployment and a Service per predictor, orphaned
ones deleted), plays the Deployment and ReplicaSet controllers (a ReplicaSet per pod template,
Pods created and deleted to its replicas, their status written) and the kubelet (each Pod's
process through the supervisor, keyed by its ReplicaSet and numbered by the Pod's
``timonel.dev/replica`` annotation, so the processes of one ReplicaSet share one model copy),
and returns the InferenceService's status.

The machine's limit: at most ``replica_limit`` processes run per Deployment (by default the
number of CPUs, as each TF Serving process is given one CPU by KServe's runtime). Pods past it
stay Pending with ``PodScheduled`` False (``Unschedulable``, "Insufficient cpu"), as on a node
that is full, so a Deployment asking for more replicas than the machine holds is not Available.

A Pod deleted by someone else (``kubectl delete pod``) has its process stopped; its ReplicaSet
makes a new Pod and the process starts again under it.
"""

from __future__ import annotations

import datetime
import itertools
import os
import threading
from collections.abc import Mapping
from typing import Any

from timonel.errors import ApiError
from timonel.kube.client import Cluster
from timonel.kube.requests import (
    create_object,
    get_object,
    list_objects,
    replace_object,
)
from timonel.kube.resources import DEPLOYMENT, POD, REPLICA_SET, SERVICE, Kind
from timonel.local import objects
from timonel.local.pods import ISVC_LABEL, pod_replica, pod_status, replica_set_of
from timonel.local.reconcile import DEFAULT_DOMAIN, Phase, RevisionObservation
from timonel.local.revisions import RevisionKey
from timonel.local.runtimes import Chosen, NoRuntime
from timonel.local.standard import (
    APP_LABEL,
    COMPONENT_LABEL,
    PodState,
    app_label,
    deployment_manifest,
    deployment_status,
    isvc_status,
    pod_manifest,
    predictors,
    reconcile_error,
    replica_set_manifest,
    replica_set_status,
    rollout,
    service_manifest,
)
from timonel.local.supervisor import RevisionSpec, Supervisor

#: The fields of our objects a reconcile keeps as KServe writes them (the rest is the server's).
_OWNED = ("spec",)
_OWNED_METADATA = ("labels", "annotations", "ownerReferences")


def machine_replica_limit() -> int:
    """Processes per Deployment: one per CPU, as KServe's TF Serving runtime asks one CPU each."""
    return max(1, os.cpu_count() or 1)


class Workloads:
    """Standard-mode InferenceServices' objects and processes; see the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        supervisor: Supervisor,
        *,
        domain: str = DEFAULT_DOMAIN,
        replica_limit: int | None = None,
    ) -> None:
        self._cluster = cluster
        self._supervisor = supervisor
        self._domain = domain
        self._limit = replica_limit or machine_replica_limit()
        self._lock = threading.Lock()
        #: each Deployment's ReplicaSets with processes, for the ingress (by Deployment)
        self._backends: dict[RevisionKey, tuple[RevisionKey, ...]] = {}
        self._turns = itertools.count()
        #: the Pod made for each process; another name means someone deleted it
        self._pods_made: dict[tuple[RevisionKey, int], str] = {}

    # --- for the ingress ---

    def owns(self, backend: RevisionKey) -> bool:
        with self._lock:
            return backend in self._backends

    def replicas(self, backend: RevisionKey) -> list[RevisionObservation]:
        """What each process of a Deployment does, its ReplicaSets' in order."""
        with self._lock:
            keys = self._backends.get(backend, ())
        return [seen for key in keys for seen in self._supervisor.replicas(key).values()]

    def state(self, backend: RevisionKey) -> RevisionObservation | None:
        """A ready process of the Deployment, taken in turn as its Service balances; else the
        first one's state; None without any."""
        found = self.replicas(backend)
        ready = [seen for seen in found if seen.phase is Phase.READY]
        if ready:
            return ready[next(self._turns) % len(ready)]
        return found[0] if found else None

    # --- reconcile ---

    def reconcile(
        self, isvc: dict[str, Any], runtime: Chosen | NoRuntime | None
    ) -> tuple[dict[str, Any], bool]:
        """Make the InferenceService's objects and processes; (its status, whether to come back)."""
        metadata = isvc["metadata"]
        namespace, name = metadata.get("namespace") or "default", metadata["name"]
        now = _now()
        if reconcile_error(isvc, runtime) is not None:  # KServe stops before any workload
            return isvc_status(isvc, {}, [], now=now, domain=self._domain, runtime=runtime), False
        wanted = predictors(isvc)
        deployments: dict[str, dict[str, Any]] = {}
        again = False
        for predictor in wanted:
            deployment = self._apply(deployment_manifest(isvc, predictor))
            self._apply(service_manifest(isvc, predictor))
            deployment, moved = self._run(name, deployment, now)
            deployments[predictor.name] = deployment
            again = again or moved
        self._delete_orphans(namespace, name, {predictor.name for predictor in wanted})
        stable_pods = self._list(POD, namespace, f"{APP_LABEL}={app_label(wanted[0].name)}")
        status = isvc_status(
            isvc, deployments, stable_pods, now=now, domain=self._domain, runtime=runtime
        )
        return status, again

    def forget(self, namespace: str, name: str) -> None:
        """The InferenceService is gone or stopped: its Deployments, ReplicaSets, Services go."""
        with self._lock:
            for backend in [
                b for b in self._backends if (b.namespace, b.isvc) == (namespace, name)
            ]:
                del self._backends[backend]
        for kind in (DEPLOYMENT, REPLICA_SET, SERVICE, POD):
            for obj in self._list(kind, namespace, f"{ISVC_LABEL}={name}"):
                self._delete(kind, obj)

    # --- KServe's objects ---

    def _apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or update what KServe owns of it when that differs."""
        metadata = manifest["metadata"]
        kind = DEPLOYMENT if manifest["kind"] == "Deployment" else SERVICE
        try:
            current: dict[str, Any] = self._cluster.send(
                get_object(kind, metadata["namespace"], metadata["name"])
            )
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            created: dict[str, Any] = self._cluster.send(create_object(manifest))
            return created
        same = all(current.get(key) == manifest.get(key) for key in _OWNED) and all(
            (current["metadata"].get(key) or {}) == (metadata.get(key) or {})
            for key in _OWNED_METADATA
        )
        if same:
            return current
        updated = {**current, **{key: manifest[key] for key in _OWNED}}
        updated["metadata"] = {
            **current["metadata"],
            **{key: metadata[key] for key in _OWNED_METADATA if key in metadata},
        }
        replaced: dict[str, Any] = self._cluster.send(replace_object(updated))
        return replaced

    def _delete_orphans(self, namespace: str, name: str, expected: set[str]) -> None:
        """KServe deletes the predictor Deployments and Services it no longer wants (a promoted
        or rolled back canary's, the old stable one); their ReplicaSets and Pods go with them."""
        selector = f"{ISVC_LABEL}={name},{COMPONENT_LABEL}=predictor"
        for kind in (DEPLOYMENT, SERVICE):
            for obj in self._list(kind, namespace, selector):
                deployment = obj["metadata"]["name"]
                if deployment in expected:
                    continue
                self._delete(kind, obj)
                if kind is not DEPLOYMENT:
                    continue
                with self._lock:
                    self._backends.pop(RevisionKey(namespace, name, deployment), None)
                pods_of = f"{APP_LABEL}={app_label(deployment)}"
                for replica_set in self._list(REPLICA_SET, namespace, pods_of):
                    key = RevisionKey(namespace, name, replica_set["metadata"]["name"])
                    self._supervisor.stop(key)
                    self._delete(REPLICA_SET, replica_set)
                for pod in self._list(POD, namespace, pods_of):
                    self._delete(POD, pod)

    # --- the Deployment and ReplicaSet controllers, and the kubelet ---

    def _run(
        self, isvc_name: str, deployment: dict[str, Any], now: str
    ) -> tuple[dict[str, Any], bool]:
        """Roll the Deployment's ReplicaSets and Pods to its spec; (it with its status, again)."""
        metadata = deployment["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        selector = f"{APP_LABEL}={app_label(name)}"
        replica_sets = {
            rs["metadata"]["name"]: rs for rs in self._list(REPLICA_SET, namespace, selector)
        }
        pods = self._list(POD, namespace, selector)
        plan = rollout(deployment, self._states(namespace, isvc_name, pods))
        if plan.replica_set not in replica_sets:
            created = self._cluster.send(create_object(replica_set_manifest(deployment, 0)))
            replica_sets[plan.replica_set] = created
        again = False
        left = self._limit
        running: list[RevisionKey] = []
        for rs_name, replica_set in sorted(
            replica_sets.items(), key=lambda item: item[0] != plan.replica_set
        ):
            want = plan.replicas.get(rs_name, 0)
            if int(replica_set["spec"].get("replicas") or 0) != want:
                replica_set = self._cluster.send(
                    replace_object(
                        {**replica_set, "spec": {**replica_set["spec"], "replicas": want}}
                    )
                )
            key = RevisionKey(namespace, isvc_name, rs_name)
            scheduled = min(want, left)
            left -= scheduled
            mine = [pod for pod in pods if replica_set_of(pod) == rs_name]
            again = self._sync_pods(key, replica_set, mine, want, scheduled, now) or again
            if scheduled:
                running.append(key)
        with self._lock:
            self._backends[RevisionKey(namespace, isvc_name, name)] = tuple(running)
        pods = self._list(POD, namespace, selector)
        states = self._states(namespace, isvc_name, pods)
        for replica_set in self._list(REPLICA_SET, namespace, selector):
            again = (
                self._write_status(replica_set, replica_set_status(replica_set, states)) or again
            )
        status = deployment_status(deployment, states, now=now)
        again = self._write_status(deployment, status) or again
        return {**deployment, "status": status}, again

    def _sync_pods(
        self,
        key: RevisionKey,
        replica_set: dict[str, Any],
        pods: list[dict[str, Any]],
        want: int,
        scheduled: int,
        now: str,
    ) -> bool:
        """Pods numbered 0..want-1, the first ``scheduled`` with a process; True to come back."""
        by_replica: dict[int, dict[str, Any]] = {}
        for pod in sorted(pods, key=lambda pod: pod["metadata"]["name"]):
            replica = pod_replica(pod)
            if replica < want and replica not in by_replica:
                by_replica[replica] = pod
            else:
                self._delete(POD, pod)
        again = False
        for replica in range(want):
            made = self._pods_made.get((key, replica))
            found = by_replica.get(replica)
            if made is not None and (found is None or found["metadata"]["name"] != made):
                # Its Pod was deleted: the ReplicaSet's new Pod runs a new process.
                self._pods_made.pop((key, replica), None)
                self._supervisor.stop(key, replica)
                again = True
            if found is None:
                found = self._cluster.send(create_object(pod_manifest(replica_set, replica)))
                by_replica[replica] = found
            self._pods_made[(key, replica)] = found["metadata"]["name"]
        for stale in [k for k in self._pods_made if k[0] == key and k[1] >= want]:
            del self._pods_made[stale]
        if scheduled:
            self._supervisor.ensure(key, _spec(replica_set), replicas=scheduled)
        else:
            self._supervisor.stop(key)
        seen = self._supervisor.replicas(key)
        for replica, pod in by_replica.items():
            if replica < scheduled:
                status = pod_status(
                    seen.get(replica, RevisionObservation()), pod.get("status"), now=now
                )
            else:
                status = _unschedulable(pod.get("status"), self._limit, now=now)
            if status != pod.get("status"):
                again = self._write_status(pod, status) or again
        return again

    def _states(self, namespace: str, isvc_name: str, pods: list[dict[str, Any]]) -> list[PodState]:
        states = []
        for pod in pods:
            replica_set = replica_set_of(pod)
            seen = self._supervisor.replicas(RevisionKey(namespace, isvc_name, replica_set))
            observation = seen.get(pod_replica(pod))
            ready = observation is not None and observation.phase is Phase.READY
            states.append(PodState(pod["metadata"]["name"], replica_set, ready))
        return states

    # --- API helpers ---

    def _list(self, kind: Kind, namespace: str, selector: str) -> list[dict[str, Any]]:
        listing = self._cluster.send(list_objects(kind, namespace, label_selector=selector))
        return [
            item
            for item in listing.get("items") or []
            if not item["metadata"].get("deletionTimestamp")
        ]

    def _delete(self, kind: Kind, obj: Mapping[str, Any]) -> None:
        objects.delete(self._cluster, kind, obj)

    def _write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> bool:
        return objects.write_status(self._cluster, obj, status)


def _spec(replica_set: Mapping[str, Any]) -> RevisionSpec:
    """What the kubelet runs for the ReplicaSet's pod template: the storage initializer's URI and
    the server's own flags (after the runtime's model name and base path)."""
    spec = replica_set["spec"]["template"]["spec"]
    initializer = spec["initContainers"][0]["args"]
    server = spec["containers"][0]["args"]
    model_name = str(server[0]).removeprefix("--model_name=")
    return RevisionSpec(
        model_name=model_name, storage_uri=str(initializer[0]), args=tuple(server[2:])
    )


def _unschedulable(previous: Mapping[str, Any] | None, limit: int, *, now: str) -> dict[str, Any]:
    """The scheduler's status of a Pod no node has room for."""
    old = previous or {}
    for condition in old.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return dict(old)
    return {
        "phase": "Pending",
        "qosClass": old.get("qosClass", "BestEffort"),
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastTransitionTime": now,
                "reason": "Unschedulable",
                "message": (
                    f"0/1 nodes are available: 1 Insufficient cpu. timonel local runs at most "
                    f"{limit} processes per Deployment on this machine."
                ),
            }
        ],
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
