"""The Kubernetes-facing steps, run as their functions the way KFP's executor calls them.

Render's canary percent is the one way a canary starts; deploy applies what render wrote. Given
a GKE project, location and cluster, deploy, promote and rollback reach the cluster by name: here
a stand-in GKE API on 127.0.0.1 hands out ``timonel local``'s API server and CA, and the task's
Google credentials are tokens the API server accepts. Revisions run the stand-in model server.
"""

# no `from __future__ import annotations`: KFP reads the component's annotations as types

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import localcluster
import pytest
import yaml
from kfp import dsl
from kube.test_gke_connect import LOCATION, PROJECT, IssuedTokens, StandInGke, gke_record
from local.standin_server import write_release

from timonel import gcp
from timonel.errors import SpecError
from timonel.kfp import components
from timonel.kfp.connection import connect
from timonel.kserve.vocabulary import TAG_ROUTING
from timonel.kube import gke_connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    write_release(root, "steps", 1)
    write_release(root, "steps", 2)
    return root


@pytest.fixture
def through_gke(local_api: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The GKE inputs of a step, naming a cluster the stand-in GKE API knows."""
    stand_in = StandInGke()
    stand_in.add("serving", gke_record(local_api))
    tokens = IssuedTokens(localcluster.TOKEN, datetime.timedelta(hours=1))
    monkeypatch.setattr(gke_connect, "GKE_API", stand_in.url)
    monkeypatch.setattr(gcp, "default_credentials", lambda: tokens)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    yield {"gke_project": PROJECT, "gke_location": LOCATION, "gke_cluster": "serving"}
    stand_in.close()


def artifact(path: Path) -> Any:
    """An output artifact with a local path, as the executor hands one to a step."""
    out = dsl.Artifact(uri=str(path))
    out.path = str(path)  # type: ignore[misc]  # a local path, as KFP's executor sets it
    return out


def render(release: str, tmp_path: Path, **inputs: Any) -> Any:
    manifest = artifact(tmp_path / f"manifest-{len(list(tmp_path.iterdir()))}.yaml")
    components.render_inference_service.python_func(
        release=dsl.Model(uri=release), manifest=manifest, task_config=dsl.TaskConfig(), **inputs
    )
    return manifest


def test_render_writes_the_canary_and_per_revision_urls(repo: Path, tmp_path: Path) -> None:
    rendered = render(f"{repo}/steps/v2", tmp_path, canary_percent=30)
    canary = yaml.safe_load(Path(rendered.path).read_text())
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 30
    assert canary["metadata"]["annotations"][TAG_ROUTING] == "true"

    replace = yaml.safe_load(Path(render(f"{repo}/steps/v2", tmp_path).path).read_text())
    assert "canaryTrafficPercent" not in replace["spec"]["predictor"]
    assert TAG_ROUTING not in replace["metadata"].get("annotations", {})


@pytest.mark.usefixtures("local_controller")
def test_deploy_canary_promote_and_rollback_reach_gke_by_name(
    repo: Path, tmp_path: Path, through_gke: dict[str, str]
) -> None:
    first = components.deploy_inference_service.python_func(
        manifest=render(f"{repo}/steps/v1", tmp_path), timeout_seconds=60.0, **through_gke
    )
    assert first.revision == "steps-predictor-00001"
    assert first.endpoint == "http://steps.default.example.com"

    canary = components.deploy_inference_service.python_func(
        manifest=render(f"{repo}/steps/v2", tmp_path, canary_percent=30),
        timeout_seconds=60.0,
        **through_gke,
    )
    assert canary.revision == "steps-predictor-00002"
    assert canary.rest_url == "http://latest-steps-predictor.default.example.com", "its own URL"

    with connect(namespace="default", **through_gke) as cluster:
        import timonel

        split = {t.revision: t.percent for t in timonel.status("steps", cluster=cluster).traffic}
    assert split == {"steps-predictor-00002": 30, "steps-predictor-00001": 70}

    promoted = components.promote.python_func(name="steps", timeout_seconds=60.0, **through_gke)
    assert promoted == "steps-predictor-00002"
    restored = components.rollback.python_func(name="steps", timeout_seconds=60.0, **through_gke)
    assert restored == f"{repo}/steps/v1"


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        ({"gke_project": "p", "gke_cluster": "c"}, "gke_location not given"),
        ({"gke_cluster": "c"}, "gke_project, gke_location not given"),
        (
            {"gke_project": "p", "gke_location": "l", "gke_cluster": "c", "context": "kind"},
            "context 'kind' and gke_cluster 'c' both name a cluster",
        ),
    ],
)
def test_a_gke_cluster_is_named_by_all_three_or_none(inputs: dict[str, str], said: str) -> None:
    with pytest.raises(SpecError) as caught:
        connect(**inputs)
    assert said in str(caught.value)
