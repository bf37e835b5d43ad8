"""Readiness is judged on the generation just written, and arrives by watch, resumed when cut."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from timonel.errors import ModelError, SpecError, WaitTimeout
from timonel.kube.wait import Goal, Verdict, assess, goal_for, wait_deleted, wait_ready

from .fakeapi import Recorded, Reply, status_body
from .isvcs import V2, canary_70_30, isvc, with_knative_status


def knative(
    obj: dict[str, Any], latest: int, *, created: str = "r2", ready: str = "r2"
) -> dict[str, Any]:
    traffic = [{"latestRevision": True, "percent": latest, "revisionName": created}]
    if latest < 100:
        traffic.append(
            {"latestRevision": False, "percent": 100 - latest, "revisionName": "r1", "tag": "prev"}
        )
    return with_knative_status(
        obj, created=created, ready_revision=ready, rolled_out="r1", traffic=traffic
    )


# --- goals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "goal"),
    [
        (knative(isvc(generation=3), 100), Goal(3, latest_percent=100)),
        (knative(isvc(percent=30, generation=2), 70), Goal(2, latest_percent=30)),
        (knative(isvc(percent=0, generation=4), 0), Goal(4, ready=False, latest_percent=0)),
        (isvc(percent=30), Goal(1, latest_percent=100)),  # nothing rolled out yet: 100% to latest
        (
            isvc(
                mode="Standard",
                generation=5,
                canary=[{"predictor": {"name": "canary-1"}, "trafficPercent": 20}],
            ),
            Goal(5, canaries=(("canary-1", 20),)),
        ),
    ],
)
def test_goal_for_a_change_that_leaves_the_template_as_it_was(obj, goal) -> None:
    before = copy.deepcopy(obj)
    before["spec"]["predictor"].pop("canaryTrafficPercent", None)
    assert goal_for(obj, before) == goal


def test_a_created_service_waits_for_its_first_revision() -> None:
    created = isvc()
    del created["status"]
    assert goal_for(created) == Goal(1, latest_percent=100, replaces_revision="")
    assert assess(created, goal_for(created)) == Verdict(False, "a first revision")


# --- KServe-shaped sequences: what the status shows after each write -------------------------


def test_knative_a_new_model_waits_past_the_stale_ready_of_the_old_revision() -> None:
    before = knative(isvc(generation=1), 100, created="r1", ready="r1")
    written = knative(isvc(uri=V2, generation=2), 100, created="r1", ready="r1")
    goal = goal_for(written, before)
    assert goal == Goal(2, latest_percent=100, replaces_revision="r1")
    # KServe has not reconciled yet: the old revision is Ready, and the Knative Service's
    # observedGeneration could be anything (it is not the InferenceService's generation).
    assert assess(written, goal) == Verdict(False, "a new revision to replace r1")
    creating = knative(isvc(uri=V2, generation=2, ready=False), 100, created="r2", ready="r1")
    assert assess(creating, goal) == Verdict(False, "the Ready condition")
    served = knative(isvc(uri=V2, generation=2), 100, created="r2", ready="r2")
    assert assess(served, goal) == Verdict(True)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            id="an annotation KServe does not pass on",
        ),
        pytest.param({"percent": 30}, id="a canary percent before the first rollout"),
    ],
)
def test_knative_a_change_that_does_not_reach_the_knative_service_ends_on_ready(change) -> None:
    # The InferenceService's generation moves to 5; the Knative Service's stays at 1, and so
    # does the observedGeneration KServe copies from it: waiting for 5 would never end.
    before = isvc(generation=4, observed=1)
    before["status"]["components"] = {
        "predictor": {"latestCreatedRevision": "r1", "latestReadyRevision": "r1"}
    }
    before["status"]["components"]["predictor"]["traffic"] = [
        {"latestRevision": True, "percent": 100, "revisionName": "r1"}
    ]
    written = copy.deepcopy(before)
    written["metadata"]["generation"] = 5
    if "percent" in change:
        written["spec"]["predictor"]["canaryTrafficPercent"] = change["percent"]
    else:
        written["metadata"]["annotations"].update(change["annotations"])
    goal = goal_for(written, before)
    assert goal.replaces_revision is None
    assert assess(written, goal) == Verdict(True)


def kserve_status(
    obj: dict[str, Any],
    *,
    service_generation: int,
    created: str,
    ready: str,
    traffic: list[tuple[str, int, bool]],
    rolled_out: str | None = None,
) -> dict[str, Any]:
    """The InferenceService with the status KServe's PropagateStatus writes from a Knative
    Service at ``service_generation``: its observedGeneration, revisions and traffic
    (revision, percent, latestRevision), and Ready when the latest created revision is ready."""
    out = with_knative_status(
        obj,
        created=created,
        ready_revision=ready,
        rolled_out=rolled_out,
        traffic=[
            {"revisionName": name, "percent": percent, "latestRevision": latest}
            for name, percent, latest in traffic
        ],
    )
    out["status"]["observedGeneration"] = service_generation
    for condition in out["status"]["conditions"]:
        condition["status"] = "True" if created == ready else "Unknown"
    return out


def r1_served(obj: dict[str, Any]) -> dict[str, Any]:
    """KServe's status once r1 is rolled out with all the traffic (Knative Service generation 1)."""
    return kserve_status(
        obj,
        service_generation=1,
        created="r1",
        ready="r1",
        traffic=[("r1", 100, True)],
        rolled_out="r1",
    )


