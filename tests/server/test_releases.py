"""``timonel serve`` on Timonel releases: a release URI is pinned, a model URI follows new ones."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import serving
import tfmodels

from timonel import package

pytestmark = pytest.mark.slow


def predict(served: serving.Served, model: str) -> list[float]:
    reply = httpx.post(f"{served.rest}/v1/models/{model}:predict", json={"instances": [1.0]})
    reply.raise_for_status()
    return list(reply.json()["predictions"])


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with releases v1 (y = x/2 + 2) and v2 (y = x/2 + 3) of ``half``."""
    root = tmp_path_factory.mktemp("releases")
    for offset in (2.0, 3.0):
        model = tfmodels.write_half_plus_two(root / f"export-{offset}", offset=offset)
        package(model, name="half", repo=str(root / "repo"), warmup=False)
    return root / "repo"


def test_a_release_uri_serves_its_version_after_newer_ones_are_pushed(
    repo: Path, tmp_path: Path
) -> None:
    flags = ("--file_system_poll_wait_seconds", "1")
    with serving.timonel_serve("half", repo / "half" / "v1", tmp_path / "v1.log", *flags) as v1:
        assert predict(v1, "half") == [2.5]
        newer = tfmodels.write_half_plus_two(tmp_path / "export-4", offset=4.0)
        assert package(newer, name="half", repo=str(repo), warmup=False).version == 3
        for _ in range(3):  # three polls of the base path: still version 1
            time.sleep(1)
            assert predict(v1, "half") == [2.5]
        status = httpx.get(f"{v1.rest}/v1/models/half").json()
        assert [s["version"] for s in status["model_version_status"]] == ["1"]


def test_a_model_uri_serves_the_latest_published_release(repo: Path, tmp_path: Path) -> None:
    unpublished = repo / "half" / "v9" / "9"
    unpublished.mkdir(parents=True)  # a publish that never finished: no manifest
    with serving.timonel_serve("half", repo / "half", tmp_path / "model.log") as latest:
        assert predict(latest, "half") != [2.5]
        status = httpx.get(f"{latest.rest}/v1/models/half").json()
        assert status["model_version_status"][0]["version"] != "9"
