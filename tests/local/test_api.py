"""The local API server through the ``kubernetes`` client: CRUD, patches, status, errors, auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from timonel.local.apiserver import Running, running

from .kubeapi import GROUP, PLURAL, TOKEN, VERSION, api_client, custom, isvc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running(tmp_path_factory.mktemp("cluster"), TOKEN) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: Running) -> client.CustomObjectsApi:
    return custom(server.url)


@pytest.fixture
def name(request: pytest.FixtureRequest, api: client.CustomObjectsApi) -> Iterator[str]:
    """A fresh InferenceService name per test, deleted afterwards if the test left it."""
    value = request.node.name.replace("_", "-")[5:40].strip("-")
    yield value
    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, value)
    except ApiException as exc:
        assert exc.status == 404


def http(server: Running, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


def create(api: client.CustomObjectsApi, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body, **kw)


def get(api: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return api.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)


def failure(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == exc.value.status
    return body


# -- auth and discovery ----------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_request_without_the_token_is_401_unauthorized(
    server: Running, token: str | None
) -> None:
    with http(server, token) as session:
        response = session.get(
            "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
        )
    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_the_kubernetes_client_gets_401_with_a_wrong_token(server: Running) -> None:
    with pytest.raises(ApiException) as exc:
        custom(server.url, "nope").list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert failure(exc)["reason"] == "Unauthorized"


def test_discovery_names_inferenceservices_with_the_status_subresource(server: Running) -> None:
    with http(server) as session:
        groups = session.get("/apis").json()
        resources = session.get("/apis/serving.kserve.io/v1beta1").json()
        core = session.get("/api/v1").json()
        version = session.get("/version").json()
    kserve = [g for g in groups["groups"] if g["name"] == "serving.kserve.io"]
    assert [g["name"] for g in groups["groups"]] == [
        "apps",
        "authorization.k8s.io",
        "serving.knative.dev",
        "serving.kserve.io",
    ]
    assert kserve[0]["preferredVersion"]["groupVersion"] == "serving.kserve.io/v1beta1"
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["inferenceservices"]["shortNames"] == ["isvc"]
    assert by_name["inferenceservices"]["namespaced"] is True
    assert set(by_name["inferenceservices"]["verbs"]) >= {"create", "get", "list", "watch", "patch"}
    assert by_name["inferenceservices/status"]["verbs"] == ["get", "patch", "update"]
    assert {"namespaces", "events"} <= {r["name"] for r in core["resources"]}
    assert version["major"] == "1"


def test_an_unknown_path_is_a_404_status(server: Running) -> None:
    with http(server) as session:
        response = session.get("/apis/batch/v1/namespaces/default/jobs")
    assert response.status_code == 404
    assert response.json()["message"] == "the server could not find the requested resource"


# -- create, get, list -----------------------------------------------------------------------


def test_create_sets_the_server_owned_metadata(api: client.CustomObjectsApi, name: str) -> None:
    created = create(api, isvc(name))
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["managedFields"][0]["operation"] == "Update"
    assert get(api, name) == created


def test_create_drops_a_status_sent_with_the_object(
    api: client.CustomObjectsApi, name: str
) -> None:
    body = isvc(name) | {"status": {"url": "http://forged"}}
    assert "status" not in create(api, body)


def test_a_created_pod_is_pending_with_its_qos_class(server: Running) -> None:
    core = client.CoreV1Api(api_client(server.url))
    limits = {"cpu": "1", "memory": "1Gi"}
    container = {"name": "c", "image": "i", "resources": {"limits": limits}}
    body = {"metadata": {"name": "pending"}, "spec": {"containers": [container]}}
    created = core.create_namespaced_pod("default", body)
    try:
        assert created.status.phase == "Pending"
        assert created.status.qos_class == "Guaranteed"
        assert created.status.conditions is None
    finally:
        core.delete_namespaced_pod("pending", "default")


def test_a_pod_with_a_malformed_quantity_is_400(server: Running) -> None:
    core = client.CoreV1Api(api_client(server.url))
    container = {"name": "c", "image": "i", "resources": {"limits": {"cpu": "lots"}}}
    body = {"metadata": {"name": "malformed"}, "spec": {"containers": [container]}}
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod("default", body)
    assert exc.value.status == 400
    assert "quantities must match the regular expression" in failure(exc)["message"]


def test_resource_versions_increase_across_writes(api: client.CustomObjectsApi, name: str) -> None:
    first = int(create(api, isvc(name))["metadata"]["resourceVersion"])
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"metadata": {"labels": {"x": "1"}}}
    )
    assert int(patched["metadata"]["resourceVersion"]) > first


def test_list_filters_by_label_and_field_selectors(api: client.CustomObjectsApi, name: str) -> None:
    create(api, isvc(name))
    other = isvc(f"{name}-b")
    other["metadata"]["labels"] = {"app": "other", "tier": "canary"}
    create(api, other)
    try:

        def names(**kw: Any) -> list[str]:
            found = api.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, **kw)
            return [
                o["metadata"]["name"]
                for o in found["items"]
                if o["metadata"]["name"] in (name, f"{name}-b")
            ]

        assert names(label_selector="app=digits") == [name]
        assert names(label_selector="app in (digits,other),tier") == [f"{name}-b"]
        assert names(label_selector="!tier") == [name]
        assert names(label_selector="app!=digits") == [f"{name}-b"]
        assert names(field_selector=f"metadata.name={name}") == [name]
        listed = api.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, label_selector="tier=canary"
        )
        assert [o["metadata"]["name"] for o in listed["items"]] == [f"{name}-b"]
        assert listed["kind"] == "InferenceServiceList"
    finally:
        api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, f"{name}-b")


def test_generate_name_gets_a_random_suffix(api: client.CustomObjectsApi) -> None:
    body = isvc("ignored")
    body["metadata"] = {"generateName": "gen-"}
    created = create(api, body)
    generated = created["metadata"]["name"]
    assert generated.startswith("gen-") and len(generated) == 9
    api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, generated)


# -- errors ----------------------------------------------------------------------------------


def test_get_of_a_missing_object_is_404_not_found(api: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        get(api, "missing")
    body = failure(exc)
    assert body["reason"] == "NotFound"
    assert body["message"] == 'inferenceservices.serving.kserve.io "missing" not found'
    assert body["details"] == {"name": "missing", "group": GROUP, "kind": PLURAL}


def test_creating_twice_is_409_already_exists(api: client.CustomObjectsApi, name: str) -> None:
    create(api, isvc(name))
    with pytest.raises(ApiException) as exc:
        create(api, isvc(name))
    body = failure(exc)
    assert exc.value.status == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == f'inferenceservices.serving.kserve.io "{name}" already exists'


def test_a_replace_with_a_stale_resource_version_is_409_conflict(
    api: client.CustomObjectsApi, name: str
) -> None:
    stale = create(api, isvc(name))
    api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"spec": {"predictor": {"minReplicas": 2}}}
    )
    stale["spec"]["predictor"]["minReplicas"] = 3
    with pytest.raises(ApiException) as exc:
        api.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name, stale)
    body = failure(exc)
    assert exc.value.status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        f'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "{name}": the '
        "object has been modified; please apply your changes to the latest version and try again"
    )


def test_a_replace_without_a_resource_version_is_422(
    api: client.CustomObjectsApi, name: str
) -> None:
    create(api, isvc(name))
    with pytest.raises(ApiException) as exc:
        api.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name, isvc(name))
    body = failure(exc)
    assert exc.value.status == 422
    assert body["message"] == (
        f'InferenceService.serving.kserve.io "{name}" is invalid: metadata.resourceVersion: '
        "Invalid value: 0x0: must be specified for an update"
    )


def test_a_schema_violation_is_422_invalid_with_one_cause_per_field(
    api: client.CustomObjectsApi, name: str
) -> None:
    body = isvc(name, minReplicas="two", scaleMetric="gpu")
    body["spec"]["canary"] = [{"predictor": {}, "trafficPercent": 150}]
    with pytest.raises(ApiException) as exc:
        create(api, body)
    status = failure(exc)
    assert exc.value.status == 422
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "InferenceService"
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 150: spec.canary[0].trafficPercent in body should be less "
            "than or equal to 100",
            "field": "spec.canary[0].trafficPercent",
        },
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.predictor.minReplicas in body must be of '
            'type integer: "string"',
            "field": "spec.predictor.minReplicas",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "gpu": supported values: "cpu", "memory", '
            '"concurrency", "rps"',
            "field": "spec.predictor.scaleMetric",
        },
    ]
    assert status["message"].startswith(
        f'InferenceService.serving.kserve.io "{name}" is invalid: [spec.canary[0].trafficPercent: '
    )


def test_a_missing_predictor_is_a_required_value(api: client.CustomObjectsApi, name: str) -> None:
    body = isvc(name)
    body["spec"] = {}
    with pytest.raises(ApiException) as exc:
        create(api, body)
    assert failure(exc)["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.predictor"}
    ]


def test_an_invalid_name_is_422(api: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        create(api, isvc("Bad_Name"))
    cause = failure(exc)["details"]["causes"][0]
    assert cause["field"] == "metadata.name"
    assert cause["message"].startswith('Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')


def test_the_kserve_webhook_denies_what_kserve_denies(
    api: client.CustomObjectsApi, name: str
) -> None:
    with pytest.raises(ApiException) as exc:
        create(api, isvc(name, minReplicas=3, maxReplicas=2))
    body = failure(exc)
    assert exc.value.status == 403
    assert body["reason"] == "Forbidden"
    assert body["message"].startswith(
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: '
    )
    assert "'MinReplicas' cannot be greater than MaxReplicas" in body["message"]


def test_creating_in_a_missing_namespace_is_404(api: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_custom_object(GROUP, VERSION, "nowhere", PLURAL, isvc("x"))
    assert failure(exc)["message"] == 'namespaces "nowhere" not found'


def test_a_body_for_another_namespace_is_400(api: client.CustomObjectsApi) -> None:
    body = isvc("x")
    body["metadata"]["namespace"] = "kserve"
    with pytest.raises(ApiException) as exc:
        create(api, body)
    assert failure(exc)["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


# -- patches, generation, no-ops -------------------------------------------------------------


def test_a_spec_change_bumps_generation_and_a_label_change_does_not(
    api: client.CustomObjectsApi, name: str
) -> None:
    create(api, isvc(name))
    relabeled = api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"metadata": {"labels": {"team": "ml"}}}
    )
    assert relabeled["metadata"]["generation"] == 1
    assert relabeled["metadata"]["labels"] == {"app": "digits", "team": "ml"}
    changed = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        name,
        {"spec": {"predictor": {"canaryTrafficPercent": 10}}},
    )
    assert changed["metadata"]["generation"] == 2
    assert changed["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert changed["spec"]["predictor"]["minReplicas"] == 1


def test_a_merge_patch_null_removes_the_field(api: client.CustomObjectsApi, name: str) -> None:
    create(api, isvc(name, canaryTrafficPercent=30))
    promoted = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        name,
        {"spec": {"predictor": {"canaryTrafficPercent": None}}},
    )
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]


def test_a_no_op_patch_writes_nothing(api: client.CustomObjectsApi, name: str) -> None:
    created = create(api, isvc(name))
    same = api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"spec": {"predictor": {"minReplicas": 1}}}
    )
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_a_json_patch_applies_its_operations(
    server: Running, name: str, api: client.CustomObjectsApi
) -> None:
    create(api, isvc(name))
    path = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/{name}"
    ops = [
        {"op": "replace", "path": "/spec/predictor/minReplicas", "value": 0},
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
    ]
    with http(server) as session:
        response = session.patch(
            path, content=json.dumps(ops), headers={"Content-Type": "application/json-patch+json"}
        )
        failed = session.patch(
            path,
            content=json.dumps([{"op": "test", "path": "/spec/predictor/minReplicas", "value": 5}]),
            headers={"Content-Type": "application/json-patch+json"},
        )
    assert response.status_code == 200
    assert response.json()["spec"]["predictor"]["minReplicas"] == 0
    assert response.json()["metadata"]["annotations"] == {"a": "b"}
    assert failed.status_code == 422


def test_a_strategic_merge_patch_is_415_as_for_every_custom_resource(
    server: Running, api: client.CustomObjectsApi, name: str
) -> None:
    create(api, isvc(name))
    with http(server) as session:
        response = session.patch(
            f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/{name}",
            content=b"{}",
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert response.json()["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


def test_a_patch_carrying_an_old_resource_version_is_409(
    api: client.CustomObjectsApi, name: str
) -> None:
    created = create(api, isvc(name))
    api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"metadata": {"labels": {"x": "y"}}}
    )
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            name,
            {
                "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
                "spec": {"predictor": {"minReplicas": 4}},
            },
        )
    assert exc.value.status == 409


# -- status subresource ----------------------------------------------------------------------


def test_status_is_written_only_through_the_status_subresource(
    api: client.CustomObjectsApi, name: str
) -> None:
    create(api, isvc(name))
    status = {
        "url": "http://digits.default.example.com",
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    written = api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        name,
        {"status": status, "spec": {"predictor": {"minReplicas": 9}}},
    )
    assert written["status"] == status
    assert written["spec"]["predictor"]["minReplicas"] == 1
    assert written["metadata"]["generation"] == 1
    ignored = api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"status": {"url": "http://forged"}}
    )
    assert ignored["status"]["url"] == status["url"]
    fetched = api.get_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, name)
    fetched["status"]["url"] = "http://replaced"
    replaced = api.replace_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, name, fetched
    )
    assert replaced["status"]["url"] == "http://replaced"
    assert replaced["metadata"]["generation"] == 1
    managers = {(m["manager"], m.get("subresource")) for m in replaced["metadata"]["managedFields"]}
    assert ("OpenAPI-Generator", "status") in managers


# -- dry run ---------------------------------------------------------------------------------


def test_dry_run_validates_without_storing(api: client.CustomObjectsApi, name: str) -> None:
    preview = create(api, isvc(name), dry_run="All")
    assert preview["metadata"]["generation"] == 1
    assert "resourceVersion" not in preview["metadata"]
    with pytest.raises(ApiException) as exc:
        get(api, name)
    assert exc.value.status == 404
    created = create(api, isvc(name))
    patched = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        name,
        {"spec": {"predictor": {"minReplicas": 2}}},
        dry_run="All",
    )
    assert patched["metadata"]["generation"] == 2
    assert get(api, name) == created
    with pytest.raises(ApiException) as exc:
        create(api, isvc("Bad"), dry_run="All")
    assert exc.value.status == 422


# -- delete ----------------------------------------------------------------------------------


def test_delete_returns_a_success_status_and_honours_preconditions(
    api: client.CustomObjectsApi, name: str
) -> None:
    created = create(api, isvc(name))
    with pytest.raises(ApiException) as exc:
        api.delete_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            name,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="other")),
        )
    assert failure(exc)["message"] == (
        f'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "{name}": '
        f"Precondition failed: UID in precondition: other, UID in object meta: "
        f"{created['metadata']['uid']}"
    )
    deleted = api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    assert deleted["status"] == "Success"
    assert deleted["details"] == {
        "name": name,
        "group": GROUP,
        "kind": PLURAL,
        "uid": created["metadata"]["uid"],
    }
    with pytest.raises(ApiException) as exc:
        get(api, name)
    assert exc.value.status == 404


def test_an_object_with_finalizers_is_deleted_when_they_are_removed(
    api: client.CustomObjectsApi, name: str
) -> None:
    body = isvc(name)
    body["metadata"]["finalizers"] = ["inferenceservice.finalizers"]
    create(api, body)
    marked = api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    assert marked["metadata"]["deletionTimestamp"]
    assert get(api, name)["metadata"]["deletionTimestamp"]
    api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as exc:
        get(api, name)
    assert exc.value.status == 404


# -- namespaces ------------------------------------------------------------------------------


def test_namespaces_list_get_and_create(server: Running) -> None:
    core = client.CoreV1Api(api_client(server.url))
    assert "default" in [n.metadata.name for n in core.list_namespace().items]
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ml")))
    assert created.status.phase == "Active"
    assert core.read_namespace("ml").metadata.uid == created.metadata.uid
    with pytest.raises(ApiException) as exc:
        core.read_namespace("missing")
    assert exc.value.status == 404
    api = custom(server.url)
    api.create_namespaced_custom_object(GROUP, VERSION, "ml", PLURAL, isvc("in-ml"))
    found = api.list_namespaced_custom_object(GROUP, VERSION, "ml", PLURAL)
    assert [o["metadata"]["namespace"] for o in found["items"]] == ["ml"]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    with running(tmp_path, TOKEN) as srv:
        created = create(custom(srv.url), isvc("kept"))
    with running(tmp_path, TOKEN) as srv:
        api = custom(srv.url)
        assert get(api, "kept") == created
        patched = api.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "kept", {"metadata": {"labels": {"v": "2"}}}
        )
    assert (
        int(patched["metadata"]["resourceVersion"])
        == int(created["metadata"]["resourceVersion"]) + 1
    )