def test_knative_first_deploy_with_a_percent_ends_when_the_split_covers_one_revision() -> None:
    # KServe ignores the percent until r1 is rolled out, then writes latest 10% and prev 90%,
    # both on r1: the latest revision's share is still all of the traffic.
    written = isvc(percent=10)
    del written["status"]
    goal = goal_for(written)
    assert assess(written, goal) == Verdict(False, "a first revision")
    sequence = [
        kserve_status(isvc(percent=10), service_generation=1, created="r1", ready="", traffic=[]),
        kserve_status(
            isvc(percent=10),
            service_generation=1,
            created="r1",
            ready="r1",
            traffic=[("r1", 100, True)],
            rolled_out="r1",
        ),
        kserve_status(
            isvc(percent=10),
            service_generation=2,
            created="r1",
            ready="r1",
            traffic=[("r1", 10, True), ("r1", 90, False)],
            rolled_out="r1",
        ),
    ]
    assert [assess(state, goal).done for state in sequence] == [False, True, True]


def test_knative_a_stale_ready_of_the_previous_generation_never_counts() -> None:
    # The write returns the old status: Ready, r1, the Knative Service's generation 1. KServe
    # then updates the Knative Service (generation 2) before Knative has reconciled it, so
    # the status KServe copies is still r1's, Ready; only then does r2 appear and get ready.
    before = r1_served(isvc(generation=1))
    changed = copy.deepcopy(before)
    changed["metadata"]["generation"] = 2
    changed["spec"]["predictor"]["model"]["storageUri"] = V2
    goal = goal_for(changed, before)
    sequence = [
        changed,
        r1_served(changed),
        kserve_status(
            changed,
            service_generation=2,
            created="r2",
            ready="r1",
            traffic=[("r1", 100, True)],
            rolled_out="r1",
        ),
        kserve_status(
            changed,
            service_generation=2,
            created="r2",
            ready="r2",
            traffic=[("r2", 100, True)],
            rolled_out="r2",
        ),
    ]
    assert [assess(state, goal).waiting_for for state in sequence] == [
        "a new revision to replace r1",
        "a new revision to replace r1",
        "the Ready condition",
        "",
    ]
    assert assess(sequence[-1], goal).done


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("annotations", "serving.knative.dev/rollout-duration"),
        ("labels", "networking.knative.dev/visibility"),
    ],
    ids=["an annotation KServe moves onto the Knative Service", "a label kept off the template"],
)
def test_knative_metadata_kserve_keeps_off_the_template_makes_no_revision(where, key) -> None:
    before = r1_served(isvc(generation=4))
    written = copy.deepcopy(before)
    written["metadata"]["generation"] = 5
    written["metadata"].setdefault(where, {})[key] = "60s" if where == "annotations" else "x"
    goal = goal_for(written, before)
    assert goal.replaces_revision is None
    assert assess(written, goal) == Verdict(True)


def test_knative_a_rollback_counts_the_new_revision_share_not_the_latest_target() -> None:
    # r2 never got ready, so the latestRevision target resolves to r1 (the latest ready one):
    # what matters is that r2 receives nothing.
    canary = kserve_status(
        isvc(uri=V2, percent=20, generation=2),
        service_generation=2,
        created="r2",
        ready="r1",
        traffic=[("r1", 20, True), ("r1", 80, False)],
        rolled_out="r1",
    )
    written = copy.deepcopy(canary)
    written["metadata"]["generation"] = 3
    written["spec"]["predictor"]["canaryTrafficPercent"] = 0
    goal = goal_for(written, canary)
    rolled_back = kserve_status(
        written,
        service_generation=3,
        created="r2",
        ready="r1",
        traffic=[("r1", 0, True), ("r1", 100, False)],
        rolled_out="r1",
    )
    assert assess(rolled_back, goal) == Verdict(True)


