"""The local KServe controller: InferenceServices in, ``timonel serve`` processes and status out.

``Controller(cluster, state_dir)`` lists and watches InferenceServices in every namespace
through the Kubernetes API (``timonel local``'s server, or any API with KServe's CRD), with the
same ``timonel.kube`` requests and ``Cluster`` every other Timonel command sends, reconciles
each one as KServe does in Knative mode (``timonel.local.reconcile``), runs the ``timonel serve``
processes of each revision that needs them (``timonel.local.supervisor``: one, or as many as the
ingress's autoscaler asks for through ``scale``), and writes ``status`` through
the status subresource, retrying a conflict on a fresh read. ``start()`` returns at once (the work
runs on threads); ``stop()`` ends the threads and terminates every process.

Status follows KServe's shape field for field (``conditions``, ``url``, ``address``,
``components.predictor`` with revisions and ``traffic``, ``modelStatus``, ``observedGeneration``,
``deploymentMode``). Clients reach revisions as on a cluster, through ``status.url`` on the ingress
(``timonel.local.ingress``), which asks ``revision_state`` where each revision's server listens.
What the local emulation adds, all in places KServe clients ignore:

``conditions[type=LocalCPUFallback]``
    Severity Info: the predictor asks for GPUs, which run on the CPU here.

Each Knative-mode InferenceService has its Knative Service ``<isvc>-predictor`` and Revisions as
objects (``timonel.local.knative_objects``), read-only to users; ``observedGeneration`` is the
Knative Service's, as KServe copies it, so it does not move for a change KServe does not pass on.

Each running revision process (replica) has a Pod (``timonel.local.pods``), created as the
revision's ReplicaSet would and its status written as the kubelet would from the supervisor's
observation; pods of processes that no longer run are deleted. A process being stopped is first
drained: the ``drain`` given to ``listen`` (the ingress's) waits for its requests in flight.

Each revision's files (model copy, ``storage-initializer.log``, ``server.log``) live under
``<state_dir>/revisions/<namespace>/<isvc>/<revision>/``.

An InferenceService annotated ``serving.kserve.io/stop: "true"`` has its revisions stopped and
dropped, as KServe deletes its Knative Service; removing the annotation starts it again from a
first revision.

InferenceServices in Standard mode (``serving.kserve.io/deploymentMode: Standard``) get what
KServe's raw reconcilers make, a Deployment and a Service per predictor (the stable one and each
``spec.canary[]`` entry), with ReplicaSets, Pods and processes (``timonel.local.workloads`` over
the pure ``timonel.local.standard``); the ingress asks a Deployment's backend for its ready
processes in turn.
"""

from __future__ import annotations

import datetime
import functools
import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from timonel.errors import ApiError, Status
from timonel.kserve.vocabulary import STANDARD
from timonel.kube.client import Cluster
from timonel.kube.records import isvc_of_record, read_record, record_annotations
from timonel.kube.requests import (
    create_object,
    get_object,
    list_objects,
    watch_objects,
)
from timonel.kube.resources import (
    CLUSTER_SERVING_RUNTIME,
    CONFIG_MAP,
    INFERENCE_SERVICE,
    POD,
    SERVING_RUNTIME,
    Kind,
)
from timonel.kube.status import is_stopped
from timonel.local import objects
from timonel.local.knative_objects import KnativeObjects
from timonel.local.pods import (
    ISVC_LABEL,
    REVISION_LABEL,
    pod_manifest,
    pod_replica,
    pod_status,
)
from timonel.local.reconcile import (
    DEFAULT_DOMAIN,
    Outcome,
    RevisionObservation,
    container_args,
    deployment_mode,
    reconcile,
    stopped_status,
    storage_uri,
)
from timonel.local.revisions import RevisionKey, RevisionStore
from timonel.local.runtimes import Chosen, NoRuntime, choose
from timonel.local.storage_initializer import initializer_command
from timonel.local.supervisor import (
    Backoff,
    Drain,
    Initializer,
    RevisionSpec,
    ServeArgs,
    Supervisor,
    serve_command,
)
from timonel.local.workloads import Workloads

log = logging.getLogger(__name__)

IsvcKey = tuple[str, str]  # (namespace, name)

#: Told each InferenceService as last reconciled (None once it is gone) with its revisions'
#: predictor templates by name and the annotations of its record (``timonel.kube.records``: the
#: mirror settings): the ingress builds its routing table from these.
RouteListener = Callable[
    [IsvcKey, dict[str, Any] | None, dict[str, dict[str, Any]], dict[str, str]], None
]


