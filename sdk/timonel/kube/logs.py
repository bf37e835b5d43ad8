"""A model's server log, read through the Kubernetes API as ``kubectl logs`` reads it.

``logs`` finds the InferenceService's pods by the label KServe puts on them
(``serving.kserve.io/inferenceservice``) and reads each one's ``pods/NAME/log`` for
``kserve-container`` (or the ``storage-initializer`` init container). Which pods: in Knative mode
those of one revision when it is named (``serving.knative.dev/revision``), else those of the
revisions that take traffic per the InferenceService's status, or, while none does (a first
revision whose model does not load), those of the latest created revision: the ones a user
debugging wants. Standard mode has no revisions: every predictor pod of the service is read.

With ``follow`` a log is read until the pod ends, not only its container: the kubelet ends a
followed log when the container ends, so when the stream ends and the pod is still there, the
container's next run is followed once it starts (what ``kubectl logs -f`` must be run again for).
A container still waiting to start (kube-apiserver answers 400 "is waiting to start") is
followed from its first run, so ``timonel logs -f`` right after a deploy shows the model loading.
Several pods are followed at once, each line as it comes, marked with its pod.

Choosing the pods (``pods_to_read``) is pure; the requests go through ``Cluster``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from timonel.errors import ApiError, SpecError, TimonelError
from timonel.kserve.vocabulary import (
    CONTAINER_NAME,
    INITIALIZER_CONTAINER,
    ISVC_LABEL,
    REVISION_LABEL,
    STANDARD,
)
from timonel.kube.client import Cluster, cluster_or_default
from timonel.kube.requests import get_object, list_objects, read_log
from timonel.kube.resources import INFERENCE_SERVICE, POD
from timonel.kube.status import deployment_mode, read_status

#: Seconds between looks at a pod whose followed container ended, until it runs again or the
#: pod ends.
RESTART_POLL = 1.0
#: Seconds a log read that is not followed may stay quiet.
READ_TIMEOUT = 30.0
#: kube-apiserver's 400 for the log of a container that has not started yet.
_NOT_STARTED = "is waiting to start"


@dataclass(frozen=True)
class LogLine:
    """One line of a container's log (without its newline), and where it was written."""

    pod: str
    revision: str | None
    container: str
    text: str


def _revision_of(pod: dict[str, Any]) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL)


def serving_revisions(isvc: dict[str, Any]) -> tuple[str, ...]:
    """The revisions that take traffic, else the latest created one (which may not load)."""
    status = read_status(isvc)
    taking = tuple(dict.fromkeys(t.revision for t in status.traffic if t.percent > 0))
    if taking:
        return taking
    return (status.latest_created_revision,) if status.latest_created_revision else ()


def pods_to_read(
    isvc: dict[str, Any], pods: list[dict[str, Any]], revision: str | None = None
) -> list[dict[str, Any]]:
    """The pods whose logs ``logs`` reads, by revision (in traffic order) then name."""
    if deployment_mode(isvc) == STANDARD:
        if revision is not None:
            raise SpecError(
                f"inferenceservice {isvc['metadata']['name']} runs in Standard mode, which has "
                f"no revisions, so --revision {revision} names none; leave it out to read every "
                "predictor pod",
                field="revision",
            )
        return sorted(pods, key=lambda pod: str(pod["metadata"]["name"]))
    wanted = (revision,) if revision is not None else serving_revisions(isvc)
    order = {name: index for index, name in enumerate(wanted)}
    chosen = [pod for pod in pods if _revision_of(pod) in order]
    return sorted(chosen, key=lambda pod: (order[str(_revision_of(pod))], pod["metadata"]["name"]))


def _container_status(pod: dict[str, Any], container: str) -> dict[str, Any]:
    status = pod.get("status") or {}
    for entry in (*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])):
        if entry.get("name") == container:
            return dict(entry)
    return {}


def _restarts(pod: dict[str, Any], container: str) -> int:
    return int(_container_status(pod, container).get("restartCount") or 0)


def next_run(pod: dict[str, Any] | None, uid: str | None, container: str, runs: int | None) -> str:
    """After a followed log ended: ``ended`` (the pod is gone, replaced, finishing or finished,
    or the init container completed), ``restarted`` (the container runs again), else ``wait``.

    ``runs`` is the restart count of the run already read, None when none was (the container
    was still waiting to start).
    """
    if pod is None or pod["metadata"].get("uid") != uid or pod["metadata"].get("deletionTimestamp"):
        return "ended"
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return "ended"
    status = _container_status(pod, container)
    state = status.get("state") or {}
    if container == INITIALIZER_CONTAINER and (state.get("terminated") or {}).get("exitCode") == 0:
        return "ended"
    if "running" in state and (runs is None or int(status.get("restartCount") or 0) > runs):
        return "restarted"
    return "wait"


