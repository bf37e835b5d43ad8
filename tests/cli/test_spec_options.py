"""The shared render/deploy flags become a ServingSpec; errors name the flags typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from timonel.cli.spec_options import parse_size, spec_from_options
from timonel.errors import ReleaseError, SpecError
from timonel.releases.facts import ReleaseFacts
from timonel.spec import Accelerator


@pytest.mark.parametrize(
    ("text", "size"),
    [("123", 123), ("800M", 800 * 10**6), ("1.5GB", 1_500_000_000), ("3Gi", 3 * 2**30)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_refuses_words() -> None:
    with pytest.raises(SpecError, match="'big' is not a size"):
        parse_size("big")


def release(tmp_path: Path, **manifest: Any) -> str:
    folder = tmp_path / "digits" / "v3"
    folder.mkdir(parents=True)
    (folder / "timonel.json").write_text(json.dumps(manifest))
    return str(folder)


def test_options_override_a_spec_file_before_defaults_are_resolved() -> None:
    base = {"model": {"name": "digits", "storage_uri": "gs://b/d/v1"}, "mode": "knative"}
    spec, notes = spec_from_options({"mode": "standard", "min_replicas": 2}, base=base)
    assert spec.mode == "standard" and spec.autoscaling.autoscaler_class == "hpa"
    assert spec.autoscaling.min_replicas == 2 and notes == []


def test_gpu_auto_reads_the_release_manifest_and_says_why(tmp_path: Path) -> None:
    uri = release(tmp_path, size_bytes=9 * 10**9, tensorflow_version="2.21.0")
    spec, notes = spec_from_options({"name": "digits", "storage_uri": uri, "gpu": "auto"})
    assert spec.accelerator == Accelerator("nvidia-l4")
    assert spec.model.tensorflow_version == "2.21.0"
    assert spec.model.runtime_version == "2.21.0"
    assert notes[0].startswith("chose nvidia-l4 (NVIDIA L4, 24 GB): the model is 9.0 GB")


def test_checking_a_release_reads_its_tensorflow_version(tmp_path: Path) -> None:
    uri = release(tmp_path, size_bytes=10**6, tensorflow_version="2.21.0")
    spec, notes = spec_from_options({"name": "d", "storage_uri": uri}, check_release=True)
    assert spec.model.tensorflow_version == "2.21.0"
    assert spec.model.runtime_version == "2.21.0"
    assert spec.accelerator is None and notes == []


def test_checking_a_release_refuses_an_older_runtime(tmp_path: Path) -> None:
    uri = release(tmp_path, size_bytes=10**6, tensorflow_version="2.21.0")
    with pytest.raises(SpecError, match=r"TF Serving 2\.20\.0 is older than TensorFlow 2\.21\.0"):
        spec_from_options(
            {"name": "d", "storage_uri": uri, "runtime_version": "2.20.0"}, check_release=True
        )


def test_checking_a_release_refuses_an_unpublished_one(tmp_path: Path) -> None:
    folder = tmp_path / "d" / "v1"
    folder.mkdir(parents=True)
    with pytest.raises(ReleaseError, match="no release manifest"):
        spec_from_options({"name": "d", "storage_uri": str(folder)}, check_release=True)


def test_checking_skips_what_is_not_a_release_or_already_known(tmp_path: Path) -> None:
    def unreachable(uri: str) -> ReleaseFacts:
        raise AssertionError(f"read {uri}")

    for options in (
        {"name": "d", "storage_uri": str(tmp_path)},
        {"name": "d", "storage_uri": "gs://b/d/v1", "tensorflow_version": "2.20.0"},
    ):
        spec_from_options(options, check_release=True, read_release=unreachable)
    spec_from_options({"name": "d", "storage_uri": "gs://b/d/v1"}, read_release=unreachable)


def test_gpu_auto_prefers_a_given_size() -> None:
    spec, _ = spec_from_options(
        {"name": "d", "storage_uri": "gs://b/d/v1", "gpu": "auto"}, model_size="1GB"
    )
    assert spec.accelerator is not None and spec.accelerator.type == "nvidia-tesla-t4"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"storage_uri": "gs://b/d"}, "NAME: the InferenceService needs a name"),
        ({"name": "d"}, "--storage-uri: the model needs a storage URI"),
        (
            {"name": "d", "storage_uri": "gs://b/d", "spot": True},
            "--spot: describes the GPU; add --gpu TYPE (or --gpu auto)",
        ),
        ({"name": "d", "gpu": "auto"}, "--gpu auto: needs the model's size"),
    ],
)
def test_options_that_cannot_make_a_spec(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        spec_from_options(options)
