"""Custom resource schemas: KServe's CRD made strict, the project's schema, field paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from timonel.kserve import render as isvc
from timonel.kserve import schemas
from timonel.kserve.crd import Schema, field_path, strict
from timonel.spec import Model, ServingSpec


@pytest.fixture(scope="module")
def crd(shared_dir: Path) -> Schema:
    return Schema.load_crd(shared_dir / "kserve" / "serving.kserve.io_inferenceservices.yaml")


def manifest() -> dict[str, Any]:
    return isvc.render(ServingSpec(model=Model(name="digits", storage_uri="gs://b/digits/v1")))


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        ((), ""),
        (("spec",), "spec"),
        (("spec", "predictor", "minReplicas"), "spec.predictor.minReplicas"),
        (("spec", "canary", 0, "predictor"), "spec.canary[0].predictor"),
        (("spec", "predictor", "volumes", 0, "ephemeral"), "spec.predictor.volumes[0].ephemeral"),
        ((0, "name"), "[0].name"),
    ],
)
def test_field_path_is_written_as_kubernetes_writes_it(parts: tuple[Any, ...], path: str) -> None:
    assert field_path(parts) == path


def test_a_strict_crd_refuses_unknown_fields_and_wrong_types(crd: Schema) -> None:
    body = manifest()
    body["spec"]["predictor"]["model"]["gpus"] = 1
    body["spec"]["predictor"]["minReplicas"] = "one"
    body["spec"]["predictor"]["scaleMetric"] = "latency"
    assert crd.errors(body) == [
        "spec.predictor.minReplicas: 'one' is not of type 'integer'",
        "spec.predictor.model: Additional properties are not allowed ('gpus' was unexpected)",
        "spec.predictor.scaleMetric: 'latency' is not one of ['cpu', 'memory', 'concurrency', "
        "'rps']",
    ]
    assert [(field_path(v.absolute_path), v.validator) for v in crd.violations(body)] == [
        ("spec.predictor.minReplicas", "type"),
        ("spec.predictor.model", "additionalProperties"),
        ("spec.predictor.scaleMetric", "enum"),
    ]


def test_a_strict_crd_treats_a_schemaless_object_as_empty(crd: Schema) -> None:
    body = manifest()
    body["spec"]["predictor"]["volumes"] = [
        {"name": "v", "ephemeral": {"volumeClaimTemplate": {"metadata": {"x": 1}, "spec": {}}}}
    ]
    assert crd.errors(body) == [
        "spec.predictor.volumes[0].ephemeral.volumeClaimTemplate.metadata: Additional properties "
        "are not allowed ('x' was unexpected)"
    ]


def test_a_strict_crd_checks_root_metadata_as_object_meta(crd: Schema) -> None:
    body = manifest()
    body["metadata"]["uid"] = "abc"
    assert crd.errors(body) == []
    body["metadata"]["labels"] = {"n": 1}
    assert crd.errors(body) == ["metadata.labels.n: 1 is not of type 'string'"]


def test_strict_keeps_fields_that_preserve_unknown_ones_open() -> None:
    schema = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "status": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    made = strict(schema)
    assert made["additionalProperties"] is False
    assert made["properties"]["metadata"]["properties"]["name"] == {"type": "string"}
    assert "additionalProperties" not in made["properties"]["spec"]
    assert made["properties"]["status"]["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["metadata"] == {"type": "object"}, "the input is left as it was"


def test_the_project_schema_is_used_as_written() -> None:
    ours = Schema(schemas.load("inferenceservice"))
    body = manifest()
    body["spec"]["predictor"]["somethingNew"] = True  # kept, as the local API server keeps it
    assert ours.errors(body) == []
    body["spec"]["predictor"]["scaleMetric"] = "latency"
    assert ours.errors(body) == [
        "spec.predictor.scaleMetric: 'latency' is not one of ['cpu', 'memory', 'concurrency', "
        "'rps']"
    ]


def test_a_crd_file_is_loaded_once(shared_dir: Path) -> None:
    path = shared_dir / "kserve" / "serving.kserve.io_inferenceservices.yaml"
    assert Schema.load_crd(path) is Schema.load_crd(path)
