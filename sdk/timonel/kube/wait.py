"""Waiting for an InferenceService by watching it, never by sleeping between polls.

What "done" means is decided by pure functions of the object (``goal_for``, ``assess``); how the
object's changes arrive is ``watch_until``, the only part that does I/O:

* It lists the object once (to get it and a resourceVersion), then watches from that version,
  so no change between the two is missed and each change is judged the moment it arrives.
* A watch the server ends (its timeout) or the network cuts (an API server restart:
  ``ClusterUnreachable``, or a 503/504 from a proxy in front of it) is resumed from the last
  resourceVersion seen; if that version has been compacted away (410 Gone), the
  object is listed afresh and the watch starts again from there.
* The deadline ends the wait with ``WaitTimeout`` carrying the last conditions and their
  messages, so the error says why it is not ready, not only that it is not.
* A state no wait can change ends it at once: a model that will not load (``ModelError``), an
  InferenceService stopped with ``serving.kserve.io/stop: "true"`` (``SpecError``, saying how to
  start it again).

A stale Ready never counts, judged as KServe's status allows. KServe copies
``status.observedGeneration`` from the Knative Service (or, in Standard mode, the Deployment), not
from the InferenceService (``PropagateStatus`` and ``PropagateRawStatus`` in
``pkg/apis/serving/v1beta1/inference_service_status.go``), so comparing it with the
InferenceService's generation both hangs (a change KServe does not pass on, such as an annotation
on its ``serviceAnnotationDisallowedList`` or a canary percentage before the first rollout, never
moves it) and passes early (a Deployment's generation also moves when it is scaled). What the
change produces is judged instead, from the object before and after the write:

* Knative mode: a change to what KServe puts in the revision template (the predictor, labels, the
  annotations it passes on) must bring a new latest created revision, which must become the
  latest ready one; the latest created revision's share of the traffic must be the one asked
  for; Ready must be True. The share is counted by revision, not by the ``latestRevision``
  target: before a first rollout KServe ignores the percent and then, once the revision is
  rolled out, splits the traffic over that one revision (latest P%, ``prev`` the rest), and a
  ``latestRevision`` target follows the latest *ready* revision, not the one being waited for.
* Standard mode: a change to the Deployment's template must move ``observedGeneration`` past the
  value the status showed when the change was written, and the rolling update must be over:
  ``PredictorReady`` carries the reason of the Deployment's ``Progressing`` condition once that is
  ``NewReplicaSetAvailable`` (``PropagateRawStatus``), while during the update it keeps
  ``Available``'s (the old pods keep the Deployment available). Canaries must be ready with their
  shares. A promotion (``spec.predictor.name`` taking the canary's) makes the canary's Deployment
  the stable one, as it is, so its generation is not compared with the old Deployment's.
* A change that reaches neither waits only for Ready (and the traffic split).

The annotations KServe does not pass on are its default list; a cluster that adds keys to
``serviceAnnotationDisallowedList`` makes a change of only those keys wait until the timeout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from timonel.errors import (
    ApiError,
    ClusterUnreachable,
    ModelError,
    SpecError,
    Status,
    WaitTimeout,
)
from timonel.kserve.vocabulary import STOP
from timonel.kube.client import Cluster
from timonel.kube.requests import list_objects, watch_objects
from timonel.kube.resources import INFERENCE_SERVICE, Kind
from timonel.kube.status import (
    deployment_mode,
    is_stopped,
    is_true,
    read_status,
    revision_metadata,
)

#: Predictor fields that go to the HorizontalPodAutoscaler in Standard mode, not to the
#: Deployment's template, so they do not move its generation.
_AUTOSCALING_FIELDS = ("minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "autoScaling")

#: The reason of a Deployment's Progressing condition once its newest ReplicaSet is available,
#: which KServe copies to PredictorReady in Standard mode.
ROLLED_OUT = "NewReplicaSetAvailable"

#: Model states KServe reports when the new model will not load however long one waits.
_TERMINAL_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}

#: Longest single watch request; the server ends it and we resume, so a dead peer is noticed.
_MAX_WATCH_SECONDS = 300

#: Reconnection back-off after a dropped connection (first, cap), in seconds.
_RECONNECT = (0.05, 1.0)


@dataclass(frozen=True)
class Goal:
    """What the status must show after a change, decided from the object the change returned.

    ``latest_percent``: in Knative mode, the share the latest revision must receive.
    ``canaries``: in Standard mode, each canary's name and the share it must receive.
    ``ready``: whether the new model must be serving (not after a rollback to 0%, where the
    canary may be the broken thing being rolled away from).
    ``replaces_revision``: in Knative mode, when the change makes a new revision, the latest
    created revision the status showed when it was written ("" when there was none), which a
    new one must replace; None when no new revision is expected.
    ``observed_before``: in Standard mode, when the change rolls the Deployment, the status's
    ``observedGeneration`` when it was written, which the Deployment's must pass.
    ``generation`` is the InferenceService generation written, for messages.
    """

    generation: int
    ready: bool = True
    latest_percent: int | None = None
    canaries: tuple[tuple[str, int], ...] = ()
    replaces_revision: str | None = None
    observed_before: int | None = None


@dataclass(frozen=True)
class Verdict:
    """How far the object is from the goal: done, failed (with why), stopped (nothing serves
    until the stop annotation goes), or what it waits for."""

    done: bool
    waiting_for: str = ""
    failure: str | None = None
    stopped: bool = False


def _workload(isvc: dict[str, Any]) -> dict[str, Any]:
    """What KServe puts in the Knative revision template or the Deployment's pod template."""
    predictor = dict(isvc.get("spec", {}).get("predictor", {}))
    predictor.pop("canaryTrafficPercent", None)  # goes to the Knative Service's traffic
    if deployment_mode(isvc) == "Standard":
        for name in _AUTOSCALING_FIELDS:
            predictor.pop(name, None)
    return {"predictor": predictor, **revision_metadata(isvc)}