def test_knative_a_traffic_step_waits_for_the_split_not_for_a_revision() -> None:
    before = canary_70_30()
    written = copy.deepcopy(before)
    written["spec"]["predictor"]["canaryTrafficPercent"] = 50
    goal = goal_for(written, before)
    assert goal.replaces_revision is None and goal.latest_percent == 50
    assert assess(written, goal) == Verdict(
        False, "the latest revision to receive 50% of traffic (it has 30%)"
    )


def test_standard_a_new_model_waits_for_the_deployment_to_observe_it() -> None:
    # The Deployment was scaled twice before: its observedGeneration (7) is past the
    # InferenceService's generation (2), so comparing the two would accept the stale Ready.
    before = isvc(mode="Standard", generation=1, observed=7)
    written = isvc(mode="Standard", uri=V2, generation=2, observed=7)
    goal = goal_for(written, before)
    assert goal == Goal(2, observed_before=7)
    assert assess(written, goal) == Verdict(
        False,
        "the Deployment to roll out generation 2's change (its observedGeneration is 7, as "
        "when the change was written)",
    )
    assert assess(isvc(mode="Standard", uri=V2, generation=2, observed=8), goal) == Verdict(True)


def test_standard_a_new_model_waits_for_the_rolling_update_to_finish() -> None:
    before = isvc(mode="Standard", generation=1, observed=1)
    written = isvc(mode="Standard", uri=V2, generation=2, observed=1)
    goal = goal_for(written, before)
    rolling = isvc(mode="Standard", uri=V2, generation=2, observed=2)
    rolling["status"]["conditions"][0]["reason"] = "MinimumReplicasAvailable"  # old pods serve
    assert assess(rolling, goal) == Verdict(
        False,
        "the Deployment's rolling update to finish (PredictorReady's reason is "
        "MinimumReplicasAvailable, not NewReplicaSetAvailable)",
    )
    assert assess(isvc(mode="Standard", uri=V2, generation=2, observed=2), goal) == Verdict(True)


def test_standard_scaling_fields_do_not_wait_for_the_deployment() -> None:
    # minReplicas goes to the HorizontalPodAutoscaler: the Deployment's generation may not move.
    before = isvc(mode="Standard", generation=1, observed=3)
    written = isvc(mode="Standard", generation=2, observed=3, predictor={"minReplicas": 2})
    goal = goal_for(written, before)
    assert goal.observed_before is None
    assert assess(written, goal) == Verdict(True)


def test_standard_a_promotion_does_not_wait_for_the_old_deployments_generation() -> None:
    # The promoted canary's Deployment keeps its pods and its generation (1), which may be at
    # or below the old stable Deployment's: only the canaries' removal and Ready count.
    canary = [{"predictor": {"name": "canary-1"}, "trafficPercent": 20}]
    before = isvc(mode="Standard", generation=3, observed=4, canary=canary)
    written = isvc(mode="Standard", uri=V2, generation=4, observed=4)
    written["spec"]["predictor"]["name"] = "canary-1"
    goal = goal_for(written, before)
    assert goal == Goal(4)
    promoted = isvc(mode="Standard", uri=V2, generation=4, observed=1)
    assert assess(promoted, goal) == Verdict(True)


# --- verdicts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "goal", "verdict"),
    [
        pytest.param(
            knative(isvc(generation=2, observed=1), 100),
            Goal(2, latest_percent=100, replaces_revision="r2"),
            Verdict(False, "a new revision to replace r2"),
            id="a stale Ready never counts",
        ),
        pytest.param(
            knative(isvc(generation=2, ready=False), 100),
            Goal(2, latest_percent=100),
            Verdict(False, "the Ready condition"),
            id="not ready",
        ),
        pytest.param(
            knative(isvc(percent=30, generation=2), 100, created="r3", ready="r2"),
            Goal(2, latest_percent=30),
            Verdict(False, "revision r3 to become ready"),
            id="latest created is not the latest ready",
        ),
        pytest.param(
            knative(isvc(percent=30, generation=2), 100),
            Goal(2, latest_percent=30),
            Verdict(False, "the latest revision to receive 30% of traffic (it has 100%)"),
            id="traffic not split yet",
        ),
        pytest.param(canary_70_30(), Goal(2, latest_percent=30), Verdict(True), id="canary done"),
        pytest.param(
            knative(isvc(percent=0, generation=3, ready=False), 0, created="r2", ready="r1"),
            Goal(3, ready=False, latest_percent=0),
            Verdict(True),
            id="a rollback to 0% does not wait for the broken canary",
        ),
        pytest.param(
            isvc(mode="Standard", generation=2),
            Goal(2, canaries=(("canary-1", 20),)),
            Verdict(False, "canary canary-1 to be ready with 20% of traffic"),
            id="standard canary not ready",
        ),
        pytest.param(
            knative(isvc(generation=2, annotations={"serving.kserve.io/stop": "true"}), 100),
            Goal(2, latest_percent=100),
            Verdict(False, stopped=True),
            id="stopped, even with a Ready the controller has not yet taken back",
        ),
        pytest.param(
            knative(
                isvc(percent=0, generation=3, annotations={"serving.kserve.io/stop": "True"}), 0
            ),
            Goal(3, ready=False, latest_percent=0),
            Verdict(False, stopped=True),
            id="stopped, on a rollback to 0%",
        ),
    ],
)
def test_assess(obj, goal, verdict) -> None:
    assert assess(obj, goal) == verdict


