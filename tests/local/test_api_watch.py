"""Watches through ``kubernetes.watch.Watch``: order, resume, 410 Expired, bookmarks, restarts."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from timonel.local.apiserver import Running, running

from .kubeapi import GROUP, PLURAL, TOKEN, VERSION, custom, isvc


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with running(tmp_path, TOKEN, history=5, bookmark_interval=0.2) as srv:
        yield srv


def stream(api: client.CustomObjectsApi, **kw: Any) -> Iterator[dict[str, Any]]:
    return watch.Watch().stream(
        api.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL, **kw
    )


def events(api: client.CustomObjectsApi, count: int, **kw: Any) -> list[tuple[str, str, str]]:
    """The first ``count`` events as (type, name, resourceVersion)."""
    found = []
    for event in stream(api, timeout_seconds=5, **kw):
        meta = event["raw_object"]["metadata"]
        found.append((event["type"], meta.get("name", ""), meta["resourceVersion"]))
        if len(found) == count:
            break
    return found


def test_a_watch_sees_added_modified_deleted_in_order(server: Running) -> None:
    api = custom(server.url)
    start = api.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    since = start["metadata"]["resourceVersion"]
    seen: list[tuple[str, str, str]] = []
    watcher = threading.Thread(
        target=lambda: seen.extend(events(api, 3, resource_version=since)), daemon=True
    )
    watcher.start()
    created = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "a", {"spec": {"predictor": {"minReplicas": 2}}}
    )
    api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a")
    watcher.join(10)
    rv = int(patched["metadata"]["resourceVersion"])
    assert seen == [
        ("ADDED", "a", created["metadata"]["resourceVersion"]),
        ("MODIFIED", "a", str(rv)),
        ("DELETED", "a", str(rv + 1)),
    ]


def test_a_watch_without_a_resource_version_starts_with_the_current_objects(
    server: Running,
) -> None:
    api = custom(server.url)
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("b"))
    assert [(t, n) for t, n, _ in events(api, 2)] == [("ADDED", "a"), ("ADDED", "b")]


def test_a_watch_resumes_from_the_resource_version_it_last_saw(server: Running) -> None:
    api = custom(server.url)
    first = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("b"))
    resumed = events(api, 1, resource_version=first["metadata"]["resourceVersion"])
    assert [(t, n) for t, n, _ in resumed] == [("ADDED", "b")]


def test_a_watch_from_a_compacted_resource_version_gets_410_expired(server: Running) -> None:
    api = custom(server.url)
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
    for replicas in range(2, 10):
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            "a",
            {"spec": {"predictor": {"minReplicas": replicas}}},
        )
    with pytest.raises(ApiException) as exc:
        events(api, 1, resource_version="2")
    assert exc.value.status == 410
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        lines = session.get(
            f"{server.url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}",
            params={"watch": "true", "resourceVersion": "2"},
        ).text.splitlines()
    error = json.loads(lines[0])
    message = error["object"].pop("message")
    assert error == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "reason": "Expired",
            "code": 410,
        },
    }
    # The oldest version kept depends on how many writes setting up the cluster made.
    assert re.fullmatch(r"too old resource version: 2 \(\d+\)", message)


def test_an_idle_watch_gets_bookmarks_when_it_allows_them(server: Running) -> None:
    api = custom(server.url)
    created = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
    found = events(
        api, 1, resource_version=created["metadata"]["resourceVersion"], allow_watch_bookmarks=True
    )
    assert found == [("BOOKMARK", "", created["metadata"]["resourceVersion"])]


def test_a_watch_ends_after_timeout_seconds(server: Running) -> None:
    api = custom(server.url)
    assert list(stream(api, timeout_seconds=1, resource_version="1")) == []


def test_a_label_selector_turns_leaving_objects_into_deleted(server: Running) -> None:
    api = custom(server.url)
    created = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
    api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "a", {"metadata": {"labels": {"app": "other"}}}
    )
    found = events(
        api, 1, resource_version=created["metadata"]["resourceVersion"], label_selector="app=digits"
    )
    assert [(t, n) for t, n, _ in found] == [("DELETED", "a")]


def test_a_watch_resumes_across_a_server_restart(tmp_path: Path) -> None:
    with running(tmp_path, TOKEN) as srv:
        api = custom(srv.url)
        seen = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
        api.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "a", {"spec": {"predictor": {"minReplicas": 3}}}
        )
    with running(tmp_path, TOKEN) as srv:
        found = events(custom(srv.url), 1, resource_version=seen["metadata"]["resourceVersion"])
    assert [(t, n) for t, n, _ in found] == [("MODIFIED", "a")]


def watch_lines(server: Running, query: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of a raw watch request on the default namespace."""
    url = f"{server.url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}?watch=true&{query}"
    found: list[dict[str, Any]] = []
    with (
        httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as session,
        session.stream("GET", url) as response,
    ):
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            found.append(json.loads(line))
            if len(found) == count:
                break
    return found


def test_send_initial_events_ends_them_with_an_annotated_bookmark(server: Running) -> None:
    api = custom(server.url)
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("a"))
    created = api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("b"))
    query = (
        "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
        "&timeoutSeconds=5"
    )
    added_a, added_b, bookmark = watch_lines(server, query, 3)
    assert [added_a["type"], added_a["object"]["metadata"]["name"]] == ["ADDED", "a"]
    assert [added_b["type"], added_b["object"]["metadata"]["name"]] == ["ADDED", "b"]
    assert bookmark == {
        "type": "BOOKMARK",
        "object": {
            "kind": "InferenceService",
            "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {
                "resourceVersion": created["metadata"]["resourceVersion"],
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        },
    }


def test_send_initial_events_false_starts_from_now(server: Running) -> None:
    api = custom(server.url)
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("before"))
    url = (
        f"{server.url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}?watch=true"
        "&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&timeoutSeconds=5"
    )
    with (
        httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as session,
        session.stream("GET", url) as response,
    ):
        # The headers are out: the watch has its starting point.
        api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("after"))
        first = json.loads(next(response.iter_lines()))
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "after")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "sendInitialEvents=true",
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
            "resourceVersionMatch to NotOlderThan",
        ),
        (
            "resourceVersionMatch=NotOlderThan&resourceVersion=1",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
            "sendInitialEvents is provided",
        ),
        (
            "sendInitialEvents=true&resourceVersionMatch=Exact&resourceVersion=1",
            'Unsupported value: "Exact": supported values: "NotOlderThan"',
        ),
    ],
)
def test_watch_parameters_are_checked_as_kube_apiserver_does(
    server: Running, query: str, message: str
) -> None:
    url = f"{server.url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}?watch=true&{query}"
    response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')
    assert message in body["message"]