def goal_for(isvc: dict[str, Any], before: dict[str, Any] | None = None) -> Goal:
    """The goal for an InferenceService as the API returned it from a write.

    ``before``: the object as read before the write (None: the write created it), to tell
    whether the change reaches the Knative Service's template or the Deployment's.
    """
    generation = int(isvc["metadata"].get("generation") or 1)
    spec = isvc.get("spec", {})
    status = isvc.get("status") or {}
    rolls = before is None or _workload(before) != _workload(isvc)
    if deployment_mode(isvc) == "Standard":
        canaries = tuple(
            (c["predictor"]["name"], int(c.get("trafficPercent") or 0))
            for c in spec.get("canary") or []
        )
        # A promotion renames the stable predictor: its Deployment is the canary's, whose
        # generation has nothing to do with the one KServe copied before (it need not move).
        stable = spec.get("predictor", {}).get("name")
        same = (
            before is not None and before.get("spec", {}).get("predictor", {}).get("name") == stable
        )
        watched = rolls and (before is None or same)
        observed = int(status.get("observedGeneration") or 0) if watched else None
        return Goal(generation=generation, canaries=canaries, observed_before=observed)
    component = status.get("components", {}).get("predictor", {})
    replaces = str(component.get("latestCreatedRevision") or "") if rolls else None
    percent = spec.get("predictor", {}).get("canaryTrafficPercent")
    if percent is None or int(percent) >= 100 or not component.get("latestRolledoutRevision"):
        # KServe ignores the percentage until a first revision has been rolled out.
        return Goal(generation=generation, latest_percent=100, replaces_revision=replaces)
    return Goal(
        generation=generation,
        ready=int(percent) > 0,
        latest_percent=int(percent),
        replaces_revision=replaces,
    )


def _latest_share(component: dict[str, Any]) -> int:
    """The share of the traffic the latest created revision receives, over every target."""
    latest = component.get("latestCreatedRevision")
    return sum(
        int(t.get("percent") or 0)
        for t in component.get("traffic") or []
        if latest and t.get("revisionName") == latest
    )


