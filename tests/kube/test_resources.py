"""One registry of kinds: paths, apiVersions and RBAC names come from it."""

from __future__ import annotations

import pytest

from timonel.errors import SpecError
from timonel.kube.resources import (
    DEPLOYMENT,
    EVENT,
    INFERENCE_SERVICE,
    KINDS,
    LEASE,
    POD,
    SERVICE,
    SERVING_RUNTIME,
    kind_of,
)


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "path"),
    [
        (
            INFERENCE_SERVICE,
            "ml",
            None,
            "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices",
        ),
        (
            INFERENCE_SERVICE,
            "ml",
            "digits",
            "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices/digits",
        ),
        (
            SERVING_RUNTIME,
            "ml",
            "tf",
            "/apis/serving.kserve.io/v1alpha1/namespaces/ml/servingruntimes/tf",
        ),
        (DEPLOYMENT, "ml", "d", "/apis/apps/v1/namespaces/ml/deployments/d"),
        (SERVICE, "ml", "s", "/api/v1/namespaces/ml/services/s"),
        (POD, "ml", None, "/api/v1/namespaces/ml/pods"),
        (EVENT, "ml", None, "/api/v1/namespaces/ml/events"),
        (LEASE, "kube-system", "l", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l"),
    ],
)
def test_paths(kind, namespace, name, path) -> None:
    assert kind.path(namespace, name) == path


@pytest.mark.parametrize(
    ("kind", "api_version", "group_resource"),
    [
        (INFERENCE_SERVICE, "serving.kserve.io/v1beta1", "inferenceservices.serving.kserve.io"),
        (POD, "v1", "pods"),
        (LEASE, "coordination.k8s.io/v1", "leases.coordination.k8s.io"),
    ],
)
def test_api_version_and_group_resource(kind, api_version, group_resource) -> None:
    assert (kind.api_version, kind.group_resource) == (api_version, group_resource)


def test_every_kind_is_found_from_its_manifest() -> None:
    for kind in KINDS:
        assert kind_of({"apiVersion": kind.api_version, "kind": kind.kind}) is kind


def test_an_unmanaged_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SpecError) as caught:
        kind_of({"apiVersion": "v1", "kind": "Secret"})
    assert str(caught.value).startswith(
        "apiVersion 'v1' kind 'Secret' is not a kind Timonel manages; expected one of: "
        "serving.kserve.io/v1beta1 InferenceService, "
    )


def test_a_namespaced_path_needs_a_namespace() -> None:
    with pytest.raises(SpecError, match="InferenceService is namespaced but no namespace"):
        INFERENCE_SERVICE.path(None, "x")