class LogStream:
    """The lines of the pods' logs, read as they are iterated; ``pods`` names the pods read.

    Iterate it once. Reaching the end, ``close()`` or leaving a ``with`` block ends the reads
    (a follow included) and closes a connection ``logs`` opened.
    """

    def __init__(self, pods: tuple[str, ...], lines: Generator[LogLine], stack: ExitStack) -> None:
        self.pods = pods
        self._lines = lines
        self._stack = stack

    def __iter__(self) -> Iterator[LogLine]:
        try:
            yield from self._lines
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._lines.close()
        finally:
            self._stack.close()

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def logs(
    name: str,
    *,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    revision: str | None = None,
    container: str = CONTAINER_NAME,
    tail_lines: int | None = None,
    previous: bool = False,
    follow: bool = False,
) -> LogStream:
    """A model server's log, pod by pod (followed: each line as it comes, until the pods end).

    ``revision`` reads that revision's pods instead of those serving; ``container`` is
    ``kserve-container`` or ``storage-initializer``; ``tail_lines`` keeps the last lines of each
    log; ``previous`` reads the run before the container's last restart. The pods are found
    before this returns, so a missing InferenceService (ApiError) or one with no pods yet
    (TimonelError) is raised here; the logs are read as the stream is iterated.
    """
    stack = ExitStack()
    try:
        connected = stack.enter_context(cluster_or_default(cluster))
        namespace = namespace or connected.namespace
        isvc = connected.send(get_object(INFERENCE_SERVICE, namespace, name))
        selector = f"{ISVC_LABEL}={name}"
        found = connected.send(list_objects(POD, namespace, label_selector=selector))
        pods = pods_to_read(isvc, list(found.get("items") or []), revision)
        if not pods:
            raise TimonelError(_no_pods(namespace, name, revision or serving_revisions(isvc)))
    except BaseException:
        stack.close()
        raise
    names = tuple(str(pod["metadata"]["name"]) for pod in pods)
    if follow:
        lines = _follow_all(connected, pods, container=container, tail_lines=tail_lines)
    else:
        lines = _read_all(
            connected, pods, container=container, tail_lines=tail_lines, previous=previous
        )
    return LogStream(names, lines, stack)


def _read_all(
    cluster: Cluster,
    pods: list[dict[str, Any]],
    *,
    container: str,
    tail_lines: int | None,
    previous: bool,
) -> Generator[LogLine]:
    """Each pod's log in turn, as it is now."""
    for pod in pods:
        name = pod["metadata"]["name"]
        namespace = pod["metadata"].get("namespace", cluster.namespace)
        request = read_log(
            namespace, name, container=container, tail_lines=tail_lines, previous=previous
        )
        for text in cluster.lines(request, timeout=READ_TIMEOUT):
            yield LogLine(name, _revision_of(pod), container, text)


def _no_pods(namespace: str, name: str, revisions: str | tuple[str, ...]) -> str:
    named = (revisions,) if isinstance(revisions, str) else revisions
    which = f" of revision {', '.join(named)}" if named else ""
    return (
        f"inferenceservice {namespace}/{name} has no pods{which} yet: a revision gets its pods "
        "once its controller starts it, and has none while scaled to zero; run `timonel status "
        f"{name}` to see how it is doing, and read the logs again once it has pods"
    )


def _follow_all(
    cluster: Cluster, pods: list[dict[str, Any]], *, container: str, tail_lines: int | None
) -> Generator[LogLine]:
    """Follow every pod's log at once, one reading thread each; lines are yielded as they come.

    Leaving the loop (the consumer stops, Ctrl-C) ends every read: the open streams are cut and
    the threads see the stop before their next request.
    """
    lines: queue.Queue[LogLine | BaseException | None] = queue.Queue()
    stop = threading.Event()
    interrupts: list[Callable[[], None]] = []

    def opened(interrupt: Callable[[], None]) -> None:
        """A stream opened: cut it at the stop, even one that opened as the stop came."""
        interrupts.append(interrupt)
        if stop.is_set():
            interrupt()

    def read(pod: dict[str, Any]) -> None:
        try:
            for line in _follow(cluster, pod, container, tail_lines, stop, opened):
                lines.put(line)
        except BaseException as exc:  # handed to the consumer, which raises it
            if not stop.is_set():
                lines.put(exc)
        finally:
            lines.put(None)

    threads = [threading.Thread(target=read, args=(pod,), daemon=True) for pod in pods]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = lines.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for interrupt in list(interrupts):
            interrupt()
        for thread in threads:
            thread.join(timeout=RESTART_POLL + 1.0)


def _follow(
    cluster: Cluster,
    pod: dict[str, Any],
    container: str,
    tail_lines: int | None,
    stop: threading.Event,
    on_open: Callable[[Callable[[], None]], None],
) -> Iterator[LogLine]:
    """One pod's container log, each run of the container in turn, until the pod ends."""
    metadata = pod["metadata"]
    namespace, name, uid = (
        metadata.get("namespace", cluster.namespace),
        metadata["name"],
        metadata.get("uid"),
    )
    runs: int | None = _restarts(pod, container)
    while not stop.is_set():
        request = read_log(namespace, name, container=container, follow=True, tail_lines=tail_lines)
        try:
            for text in cluster.lines(request, timeout=None, on_open=on_open):
                yield LogLine(name, _revision_of(pod), container, text)
        except ApiError as exc:
            if exc.status.code != 400 or _NOT_STARTED not in exc.status.message:
                raise
            runs = None  # no run of it to read yet: wait for its first
        tail_lines = None  # a new run is read whole
        while not stop.is_set():
            try:
                current: dict[str, Any] | None = cluster.send(get_object(POD, namespace, name))
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
                current = None
            state = next_run(current, uid, container, runs)
            if state == "ended":
                return
            if state == "restarted" and current is not None:
                runs = _restarts(current, container)
                break
            stop.wait(RESTART_POLL)
