"""Server-side apply (application/apply-patch+yaml): create, field ownership, conflicts, force."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from timonel.local.apiserver import running

from .kubeapi import GROUP, PLURAL, TOKEN, VERSION, isvc

PATH = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"


@pytest.fixture
def session(tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        running(tmp_path, TOKEN) as srv,
        httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):
        yield http


def apply(
    http: httpx.Client, body: dict[str, Any], manager: str | None = "deployer", **params: str
) -> httpx.Response:
    if manager:
        params["fieldManager"] = manager
    return http.patch(
        f"{PATH}/{body['metadata']['name']}",
        params=params,
        content=yaml.safe_dump(body),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )


def test_apply_creates_then_updates_and_removes_fields_it_stopped_sending(
    session: httpx.Client,
) -> None:
    created = apply(session, isvc("m", canaryTrafficPercent=10))
    assert created.status_code == 201
    assert created.json()["metadata"]["managedFields"][0]["operation"] == "Apply"
    again = apply(session, isvc("m"))
    assert again.status_code == 200
    assert "canaryTrafficPercent" not in again.json()["spec"]["predictor"]
    assert again.json()["metadata"]["generation"] == 2
    same = apply(session, isvc("m"))
    assert same.json()["metadata"]["resourceVersion"] == again.json()["metadata"]["resourceVersion"]


def test_apply_keeps_fields_another_manager_set(session: httpx.Client) -> None:
    apply(session, isvc("m"))
    session.patch(
        f"{PATH}/m",
        params={"fieldManager": "kubectl-edit"},
        json={"spec": {"predictor": {"timeout": 60}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    result = apply(session, isvc("m")).json()
    assert result["spec"]["predictor"]["timeout"] == 60


def test_apply_over_another_managers_value_is_a_409_unless_forced(session: httpx.Client) -> None:
    apply(session, isvc("m"))
    session.patch(
        f"{PATH}/m",
        params={"fieldManager": "kubectl-edit"},
        json={"spec": {"predictor": {"minReplicas": 3}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    refused = apply(session, isvc("m", minReplicas=2))
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using '
        "serving.kserve.io/v1beta1: .spec.predictor.minReplicas"
    )
    forced = apply(session, isvc("m", minReplicas=2), force="true")
    assert forced.status_code == 200
    assert forced.json()["spec"]["predictor"]["minReplicas"] == 2
    owners = {e["manager"] for e in forced.json()["metadata"]["managedFields"]}
    assert owners == {"deployer"}


def test_apply_needs_a_field_manager(session: httpx.Client) -> None:
    refused = apply(session, isvc("m"), manager=None)
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
        "apply patch"
    )


def test_apply_with_dry_run_stores_nothing(session: httpx.Client) -> None:
    preview = apply(session, isvc("m"), dryRun="All")
    assert preview.status_code == 201
    assert session.get(f"{PATH}/m").status_code == 404