class Controller:
    """Reconciles every InferenceService the API holds; see the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        state_dir: Path,
        *,
        domain: str = DEFAULT_DOMAIN,
        initializer: Initializer = initializer_command,
        command: Callable[[ServeArgs], Sequence[str]] = serve_command,
        backoff: Backoff = Backoff(),
        progress_deadline: float = 600.0,
        watch_timeout: int = 300,
        replica_limit: int | None = None,
    ) -> None:
        self._cluster = cluster
        self._domain = domain
        self._watch_timeout = watch_timeout
        self._store = RevisionStore(Path(state_dir))
        self._knative = KnativeObjects(cluster)
        self._supervisor = Supervisor(
            self._store,
            initializer,
            self._on_revision_change,
            command=command,
            backoff=backoff,
            progress_deadline=progress_deadline,
            drain=self._drain,
        )
        self._workloads = Workloads(
            cluster, self._supervisor, domain=domain, replica_limit=replica_limit
        )
        self._queue = _WorkQueue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._interrupt_lock = threading.Lock()
        self._interrupts: dict[Kind, Callable[[], None]] = {}  # the open watches
        #: The Pod made for each running replica; another name gone means someone deleted it.
        self._pods_made: dict[tuple[RevisionKey, int], str] = {}
        self._listeners: list[RouteListener] = []
        self._drains: list[Drain] = []
        self._at_zero: set[RevisionKey] = set()
        self._replicas: dict[RevisionKey, int] = {}  # the autoscaler's counts above one
        self._at_zero_lock = threading.Lock()

    # --- lifecycle ---

    def start(self) -> None:
        """Start watching and reconciling on background threads."""
        if self._threads:
            return
        self._stopping.clear()
        loops: tuple[tuple[Callable[[], None], str], ...] = (
            (lambda: self._watch_loop(INFERENCE_SERVICE), "isvc watch"),
            (lambda: self._watch_loop(POD), "pod watch"),
            (lambda: self._watch_loop(CONFIG_MAP), "rollout record watch"),
            (self._work_loop, "isvc reconcile"),
        )
        for target, name in loops:
            thread = threading.Thread(target=target, name=f"timonel controller {name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads and terminate every revision process."""
        self._stopping.set()
        self._queue.close()
        with self._interrupt_lock:
            interrupts = list(self._interrupts.values())
        for interrupt in interrupts:
            interrupt()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self._supervisor.stop_all()

    def revision_pid(self, namespace: str, isvc: str, revision: str) -> int | None:
        """The process id of a revision's server, if one runs (for diagnostics and tests)."""
        return self._supervisor.pid(RevisionKey(namespace, isvc, revision))

    def running_revisions(self) -> set[RevisionKey]:
        return self._supervisor.running()

    # --- for the ingress: what it routes to, and scale to zero and back ---

    def listen(self, listener: RouteListener, *, drain: Drain | None = None) -> None:
        """Call ``listener`` after every reconcile; every InferenceService is reconciled again.

        ``drain``: the router's wait for the requests in flight to a process that is stopping."""
        self._listeners.append(listener)
        if drain is not None:
            self._drains.append(drain)
        for key in self._store.known():
            self._queue.add(key)

    def revision_state(self, key: RevisionKey) -> RevisionObservation | None:
        """What the revision's process is doing; None when it has none (stopped or at zero).

        A Standard-mode predictor's Deployment answers with its ready processes in turn."""
        if self._workloads.owns(key):
            return self._workloads.state(key)
        if key not in self._supervisor.running():
            return None
        return self._supervisor.observation(key, has_been_ready=False)

    def revision_replicas(self, key: RevisionKey) -> list[RevisionObservation]:
        """What each of the revision's processes is doing, in replica order."""
        if self._workloads.owns(key):
            return self._workloads.replicas(key)
        return list(self._supervisor.replicas(key).values())

    def scale(self, key: RevisionKey, replicas: int) -> None:
        """The activator's and autoscaler's decision: 0 stops a revision's processes, N runs N."""
        with self._at_zero_lock:
            if replicas == 0:
                self._at_zero.add(key)
            else:
                self._at_zero.discard(key)
            if replicas > 1:
                self._replicas[key] = replicas
            else:
                self._replicas.pop(key, None)
        self._queue.add((key.namespace, key.isvc))

    def _drain(self, key: RevisionKey, rest: str) -> None:
        for drain in list(self._drains):
            drain(key, rest)

    # --- watch: list, then follow changes from the list's resourceVersion ---

    def _watch_loop(self, kind: Kind) -> None:
        """Follow InferenceServices, the Pods of their revisions (a deleted Pod's process is
        restarted, as its ReplicaSet makes a new Pod), or their records (the ingress's mirror
        settings)."""
        failures = 0
        while not self._stopping.is_set():
            try:
                resource_version = self._relist(kind)
                failures = 0
                while not self._stopping.is_set():
                    resource_version = self._follow(kind, resource_version)
            except _Expired:
                continue
            except Exception as exc:  # the API is down or restarting: list again after a pause
                failures += 1
                if not self._stopping.is_set():
                    log.info("watching %s failed (%s); retrying", kind.plural, exc)
                self._stopping.wait(min(5.0, 0.2 * 2**failures))

    def _relist(self, kind: Kind) -> str:
        listing = self._cluster.send(list_objects(kind, None, all_namespaces=True))
        present = {_isvc_of(kind, item) for item in listing.get("items") or []} - {None}
        for key in present | set(self._store.known()):
            if key is not None:
                self._queue.add(key)
        return str(listing["metadata"].get("resourceVersion") or "")

    def _opened(self, kind: Kind, interrupt: Callable[[], None]) -> None:
        with self._interrupt_lock:
            self._interrupts[kind] = interrupt
        if self._stopping.is_set():
            interrupt()  # stop() ran before the watch had opened

    def _follow(self, kind: Kind, resource_version: str) -> str:
        """Read one watch request to its end; the resourceVersion to continue from."""
        request = watch_objects(
            kind,
            None,
            resource_version=resource_version,
            timeout_seconds=self._watch_timeout,
            all_namespaces=True,
        )
        try:
            for event in self._cluster.stream(
                request,
                timeout=self._watch_timeout + 30,
                on_open=functools.partial(self._opened, kind),
            ):
                change = event.get("type")
                body = event.get("object") or {}
                if change == "ERROR":
                    if body.get("code") == 410:
                        raise _Expired()
                    raise ApiError(
                        f"the {kind.kind} watch failed: {body.get('message')}",
                        status=Status.from_dict(body),
                    )
                metadata = body.get("metadata") or {}
                resource_version = str(metadata.get("resourceVersion") or resource_version)
                key = _isvc_of(kind, body)
                if change in ("ADDED", "MODIFIED", "DELETED") and key is not None:
                    self._queue.add(key)
        finally:
            with self._interrupt_lock:
                self._interrupts.pop(kind, None)
        return resource_version

    # --- reconcile ---

    def _on_revision_change(self, key: RevisionKey) -> None:
        self._queue.add((key.namespace, key.isvc))

    def _work_loop(self) -> None:
        retries: dict[IsvcKey, int] = {}
        while not self._stopping.is_set():
            key = self._queue.get()
            if key is None:
                continue
            try:
                again = self._reconcile(key)
            except Exception:
                log.exception("reconciling InferenceService %s/%s failed", *key)
                again = True
            if again and not self._stopping.is_set():
                retries[key] = retries.get(key, 0) + 1
                self._queue.add(key, delay=min(10.0, 0.05 * 2 ** retries[key]))
            else:
                retries.pop(key, None)

    def _reconcile(self, key: IsvcKey) -> bool:
        """Reconcile one InferenceService; True when it must be tried again (a conflict)."""
        namespace, name = key
        try:
            isvc = self._cluster.send(get_object(INFERENCE_SERVICE, namespace, name))
        except ApiError as exc:
            if exc.status.code == 404:
                self._forget(namespace, name)
                self._tell(key, None)
                return False
            raise
        metadata = isvc.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            self._forget(namespace, name)
            self._tell(key, None)
            return False
        if is_stopped(isvc):
            self._forget(namespace, name)  # KServe deletes the Knative Service or Deployments
            return self._write_status(isvc, stopped_status(isvc, now=_now()))
        if deployment_mode(isvc) == STANDARD:
            status, again = self._workloads.reconcile(isvc, self._runtime(isvc))
            self._tell(key, {**isvc, "status": status})
            return self._write_status(isvc, status) or again
        outcome = self._outcome(isvc)
        self._tell(key, {**isvc, "status": outcome.status}, outcome)  # routes move first
        self._apply(namespace, name, outcome)
        pods_moved = self._sync_pods(isvc, outcome) | self._write_knative(isvc, outcome)
        return self._write_status(isvc, outcome.status) or pods_moved

    def _tell(
        self, key: IsvcKey, isvc: dict[str, Any] | None, outcome: Outcome | None = None
    ) -> None:
        templates = {r.name: dict(r.template) for r in outcome.revisions} if outcome else {}
        record: dict[str, str] = {}
        if isvc is not None and self._listeners:
            record = record_annotations(read_record(self._cluster, *key))
        for listener in self._listeners:
            listener(key, isvc, templates, record)

    def _runtime(self, isvc: dict[str, Any]) -> Chosen | NoRuntime:
        """The serving runtime KServe's ``reconcileModel`` picks for the predictor."""
        namespace = isvc["metadata"].get("namespace", "default")
        return choose(
            isvc["spec"].get("predictor") or {},
            self._cluster.send(list_objects(SERVING_RUNTIME, namespace)).get("items") or [],
            self._cluster.send(list_objects(CLUSTER_SERVING_RUNTIME, None)).get("items") or [],
        )

    def _outcome(self, isvc: dict[str, Any]) -> Outcome:
        metadata = isvc["metadata"]
        namespace, name = metadata.get("namespace", "default"), metadata["name"]
        uid = str(metadata.get("uid") or "")
        if self._store.owner(namespace, name) not in (None, uid):
            # Deleted and created again under the same name: the old revisions go first.
            self._forget(namespace, name)
        stored = self._store.load(namespace, name, uid)
        observed = {
            item.revision.name: self._supervisor.observation(
                RevisionKey(namespace, name, item.revision.name), has_been_ready=item.has_been_ready
            )
            for item in stored
        }
        runtime = self._runtime(isvc)
        outcome = reconcile(
            isvc,
            [item.revision for item in stored],
            observed,
            now=_now(),
            domain=self._domain,
            runtime=runtime,
            service=self._knative.service(namespace, name),
        )
        was_ready = {item.revision.name: item.has_been_ready for item in stored}
        for revision in outcome.revisions:
            observation = observed.get(revision.name)
            ready = observation.has_been_ready if observation else False
            if revision.name not in was_ready or ready != was_ready[revision.name]:
                self._store.save(
                    RevisionKey(namespace, name, revision.name), revision, has_been_ready=ready
                )
        return outcome

    def _apply(self, namespace: str, name: str, outcome: Outcome) -> None:
        """Start the processes the outcome wants and stop the others of this InferenceService."""
        wanted = {RevisionKey(namespace, name, revision) for revision in outcome.running}
        with self._at_zero_lock:
            wanted -= self._at_zero  # scaled to zero by the ingress's activator
            replicas = dict(self._replicas)
        for revision in outcome.revisions:
            key = RevisionKey(namespace, name, revision.name)
            if key in wanted:
                spec = RevisionSpec(
                    model_name=name,
                    storage_uri=storage_uri(revision.template) or "",
                    args=container_args(revision.template),
                )
                self._supervisor.ensure(key, spec, replicas=replicas.get(key, 1))
        stopped = False
        for key in self._supervisor.running():
            if key.namespace == namespace and key.isvc == name and key not in wanted:
                self._supervisor.stop(key)
                stopped = True
        if stopped:  # the status was computed with the process still there: again, without it
            self._queue.add((namespace, name))

    def _sync_pods(self, isvc: dict[str, Any], outcome: Outcome) -> bool:
        """One Pod per running replica process, its status the kubelet's; the others deleted.

        A running replica whose Pod is gone (``kubectl delete pod``) has its process stopped,
        and started again with a new Pod on the next reconcile, as its ReplicaSet replaces the
        Pod. True when that happened or a pod changed meanwhile (a 409): reconcile again.
        """
        metadata = isvc["metadata"]
        namespace, name = metadata.get("namespace", "default"), metadata["name"]
        running = {
            (key.revision, replica): (key, seen)
            for key in self._supervisor.running()
            if key.namespace == namespace and key.isvc == name
            for replica, seen in self._supervisor.replicas(key).items()
        }
        for stale in [
            k for k in self._pods_made if (k[0].namespace, k[0].isvc) == (namespace, name)
        ]:
            if (stale[0].revision, stale[1]) not in running:
                del self._pods_made[stale]
        pods: dict[tuple[str, int], dict[str, Any]] = {}
        extra: list[dict[str, Any]] = []
        for pod in self._pods(namespace, name):
            place = (
                (pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""),
                pod_replica(pod),
            )
            if place in running and place not in pods:
                pods[place] = pod
            else:
                extra.append(pod)
        again = False
        for revision in outcome.revisions:
            for (revision_name, replica), (key, observation) in running.items():
                if revision_name != revision.name:
                    continue
                made = self._pods_made.get((key, replica))
                found = pods.get((revision_name, replica))
                if made is not None and (found is None or found["metadata"]["name"] != made):
                    # Its Pod was deleted: the ReplicaSet's new Pod runs a new process.
                    self._pods_made.pop((key, replica), None)
                    self._supervisor.stop(key, replica)
                    again = True
                    continue
                pod = found or self._cluster.send(
                    create_object(pod_manifest(isvc, revision, replica))
                )
                self._pods_made[(key, replica)] = pod["metadata"]["name"]
                status = pod_status(observation, pod.get("status"), now=_now())
                if status != pod.get("status"):
                    again = self._write_status(pod, status) or again
        for pod in extra:
            self._delete_pod(pod)
        return again

    def _pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The InferenceService's pods that are not being deleted."""
        listing = self._cluster.send(
            list_objects(POD, namespace, label_selector=f"{ISVC_LABEL}={name}")
        )
        return [
            pod
            for pod in listing.get("items") or []
            if not pod["metadata"].get("deletionTimestamp")
        ]

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        objects.delete(self._cluster, POD, pod)

    def _write_knative(self, isvc: dict[str, Any], outcome: Outcome) -> bool:
        """The Knative Service and Revisions of the outcome; True on a conflict (again)."""
        metadata = isvc["metadata"]
        namespace, name = metadata.get("namespace", "default"), metadata["name"]
        stored = self._store.load(namespace, name, str(metadata.get("uid") or ""))
        observed = {
            item.revision.name: self._supervisor.observation(
                RevisionKey(namespace, name, item.revision.name), has_been_ready=item.has_been_ready
            )
            for item in stored
        }
        replicas = {
            key.revision: list(self._supervisor.replicas(key).values())
            for key in self._supervisor.running()
            if (key.namespace, key.isvc) == (namespace, name)
        }
        return self._knative.write(isvc, outcome, observed, replicas=replicas, now=_now())

    def _write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> bool:
        return objects.write_status(self._cluster, obj, status)

    def _forget(self, namespace: str, name: str) -> None:
        """The InferenceService is gone: stop its processes and drop its revisions."""
        with self._at_zero_lock:
            self._at_zero = {k for k in self._at_zero if (k.namespace, k.isvc) != (namespace, name)}
            for key in [k for k in self._replicas if (k.namespace, k.isvc) == (namespace, name)]:
                del self._replicas[key]
        for key in self._supervisor.running():
            if key.namespace == namespace and key.isvc == name:
                self._supervisor.stop(key)
        self._store.delete(namespace, name)
        self._knative.delete(namespace, name)
        for pod in self._pods(namespace, name):
            self._delete_pod(pod)
        self._workloads.forget(namespace, name)


