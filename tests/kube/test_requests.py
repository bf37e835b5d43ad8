"""Requests are values: verb, method, path, query, body and content type, built without a server."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.kube import requests as rq
from timonel.kube.resources import INFERENCE_SERVICE

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices"
MANIFEST: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "digits", "namespace": "ml"},
    "spec": {"predictor": {"model": {"storageUri": "gs://b/digits/v1"}}},
}


@pytest.mark.parametrize(
    ("request_", "verb", "method", "path", "query", "content_type"),
    [
        (
            rq.get_object(INFERENCE_SERVICE, "ml", "digits"),
            "get",
            "GET",
            f"{ISVCS}/digits",
            (),
            rq.JSON,
        ),
        (rq.list_objects(INFERENCE_SERVICE, "ml"), "list", "GET", ISVCS, (), rq.JSON),
        (
            rq.list_objects(INFERENCE_SERVICE, None, all_namespaces=True),
            "list",
            "GET",
            "/apis/serving.kserve.io/v1beta1/inferenceservices",
            (),
            rq.JSON,
        ),
        (
            rq.watch_objects(INFERENCE_SERVICE, None, resource_version="7", all_namespaces=True),
            "watch",
            "GET",
            "/apis/serving.kserve.io/v1beta1/inferenceservices",
            (("watch", "true"), ("allowWatchBookmarks", "true"), ("resourceVersion", "7")),
            rq.JSON,
        ),
        (
            rq.replace_status({**MANIFEST, "status": {"observedGeneration": 1}}),
            "update",
            "PUT",
            f"{ISVCS}/digits/status",
            (),
            rq.JSON,
        ),
        (
            rq.list_objects(INFERENCE_SERVICE, "ml", name="digits", label_selector="team=a"),
            "list",
            "GET",
            ISVCS,
            (("fieldSelector", "metadata.name=digits"), ("labelSelector", "team=a")),
            rq.JSON,
        ),
        (
            rq.watch_objects(
                INFERENCE_SERVICE, "ml", name="digits", resource_version="42", timeout_seconds=7.2
            ),
            "watch",
            "GET",
            ISVCS,
            (
                ("watch", "true"),
                ("allowWatchBookmarks", "true"),
                ("fieldSelector", "metadata.name=digits"),
                ("resourceVersion", "42"),
                ("timeoutSeconds", "7"),
            ),
            rq.JSON,
        ),
        (
            rq.create_object(MANIFEST, dry_run=True),
            "create",
            "POST",
            ISVCS,
            (("fieldManager", "timonel"), ("dryRun", "All")),
            rq.JSON,
        ),
        (
            rq.apply_object(MANIFEST),
            "patch",
            "PATCH",
            f"{ISVCS}/digits",
            (("fieldManager", "timonel"), ("force", "true")),
            rq.APPLY_PATCH,
        ),
        (
            rq.apply_object(MANIFEST, dry_run=True, force=False),
            "patch",
            "PATCH",
            f"{ISVCS}/digits",
            (("fieldManager", "timonel"), ("dryRun", "All")),
            rq.APPLY_PATCH,
        ),
        (
            rq.merge_patch(INFERENCE_SERVICE, "ml", "digits", {"spec": {}}),
            "patch",
            "PATCH",
            f"{ISVCS}/digits",
            (("fieldManager", "timonel"),),
            rq.MERGE_PATCH,
        ),
        (
            rq.json_patch(INFERENCE_SERVICE, "ml", "digits", []),
            "patch",
            "PATCH",
            f"{ISVCS}/digits",
            (("fieldManager", "timonel"),),
            rq.JSON_PATCH,
        ),
        (
            rq.replace_object(MANIFEST),
            "update",
            "PUT",
            f"{ISVCS}/digits",
            (("fieldManager", "timonel"),),
            rq.JSON,
        ),
        (
            rq.delete_object(INFERENCE_SERVICE, "ml", "digits", dry_run=True),
            "delete",
            "DELETE",
            f"{ISVCS}/digits",
            (("dryRun", "All"),),
            rq.JSON,
        ),
    ],
)
def test_request_shapes(request_, verb, method, path, query, content_type) -> None:
    assert (
        request_.verb,
        request_.method,
        request_.path,
        request_.query,
        request_.content_type,
    ) == (
        verb,
        method,
        path,
        query,
        content_type,
    )


def test_bodies_are_passed_through_unchanged() -> None:
    ops = [{"op": "remove", "path": "/spec/predictor/canaryTrafficPercent"}]
    assert rq.apply_object(MANIFEST).body is MANIFEST
    assert rq.json_patch(INFERENCE_SERVICE, "ml", "digits", ops).body is ops
    patch = {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    assert rq.merge_patch(INFERENCE_SERVICE, "ml", "digits", patch).body is patch


def test_delete_runs_in_the_background() -> None:
    body = rq.delete_object(INFERENCE_SERVICE, "ml", "digits", dry_run=True).body
    assert body == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Background",
        "dryRun": ["All"],
    }


def test_a_watch_never_asks_for_less_than_a_second() -> None:
    request = rq.watch_objects(INFERENCE_SERVICE, "ml", timeout_seconds=0.2)
    assert ("timeoutSeconds", "1") in request.query


def test_target_names_the_object_for_messages() -> None:
    assert rq.get_object(INFERENCE_SERVICE, "ml", "digits").target == "inferenceservice ml/digits"
    assert rq.list_objects(INFERENCE_SERVICE, "ml").target == "inferenceservice ml/*"


def test_a_status_write_names_the_status_subresource_for_rbac() -> None:
    assert rq.replace_status(MANIFEST).resource == "inferenceservices/status"
    assert rq.get_object(INFERENCE_SERVICE, "ml", "digits").resource == "inferenceservices"


@pytest.mark.parametrize(
    ("options", "query"),
    [
        ({}, (("container", "kserve-container"),)),
        (
            {"follow": True, "tail_lines": 20},
            (("container", "kserve-container"), ("follow", "true"), ("tailLines", "20")),
        ),
        ({"previous": True}, (("container", "kserve-container"), ("previous", "true"))),
    ],
)
def test_a_log_read_asks_for_one_container_as_kubectl_logs_does(
    options: dict[str, Any], query: tuple[tuple[str, str], ...]
) -> None:
    request = rq.read_log("ml", "digits-pod", container="kserve-container", **options)
    assert (request.verb, request.method) == ("get", "GET")
    assert request.path == "/api/v1/namespaces/ml/pods/digits-pod/log"
    assert request.query == query
    assert request.resource == "pods/log"
    assert request.target == "pod ml/digits-pod"
