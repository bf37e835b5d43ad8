"""The operations' requests against a scripted API: apply, conditional patches, 409 retries, and
the release check before a ServingSpec is deployed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from timonel.errors import ApiError, ReleaseError, SpecError
from timonel.kube import rollout
from timonel.kube.patches import PREVIOUS_STORAGE_URI
from timonel.spec import Model, ServingSpec

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


# --- a ServingSpec's release is checked before anything is written ---------------------------


def published(tmp_path: Path, *, tensorflow_version: str = "2.21.0") -> str:
    """A release folder with the parts of ``timonel.json`` deploy reads."""
    folder = tmp_path / "digits" / "v3"
    folder.mkdir(parents=True)
    manifest = {"size_bytes": 10**6, "tensorflow_version": tensorflow_version}
    (folder / "timonel.json").write_text(json.dumps(manifest))
    return str(folder)


def test_deploy_reads_the_release_for_the_runtime_version(fake_api, tmp_path: Path) -> None:
    uri = published(tmp_path)
    api, cluster = fake_api(scripted(NOT_FOUND, Reply(body=isvc(uri=uri))))
    spec = ServingSpec(model=Model(name="digits", storage_uri=uri))
    assert spec.model.runtime_version == "2.20.0"  # the default, as nothing says otherwise
    rollout.deploy(spec, cluster=cluster, wait=False)
    model = api.requests[1].body["spec"]["predictor"]["model"]
    assert model["runtimeVersion"] == "2.21.0"  # the TensorFlow that exported the release


@pytest.mark.parametrize(
    ("release", "runtime", "error", "message"),
    [
        pytest.param(
            "v4",
            None,
            ReleaseError,
            "/digits/v4/timonel.json: no release manifest; give a published release URI",
            id="an unpublished release",
        ),
        pytest.param(
            "v3",
            "2.19.0",
            SpecError,
            "model.runtime_version: TF Serving 2.19.0 is older than TensorFlow 2.21.0, which "
            "exported the model",
            id="a runtime older than the exporting TensorFlow",
        ),
    ],
)
def test_deploy_refuses_a_release_it_cannot_serve_before_writing(
    fake_api,
    tmp_path: Path,
    release: str,
    runtime: str | None,
    error: type[Exception],
    message: str,
) -> None:
    published(tmp_path)  # v3
    (tmp_path / "digits" / "v4").mkdir()  # copied, never published
    uri = str(tmp_path / "digits" / release)
    api, cluster = fake_api(scripted())
    spec = ServingSpec(model=Model(name="digits", storage_uri=uri, runtime_version=runtime))
    with pytest.raises(error) as caught:
        rollout.deploy(spec, cluster=cluster, wait=False)
    assert message in str(caught.value)
    assert api.requests == []


def test_a_spec_that_names_its_tensorflow_is_deployed_unread(fake_api) -> None:
    def unreachable(uri: str) -> Any:
        raise AssertionError(f"read {uri}")

    spec = ServingSpec(model=Model(name="digits", storage_uri=V1, tensorflow_version="2.20.0"))
    assert rollout.check_release(spec, read_release=unreachable) == spec
    plain = ServingSpec(model=Model(name="digits", storage_uri="gs://models/digits"))
    assert rollout.check_release(plain, read_release=unreachable) == plain