def _isvc_of(kind: Kind, obj: dict[str, Any]) -> IsvcKey | None:
    """The InferenceService an object is, whose revision's Pod it is, or whose record it is."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace", "default")
    if kind is CONFIG_MAP:
        return isvc_of_record(obj)
    if kind is POD:
        isvc = (metadata.get("labels") or {}).get(ISVC_LABEL)
        return (namespace, isvc) if isvc else None
    return (namespace, metadata["name"])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Expired(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class _WorkQueue:
    """Keys to reconcile, each at most once in the queue, some after a delay."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: list[IsvcKey] = []
        self._queued: set[IsvcKey] = set()
        self._delayed: list[tuple[float, IsvcKey]] = []
        self._closed = False

    def add(self, key: IsvcKey, *, delay: float = 0.0) -> None:
        with self._cond:
            if delay > 0:
                heapq.heappush(self._delayed, (time.monotonic() + delay, key))
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
            self._cond.notify()

    def get(self) -> IsvcKey | None:
        """The next key, waiting for one; None once the queue is closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, key = heapq.heappop(self._delayed)
                    if key not in self._queued:
                        self._queued.add(key)
                        self._ready.append(key)
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    return key
                timeout = self._delayed[0][0] - now if self._delayed else None
                self._cond.wait(timeout)
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
