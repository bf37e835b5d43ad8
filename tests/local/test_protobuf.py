"""Kubernetes' protobuf request bodies read as the JSON objects they stand for."""

from __future__ import annotations

import pytest

from timonel.errors import ApiError
from timonel.local.apiserver import protobuf

#: The body ``kubectl create namespace team-a`` (1.37) sends, byte for byte.
KUBECTL_NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121e0a160a067465616d2d61"
    "12001a0022002a0032003800420012001a020a001a002200"
)


def test_kubectls_namespace_reads_as_its_json_form() -> None:
    assert protobuf.decode(KUBECTL_NAMESPACE, protobuf.NAMESPACE) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a"},
    }


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (payloads under 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def test_labels_annotations_and_lists_are_read() -> None:
    entry = _field(1, b"team") + _field(2, b"a")
    metadata = _field(1, b"ns") + _field(11, entry) + _field(12, entry) + _field(14, b"f")
    body = _envelope("v1", "Namespace", _field(1, metadata))
    assert protobuf.decode(body, protobuf.NAMESPACE)["metadata"] == {
        "name": "ns",
        "labels": {"team": "a"},
        "annotations": {"team": "a"},
        "finalizers": ["f"],
    }


def test_an_access_review_reads_its_resource_attributes() -> None:
    attributes = _field(2, b"create") + _field(3, b"serving.kserve.io")
    attributes += _field(5, b"inferenceservices")
    spec = _field(1, attributes)
    body = _envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", _field(2, spec))
    assert protobuf.decode(body, protobuf.SELF_SUBJECT_ACCESS_REVIEW)["spec"] == {
        "resourceAttributes": {
            "verb": "create",
            "group": "serving.kserve.io",
            "resource": "inferenceservices",
        }
    }


def test_delete_options_read_numbers_and_flags() -> None:
    raw = bytes([1 << 3, 30, 3 << 3, 1]) + _field(4, b"Background")
    assert protobuf.decode(_envelope("v1", "DeleteOptions", raw), protobuf.DELETE_OPTIONS) == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 30,
        "orphanDependents": True,
        "propagationPolicy": "Background",
    }


@pytest.mark.parametrize("body", [b'{"kind": "Namespace"}', b"k8s\x00\xff\xff"])
def test_a_body_that_is_not_kubernetes_protobuf_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        protobuf.decode(body, protobuf.NAMESPACE)
    assert caught.value.status.code == 400