def test_a_model_that_will_not_load_fails_at_once() -> None:
    obj = isvc(ready=False)
    obj["status"]["modelStatus"] = {
        "transitionStatus": "BlockedByFailedLoad",
        "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no SavedModel found"},
    }
    assert assess(obj, Goal(1)) == Verdict(False, failure="no SavedModel found")


def test_standard_canaries_must_be_ready_with_their_share() -> None:
    obj = isvc(mode="Standard", generation=2)
    obj["status"]["canaryStatuses"] = [{"name": "canary-1", "ready": True, "trafficPercent": 20}]
    assert assess(obj, Goal(2, canaries=(("canary-1", 20),))) == Verdict(True)
    assert assess(obj, Goal(2)) == Verdict(False, "the canaries to be removed")


# --- watching --------------------------------------------------------------------------------

#: What a write of a new model returned: the status still shows the old revision, Ready.
WRITTEN = knative(isvc(uri=V2, generation=2, observed=1), 100, created="r1", ready="r1")


def versioned(obj: dict[str, Any], version: int, **status: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["resourceVersion"] = str(version)
    out["status"].update(status)
    return out


def listing(*items: dict[str, Any], version: int) -> Reply:
    return Reply(
        body={
            "kind": "InferenceServiceList",
            "metadata": {"resourceVersion": str(version)},
            "items": list(items),
        }
    )


def modified(obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": "MODIFIED", "object": obj}


STALE = versioned(WRITTEN, 10)
STILL_STALE = versioned(WRITTEN, 11)
DONE = versioned(knative(isvc(uri=V2, generation=2), 100, created="r2", ready="r2"), 12)


def scripted(*replies: Reply):
    queue = list(replies)

    def handler(request: Recorded) -> Reply:
        return queue.pop(0)

    return handler


def watch_versions(api) -> list[str | None]:
    return [r.query.get("resourceVersion") for r in api.requests if r.query.get("watch")]


def test_a_cut_watch_resumes_from_the_last_version_seen(fake_api) -> None:
    api, cluster = fake_api(
        scripted(
            listing(STALE, version=10),
            Reply(events=[modified(STILL_STALE)], cut=True),
            Reply(
                events=[
                    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "13"}}},
                    modified(DONE),
                ]
            ),
        )
    )
    seen: list[Verdict] = []
    result = wait_ready(cluster, WRITTEN, timeout=10, on_change=lambda obj, v: seen.append(v))
    assert result["metadata"]["resourceVersion"] == "12"
    assert watch_versions(api) == ["10", "11"]
    assert [r.query.get("fieldSelector") for r in api.requests] == ["metadata.name=digits"] * 3
    assert seen[-1] == Verdict(True) and not seen[0].done


@pytest.mark.parametrize(
    "gone", ["event", "status"], ids=["410 as a watch event", "410 as a reply"]
)
def test_a_compacted_version_lists_afresh(fake_api, gone: str) -> None:
    expired = status_body(410, "Expired", "too old resource version: 10 (50)")
    api, cluster = fake_api(
        scripted(
            listing(STALE, version=10),
            Reply(events=[{"type": "ERROR", "object": expired}])
            if gone == "event"
            else Reply(410, expired),
            listing(STILL_STALE, version=50),
            Reply(events=[modified(DONE)]),
        )
    )
    wait_ready(cluster, WRITTEN, timeout=10)
    assert watch_versions(api) == ["10", "50"]
    assert [bool(r.query.get("watch")) for r in api.requests] == [False, True, False, True]


