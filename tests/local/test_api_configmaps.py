"""ConfigMaps on the local API server, and the garbage collection of objects whose owner went.

Driven by the real ``kubernetes`` client (CoreV1Api, CustomObjectsApi) and the real kubectl.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .kubeapi import GROUP, PLURAL, VERSION, isvc
from .test_api_kubectl import kubectl


@pytest.fixture(scope="module")
def core(kube_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_client)


@pytest.fixture(scope="module")
def custom(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


def owned_by(*owners: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": False,
        }
        for owner in owners
    ]


def config_map(name: str, owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if owners:
        metadata["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "1"}}


def exists(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespaced_config_map(name, "default")
    except ApiException as exc:
        assert exc.status == 404
        return False
    return True


def test_config_maps_are_created_read_patched_listed_and_deleted(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("settings"))
    core.patch_namespaced_config_map("settings", "default", {"data": {"b": "2"}})
    read = core.read_namespaced_config_map("settings", "default")
    assert read.data == {"a": "1", "b": "2"}
    names = [item.metadata.name for item in core.list_namespaced_config_map("default").items]
    assert "settings" in names
    core.delete_namespaced_config_map("settings", "default")
    assert not exists(core, "settings")


def test_kubectl_get_configmaps_counts_their_data(
    core: client.CoreV1Api, local_kubeconfig: Path
) -> None:
    core.create_namespaced_config_map("default", config_map("counted"))
    result = kubectl(local_kubeconfig, "get", "cm", "counted")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "DATA", "AGE"]
    assert row.split()[:2] == ["counted", "1"]


def test_a_config_map_goes_with_the_inference_service_that_owns_it(
    core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    owner = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("owner"))
    core.create_namespaced_config_map("default", config_map("owner-rollout", owned_by(owner)))
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "owner")
    assert not exists(core, "owner-rollout")


def test_an_orphaning_delete_keeps_the_dependent_without_the_reference(
    core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    owner = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, isvc("leaver")
    )
    core.create_namespaced_config_map("default", config_map("left", owned_by(owner)))
    custom.delete_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "leaver", propagation_policy="Orphan"
    )
    assert core.read_namespaced_config_map("left", "default").metadata.owner_references is None


def test_a_dependent_with_another_owner_left_loses_only_the_deleted_reference(
    core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    first, second = (
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc(name))
        for name in ("first", "second")
    )
    core.create_namespaced_config_map("default", config_map("shared", owned_by(first, second)))
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "first")
    kept = core.read_namespaced_config_map("shared", "default").metadata.owner_references
    assert [reference.name for reference in kept] == ["second"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "second")
    assert not exists(core, "shared")


def test_a_reference_to_an_owner_of_the_same_name_but_another_uid_is_no_owner(
    core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    gone = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("again"))
    other = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("other"))
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "again")
    again = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("again"))
    stale = {**gone, "metadata": {**gone["metadata"], "name": "again"}}
    core.create_namespaced_config_map("default", config_map("stale", owned_by(stale, other)))
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "other")
    assert not exists(core, "stale")  # its one live owner went: the "again" of today is not it
    custom.delete_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, again["metadata"]["name"]
    )


@pytest.mark.parametrize("mode", ["--server-side", "--server-side=false"])
def test_kubectl_apply_creates_and_then_updates_a_config_map(
    core: client.CoreV1Api, local_kubeconfig: Path, tmp_path: Path, mode: str
) -> None:
    name = "applied-ssa" if mode == "--server-side" else "applied-csa"
    manifest = tmp_path / "cm.yaml"
    for value in ("1", "2"):
        manifest.write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: '{value}'\n"
        )
        result = kubectl(local_kubeconfig, "apply", mode, "-f", str(manifest))
        assert result.returncode == 0, result.stderr
    assert core.read_namespaced_config_map(name, "default").data == {"k": "2"}


def test_a_config_map_applied_server_side_keeps_its_owner_and_goes_with_it(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, local_kubeconfig: Path
) -> None:
    from timonel.kube.client import Cluster
    from timonel.kube.requests import apply_object

    owner = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("ssa"))
    manifest = {**config_map("ssa-rollout", owned_by(owner)), "data": {}}
    manifest["metadata"]["namespace"] = "default"
    with Cluster.connect(kubeconfig=local_kubeconfig) as api:
        api.send(apply_object(manifest))
    kept = core.read_namespaced_config_map("ssa-rollout", "default").metadata.owner_references
    assert [reference.uid for reference in kept] == [owner["metadata"]["uid"]]
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "ssa")
    assert not exists(core, "ssa-rollout")


def test_a_watch_of_config_maps_sees_them_created_and_deleted(core: client.CoreV1Api) -> None:
    from kubernetes import watch

    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", config_map("watched"))
    core.delete_namespaced_config_map("watched", "default")
    seen = [
        (event["type"], event["object"].metadata.name)
        for event in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=start,
            timeout_seconds=2,
        )
    ]
    assert seen == [("ADDED", "watched"), ("DELETED", "watched")]


def test_a_config_map_key_kube_apiserver_refuses_is_refused(core: client.CoreV1Api) -> None:
    body = {**config_map("bad-key"), "data": {"timonel.dev/rollout": "{}"}}
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", body)
    assert caught.value.status == 422
    assert json.loads(caught.value.body)["message"] == (
        'ConfigMap "bad-key" is invalid: data[timonel.dev/rollout]: Invalid value: '
        "\"timonel.dev/rollout\": a valid config key must consist of alphanumeric characters, '-', "
        "'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
        "is '[-._a-zA-Z0-9]+')"
    )
    assert not exists(core, "bad-key")