def assess(isvc: dict[str, Any], goal: Goal) -> Verdict:
    """Judge one observed state of the object against the goal; pure."""
    if is_stopped(isvc):
        return Verdict(False, stopped=True)
    status = isvc.get("status", {})
    observed = int(status.get("observedGeneration") or 0)
    if goal.observed_before is not None and observed <= goal.observed_before:
        return Verdict(
            False,
            f"the Deployment to roll out generation {goal.generation}'s change (its "
            f"observedGeneration is {observed}, as when the change was written)",
        )
    component = status.get("components", {}).get("predictor", {})
    created = component.get("latestCreatedRevision") or ""
    if goal.replaces_revision is not None and created in ("", goal.replaces_revision):
        return Verdict(
            False,
            f"a new revision to replace {goal.replaces_revision}"
            if goal.replaces_revision
            else "a first revision",
        )
    model_status = status.get("modelStatus", {})
    if goal.ready and model_status.get("transitionStatus") in _TERMINAL_TRANSITIONS:
        info = model_status.get("lastFailureInfo") or {}
        why = info.get("message") or info.get("reason") or model_status["transitionStatus"]
        return Verdict(False, failure=str(why))
    if goal.ready and not is_true(isvc, "Ready"):
        return Verdict(False, "the Ready condition")
    if deployment_mode(isvc) == "Standard":
        if goal.observed_before is not None and goal.ready:
            predictor: dict[str, Any] = next(
                (c for c in status.get("conditions") or [] if c.get("type") == "PredictorReady"),
                {},
            )
            if predictor.get("reason") != ROLLED_OUT:
                return Verdict(
                    False,
                    "the Deployment's rolling update to finish (PredictorReady's reason is "
                    f"{predictor.get('reason') or 'empty'}, not {ROLLED_OUT})",
                )
        seen = {c.get("name"): c for c in status.get("canaryStatuses") or []}
        for name, percent in goal.canaries:
            entry = seen.get(name, {})
            if not entry.get("ready") or int(entry.get("trafficPercent") or 0) != percent:
                return Verdict(False, f"canary {name} to be ready with {percent}% of traffic")
        if not goal.canaries and seen:
            return Verdict(False, "the canaries to be removed")
        return Verdict(True)
    if goal.ready and component.get("latestReadyRevision") != component.get(
        "latestCreatedRevision"
    ):
        return Verdict(
            False,
            f"revision {component.get('latestCreatedRevision')} to become ready",
        )
    if goal.latest_percent is not None and _latest_share(component) != goal.latest_percent:
        return Verdict(
            False,
            f"the latest revision to receive {goal.latest_percent}% of traffic "
            f"(it has {_latest_share(component)}%)",
        )
    return Verdict(True)


Judge = Callable[[dict[str, Any] | None], Verdict]


