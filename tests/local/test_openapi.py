"""The OpenAPI v3 documents: one per served group-version, found from the root by their hash."""

from __future__ import annotations

import json

from timonel.kserve import schemas
from timonel.local.apiserver import openapi

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices"


def test_the_root_points_at_each_group_versions_document() -> None:
    paths = openapi.root()["paths"]
    assert sorted(paths) == [
        "api/v1",
        "apis/apps/v1",
        "apis/authorization.k8s.io/v1",
        "apis/serving.knative.dev/v1",
        "apis/serving.kserve.io/v1alpha1",
        "apis/serving.kserve.io/v1beta1",
    ]
    for served, entry in paths.items():
        url, _, digest = entry["serverRelativeURL"].partition("?hash=")
        assert url == f"/openapi/v3/{served}" and len(digest) == 128
        assert openapi.group_version(url) is not None
    assert openapi.group_version("/openapi/v3/apis/batch/v1") is None


def test_the_isvc_document_has_kserve_operations_and_the_projects_schema() -> None:
    body = openapi.group_version("/openapi/v3/apis/serving.kserve.io/v1beta1")
    assert body is not None
    document = json.loads(body)
    assert sorted(document["paths"]) == [ISVCS, f"{ISVCS}/{{name}}", f"{ISVCS}/{{name}}/status"]
    patch = document["paths"][f"{ISVCS}/{{name}}"]["patch"]
    gvk = {"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"}
    assert patch["x-kubernetes-group-version-kind"] == gvk
    assert {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}} in patch[
        "parameters"
    ]
    schema = document["components"]["schemas"]["io.kserve.serving.v1beta1.InferenceService"]
    assert schema["x-kubernetes-group-version-kind"] == [gvk]
    assert schema["properties"] == schemas.load("inferenceservice")["properties"]
