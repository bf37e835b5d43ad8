"""Release facts: read from a release's manifest, and laid over a ServingSpec without I/O."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from timonel.errors import ReleaseError, SpecError
from timonel.releases.facts import ReleaseFacts, apply_facts, read_facts
from timonel.spec import Model, ServingSpec


def release(tmp_path: Path, **manifest: Any) -> str:
    folder = tmp_path / "digits" / "v3"
    folder.mkdir(parents=True)
    (folder / "timonel.json").write_text(json.dumps(manifest))
    return str(folder)


def test_release_facts_need_only_the_size(tmp_path: Path) -> None:
    uri = release(tmp_path, size_bytes=42, version=3, files={"a": "b"})
    assert read_facts(uri) == ReleaseFacts(size_bytes=42)
    assert read_facts(f"file://{uri}").size_bytes == 42


def test_release_facts_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="no release manifest; give a published release URI"):
        read_facts(str(tmp_path))
    uri = release(tmp_path, version=3)
    with pytest.raises(ReleaseError, match="the release manifest has no size_bytes"):
        read_facts(uri)


def test_applied_facts_set_the_tensorflow_version_and_the_runtime_that_loads_it() -> None:
    spec = ServingSpec(model=Model(name="d", storage_uri="gs://b/d/v1"))
    checked = apply_facts(spec, ReleaseFacts(10, "2.21.0"))
    assert checked.model.tensorflow_version == "2.21.0"
    assert checked.model.runtime_version == "2.21.0"


def test_applied_facts_leave_a_spec_that_names_its_tensorflow() -> None:
    named = Model(name="d", storage_uri="gs://b/d/v1", tensorflow_version="2.20.0")
    spec = ServingSpec(model=named)
    assert apply_facts(spec, ReleaseFacts(10, "2.21.0")) is spec
    unknown = ServingSpec(model=Model(name="d", storage_uri="gs://b/d/v1"))
    assert apply_facts(unknown, ReleaseFacts(10)) is unknown


def test_applied_facts_refuse_a_runtime_older_than_the_exporting_tensorflow() -> None:
    spec = ServingSpec(model=Model(name="d", storage_uri="gs://b/d/v1", runtime_version="2.20.0"))
    with pytest.raises(SpecError, match=r"TF Serving 2\.20\.0 is older than TensorFlow 2\.21\.0"):
        apply_facts(spec, ReleaseFacts(10, "2.21.0"))


def test_facts_refuse_a_negative_size() -> None:
    with pytest.raises(SpecError, match="size_bytes: -1 is negative"):
        ReleaseFacts(-1)
