"""The project's InferenceService schema agrees with KServe's CRD on every field it covers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from timonel.kserve import schemas
from timonel.kserve.crd import Schema
from timonel.local.apiserver.validation import check_schema

#: The keywords compared node by node: everything that decides what a value may be.
KEYWORDS = (
    "type",
    "format",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
)


def nodes(schema: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every schema node's path: property names, ``[]`` for items, ``{}`` for map values."""
    found = [path]
    for name, child in schema.get("properties", {}).items():
        found += nodes(child, (*path, name))
    if isinstance(schema.get("items"), dict):
        found += nodes(schema["items"], (*path, "[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        found += nodes(schema["additionalProperties"], (*path, "{}"))
    return found


def at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = schema
    for step in path:
        key = {"[]": "items", "{}": "additionalProperties"}.get(step)
        node = node[key] if key else node["properties"][step]
    return node


OURS = schemas.load("inferenceservice")


@pytest.fixture(scope="session")
def crd_file(shared_dir: Path) -> Path:
    return shared_dir / "kserve" / "serving.kserve.io_inferenceservices.yaml"


@pytest.fixture(scope="session")
def crd(crd_file: Path) -> dict[str, Any]:
    with crd_file.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=yaml.CSafeLoader)
    (version,) = [v for v in document["spec"]["versions"] if v["name"] == "v1beta1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("path", nodes(OURS), ids=lambda p: ".".join(p) or "<root>")
def test_every_field_agrees_with_the_crd(crd: dict[str, Any], path: tuple[str, ...]) -> None:
    ours, theirs = at(OURS, path), at(crd, path)
    for keyword in KEYWORDS:
        assert ours.get(keyword) == theirs.get(keyword), keyword
    assert sorted(ours.get("required", [])) == sorted(theirs.get("required", []))


def test_the_schema_covers_what_timonel_renders() -> None:
    covered = {".".join(p) for p in nodes(OURS)}
    assert {
        "spec.predictor.model.storageUri",
        "spec.predictor.model.modelFormat.name",
        "spec.predictor.model.resources.limits.{}",
        "spec.predictor.minReplicas",
        "spec.predictor.scaleMetric",
        "spec.predictor.canaryTrafficPercent",
        "spec.canary.[].trafficPercent",
        "status",
    } <= covered


MANIFESTS = {
    "minimal": {"spec": {"predictor": {"model": {"modelFormat": {"name": "tensorflow"}}}}},
    "gpu": {
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "tensorflow"},
                    "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "4Gi"}},
                }
            }
        }
    },
    "no predictor": {"spec": {}},
    "format without name": {"spec": {"predictor": {"model": {"modelFormat": {}}}}},
    "bad quantity": {"spec": {"predictor": {"model": {"resources": {"limits": {"cpu": "lots"}}}}}},
    "bad metric": {"spec": {"predictor": {"scaleMetric": "gpu"}}},
    "replicas as text": {"spec": {"predictor": {"minReplicas": "1"}}},
    "percent over 100": {
        "spec": {"predictor": {}, "canary": [{"predictor": {}, "trafficPercent": 101}]}
    },
    "canary without percent": {"spec": {"predictor": {}, "canary": [{"predictor": {}}]}},
    "bad predictor name": {"spec": {"predictor": {"name": "Stable"}}},
    "env without name": {"spec": {"predictor": {"model": {"env": [{"value": "x"}]}}}},
}


@pytest.mark.parametrize("manifest", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_the_schema_accepts_and_refuses_what_the_crd_does(
    crd_file: Path, manifest: dict[str, Any]
) -> None:
    body = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m"},
        **manifest,
    }
    crd_fields = [e.split(": ", 1)[0] for e in Schema.load_crd(crd_file).errors(body)]
    our_fields = [e.field for e in check_schema(body)]
    # A missing field is reported on itself here (as kube-apiserver does), on its parent there.
    assert len(our_fields) == len(crd_fields)
    assert all(ours.startswith(theirs) for ours, theirs in zip(our_fields, crd_fields, strict=True))
