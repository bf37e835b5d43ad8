"""The operations' requests against a scripted API: apply, conditional patches, 409 retries."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.errors import ApiError
from timonel.kube import rollout
from timonel.kube.patches import PREVIOUS_STORAGE_URI

from .fakeapi import Recorded, Reply, status_body
from .isvcs import V1, V2, canary_70_30, isvc

NOT_FOUND = Reply(404, status_body(404, "NotFound", 'inferenceservices "digits" not found'))
CONFLICT = Reply(409, status_body(409, "Conflict", "the object has been modified"))


def manifest(uri: str = V1) -> dict[str, Any]:
    obj = isvc(uri=uri)
    del obj["status"]
    del obj["metadata"]["namespace"], obj["metadata"]["generation"]
    del obj["metadata"]["resourceVersion"], obj["metadata"]["annotations"]
    return obj


def scripted(*replies: Reply):
    queue = list(replies)
    return lambda request: queue.pop(0)


def test_deploy_applies_into_the_context_namespace(fake_api) -> None:
    api, cluster = fake_api(scripted(NOT_FOUND, Reply(body=canary_70_30())))
    status = rollout.deploy(manifest(), cluster=cluster, wait=False)
    get, apply = api.requests
    assert (get.method, apply.method) == ("GET", "PATCH")
    assert apply.headers["content-type"] == "application/apply-patch+yaml"
    assert apply.body["metadata"] == {"name": "digits", "namespace": "ml"}
    assert status.canary_percent == 30


def test_deploy_of_a_new_release_remembers_the_served_one(fake_api) -> None:
    api, cluster = fake_api(scripted(Reply(body=isvc(uri=V1)), Reply(body=isvc(uri=V2))))
    rollout.deploy(manifest(V2), cluster=cluster, wait=False, dry_run=True)
    apply = api.requests[1]
    assert apply.body["metadata"]["annotations"] == {PREVIOUS_STORAGE_URI: V1}
    assert apply.query["dryRun"] == "All"


def test_a_conflict_is_retried_on_a_fresh_read(fake_api) -> None:
    api, cluster = fake_api(
        scripted(
            Reply(body=isvc(resource_version="7")),
            CONFLICT,
            Reply(body=isvc(resource_version="9")),
            Reply(body=canary_70_30()),
        )
    )
    rollout.canary("digits", V2, 30, cluster=cluster, wait=False)
    methods = [r.method for r in api.requests]
    assert methods == ["GET", "PATCH", "GET", "PATCH"]
    assert [r.body["metadata"]["resourceVersion"] for r in api.requests if r.method == "PATCH"] == [
        "7",
        "9",
    ]


def test_conflicts_in_a_row_give_up_with_advice(fake_api) -> None:
    def handler(request: Recorded) -> Reply:
        return Reply(body=canary_70_30()) if request.method == "GET" else CONFLICT

    api, cluster = fake_api(handler)
    with pytest.raises(ApiError) as caught:
        rollout.promote("digits", cluster=cluster, wait=False)
    assert str(caught.value) == (
        "inferenceservice ml/digits kept changing while Timonel updated it (5 conflicts in a "
        "row: the object has been modified); another client is writing it: stop that one, or "
        "try again"
    )
    assert caught.value.status.code == 409
    assert len(api.requests) == 2 * rollout.CONFLICT_ATTEMPTS


def test_other_errors_are_not_retried(fake_api) -> None:
    denied = Reply(403, status_body(403, "Forbidden", "no"))
    api, cluster = fake_api(scripted(Reply(body=canary_70_30()), denied))
    with pytest.raises(ApiError, match="may not `patch`"):
        rollout.rollback("digits", cluster=cluster, wait=False)
    assert len(api.requests) == 2


def test_status_list_and_delete(fake_api) -> None:
    other = isvc()
    other["metadata"]["name"] = "alpha"
    api, cluster = fake_api(
        scripted(
            Reply(body=canary_70_30()),
            Reply(body={"items": [canary_70_30(), other]}),
            Reply(body=status_body(200, "", "")),
        )
    )
    assert rollout.status("digits", cluster=cluster).traffic[1].tag == "prev"
    assert [s.name for s in rollout.list_services(cluster=cluster)] == ["alpha", "digits"]
    rollout.delete("digits", cluster=cluster)
    assert api.requests[-1].method == "DELETE"
    assert api.requests[-1].body["propagationPolicy"] == "Background"