@pytest.mark.timeout(60)  # a wait that missed its deadline would hang on the quiet watches
def test_the_deadline_ends_with_the_last_conditions(fake_api) -> None:
    waiting = versioned(knative(isvc(generation=2, ready=False), 100), 10)
    now = [0.0]

    def quiet_server(request: Recorded) -> Reply:
        if not request.query.get("watch"):
            return listing(waiting, version=10)
        now[0] += 0.2  # each watch ends with no event after 0.2 s on the waiter's clock
        return Reply(events=[])

    api, cluster = fake_api(quiet_server)
    with pytest.raises(WaitTimeout) as caught:
        wait_ready(cluster, waiting, before=waiting, timeout=0.5, clock=lambda: now[0])
    assert str(caught.value) == (
        "inferenceservice ml/digits was not ready after 0.5s: still waiting for the Ready "
        "condition; last conditions: PredictorReady=False; Ready=False (RevisionMissing: not "
        "yet). Check `timonel status digits`, or wait longer with --timeout"
    )
    assert caught.value.conditions == waiting["status"]["conditions"]
    # One list, then watches resumed until the clock passed the deadline (at 0.2, 0.4, 0.6 s).
    assert [bool(r.query.get("watch")) for r in api.requests] == [False, True, True, True]
    assert all(r.query.get("timeoutSeconds") == "1" for r in api.requests if r.query.get("watch"))


def test_a_failed_load_ends_the_wait_with_the_reason(fake_api) -> None:
    failed = versioned(knative(isvc(uri=V2, generation=2, ready=False), 100), 10)
    failed["status"]["modelStatus"] = {
        "transitionStatus": "BlockedByFailedLoad",
        "lastFailureInfo": {"message": "Could not find base path /mnt/models"},
    }
    _, cluster = fake_api(scripted(listing(failed, version=10)))
    with pytest.raises(ModelError) as caught:
        wait_ready(cluster, WRITTEN, timeout=10)
    assert str(caught.value) == (
        "inferenceservice ml/digits will not become ready: Could not find base path "
        "/mnt/models; fix the model or its storage URI and deploy again, or roll back with "
        "`timonel rollback digits`"
    )


def test_wait_deleted_ends_on_the_deleted_event(fake_api) -> None:
    api, cluster = fake_api(
        scripted(
            listing(STALE, version=10),
            Reply(events=[modified(STILL_STALE), {"type": "DELETED", "object": STILL_STALE}]),
        )
    )
    wait_deleted(cluster, "digits", namespace="ml", timeout=10)
    assert len(api.requests) == 2


def test_wait_deleted_on_an_absent_object_returns_at_once(fake_api) -> None:
    api, cluster = fake_api(scripted(listing(version=10)))
    wait_deleted(cluster, "digits", timeout=10)
    assert len(api.requests) == 1


def test_a_stopped_service_ends_the_wait_at_once_with_how_to_start_it(fake_api) -> None:
    stopped = versioned(WRITTEN, 10)
    stopped["metadata"]["annotations"] = {"serving.kserve.io/stop": "true"}
    api, cluster = fake_api(
        lambda r: listing(stopped, version=10) if not r.query.get("watch") else Reply(events=[])
    )
    with pytest.raises(SpecError) as caught:
        wait_ready(cluster, WRITTEN, timeout=600)
    assert str(caught.value) == (
        'inferenceservice ml/digits is stopped (annotation serving.kserve.io/stop: "true"), so '
        "it will not become ready; start it by removing the annotation: kubectl annotate "
        "inferenceservice digits -n ml serving.kserve.io/stop-"
    )
    assert caught.value.field == "metadata.annotations[serving.kserve.io/stop]"
    assert len(api.requests) == 1, "ended on the first read, without watching"


def test_a_service_stopped_while_waiting_ends_the_wait_on_that_event(fake_api) -> None:
    stopped = versioned(STILL_STALE, 11)
    stopped["metadata"]["annotations"] = {"serving.kserve.io/stop": "true"}
    api, cluster = fake_api(
        scripted(listing(STALE, version=10), Reply(events=[modified(stopped)], hold=60))
    )
    with pytest.raises(SpecError, match="is stopped"):  # not WaitTimeout: the held watch
        wait_ready(cluster, WRITTEN, timeout=60)
    assert watch_versions(api) == ["10"]


@pytest.mark.parametrize("timeout", [0, -1, math.inf, math.nan])
def test_a_wait_needs_seconds_above_zero(fake_api, timeout: float) -> None:
    api, cluster = fake_api(scripted())
    with pytest.raises(SpecError) as caught:
        wait_ready(cluster, WRITTEN, timeout=timeout)
    assert str(caught.value) == (
        f"--timeout {timeout:g}: expected the number of seconds to wait, above 0; give one such "
        "as --timeout 600 (timeout=600 in Python), or leave it out for the default"
    )
    assert caught.value.field == "timeout"
    assert api.requests == []