def watch_until(
    cluster: Cluster,
    name: str,
    judge: Judge,
    *,
    namespace: str | None = None,
    kind: Kind = INFERENCE_SERVICE,
    timeout: float,
    on_change: Callable[[dict[str, Any] | None, Verdict], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Watch one object until ``judge`` says done; return the object (None once deleted).

    ``judge`` sees the object, or None when it does not exist. A verdict with a ``failure`` ends
    the wait with ``ModelError``, a ``stopped`` one with ``SpecError``; the deadline with
    ``WaitTimeout``. ``timeout`` must be a number of seconds above 0 (SpecError otherwise).
    """
    check_timeout(timeout)
    namespace = namespace or cluster.namespace
    deadline = clock() + timeout
    obj: dict[str, Any] | None = None
    verdict = Verdict(False, "the first read")
    version: str | None = None
    backoff = _RECONNECT[0]

    def observe(new: dict[str, Any] | None) -> Verdict:
        nonlocal obj
        obj = new
        result = judge(new)
        if on_change is not None:
            on_change(new, result)
        if result.stopped:
            raise SpecError(
                f"{kind.kind.lower()} {namespace}/{name} is stopped (annotation "
                f'{STOP}: "true"), so it will not become ready; start it by removing '
                f"the annotation: kubectl annotate {kind.kind.lower()} {name} -n {namespace} "
                f"{STOP}-",
                field=f"metadata.annotations[{STOP}]",
            )
        if result.failure:
            raise ModelError(
                f"{kind.kind.lower()} {namespace}/{name} will not become ready: "
                f"{result.failure}; fix the model or its storage URI and deploy again, or "
                f"roll back with `timonel rollback {name}`"
            )
        return result

    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            raise _timeout(kind, namespace, name, timeout, obj, verdict)
        try:
            if version is None:
                listed = cluster.send(list_objects(kind, namespace, name=name), timeout=remaining)
                items = listed.get("items") or []
                verdict = observe(items[0] if items else None)
                version = listed.get("metadata", {}).get("resourceVersion") or None
                if verdict.done:
                    return obj
            request = watch_objects(
                kind,
                namespace,
                name=name,
                resource_version=version,
                timeout_seconds=min(_MAX_WATCH_SECONDS, math.ceil(remaining)),
            )
            for event in cluster.stream(request, timeout=remaining + 1):
                backoff = _RECONNECT[0]
                kind_of_event, body = event.get("type"), event.get("object") or {}
                if kind_of_event == "ERROR":
                    if int(body.get("code") or 0) == 410:
                        version = None  # compacted: list afresh
                        break
                    raise ApiError(
                        f"the watch on {kind.kind.lower()} {namespace}/{name} failed: "
                        f"{body.get('message')}; try again",
                        status=Status.from_dict(body),
                    )
                version = body.get("metadata", {}).get("resourceVersion") or version
                if kind_of_event == "BOOKMARK":
                    continue
                verdict = observe(None if kind_of_event == "DELETED" else body)
                if verdict.done:
                    return obj
                if clock() >= deadline:
                    break
        except (ApiError, ClusterUnreachable) as exc:
            if isinstance(exc, ApiError) and exc.status.code == 410:
                version = None
                continue
            passing = isinstance(exc, ClusterUnreachable) or exc.status.code in (503, 504)
            if not passing:
                raise
            if clock() + backoff >= deadline:
                raise _timeout(kind, namespace, name, timeout, obj, verdict) from exc
            time.sleep(backoff)  # reconnecting to a restarting server, not polling the object
            backoff = min(backoff * 2, _RECONNECT[1])


def check_timeout(timeout: float) -> None:
    """Refuse a wait that could not end well: zero, negative, infinite or NaN seconds."""
    if not (math.isfinite(timeout) and timeout > 0):
        raise SpecError(
            f"--timeout {timeout:g}: expected the number of seconds to wait, above 0; give "
            "one such as --timeout 600 (timeout=600 in Python), or leave it out for the default",
            field="timeout",
        )


def _timeout(
    kind: Kind,
    namespace: str,
    name: str,
    timeout: float,
    obj: dict[str, Any] | None,
    verdict: Verdict,
) -> WaitTimeout:
    conditions = list((obj or {}).get("status", {}).get("conditions") or [])
    why = read_status(obj).why_not_ready if obj else "it does not exist"
    return WaitTimeout(
        f"{kind.kind.lower()} {namespace}/{name} was not ready after {timeout:g}s: still "
        f"waiting for {verdict.waiting_for or 'it to exist'}; last conditions: {why}. "
        f"Check `timonel status {name}`, or wait longer with --timeout",
        conditions=conditions,
    )


def wait_ready(
    cluster: Cluster,
    isvc: dict[str, Any],
    *,
    before: dict[str, Any] | None = None,
    timeout: float,
    on_change: Callable[[dict[str, Any] | None, Verdict], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the change that returned ``isvc`` is served as it asked (``clock`` measures
    the timeout). ``before``: the object as read before the change (None: it created it)."""
    goal = goal_for(isvc, before)

    def judge(obj: dict[str, Any] | None) -> Verdict:
        if obj is None:
            return Verdict(False, "it to exist (it was deleted)")
        return assess(obj, goal)

    meta = isvc["metadata"]
    result = watch_until(
        cluster,
        meta["name"],
        judge,
        namespace=meta.get("namespace"),
        timeout=timeout,
        on_change=on_change,
        clock=clock,
    )
    assert result is not None  # judge is only done on an existing object
    return result


def wait_deleted(
    cluster: Cluster, name: str, *, namespace: str | None = None, timeout: float
) -> None:
    """Wait until the object is gone (its finalizers have run)."""
    watch_until(
        cluster,
        name,
        lambda obj: Verdict(obj is None, "it to be deleted"),
        namespace=namespace,
        timeout=timeout,
    )
