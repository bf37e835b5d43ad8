"""timonel.json: written and read back exactly; refused when malformed, newer, or edited."""

from __future__ import annotations

import json

import pytest

from timonel.errors import ReleaseError
from timonel.releases.manifest import FileEntry, Manifest, content_digest, parse_manifest
from timonel.signatures import SignatureDef, TensorInfo

MANIFEST = Manifest(
    name="digits",
    version=3,
    signature_name="serving_default",
    signatures={
        "serving_default": SignatureDef(
            inputs={"x": TensorInfo("DT_FLOAT", (-1, 64), "serving_default_x:0")},
            outputs={"y": TensorInfo("DT_FLOAT", None, "out:0")},
            method_name="tensorflow/serving/predict",
        )
    },
    tensorflow_version="2.21.0",
    files=(FileEntry("3/variables/v", 10, "b" * 64), FileEntry("3/saved_model.pb", 5, "a" * 64)),
    created="2026-01-01T00:00:00Z",
    source="/export/digits",
    timonel_version="0.1.0",
    warmup_records=4,
)


def test_round_trip_and_derived_fields() -> None:
    assert parse_manifest(MANIFEST.to_json(), source="m") == MANIFEST
    assert MANIFEST.size_bytes == 15
    assert [f.path for f in MANIFEST.files] == ["3/saved_model.pb", "3/variables/v"]
    data = json.loads(MANIFEST.to_json())
    assert (data["size_bytes"], data["tensorflow_version"]) == (15, "2.21.0")


def test_the_content_digest_ignores_order_time_and_source() -> None:
    files = list(MANIFEST.files)
    assert content_digest(files) == content_digest(files[::-1]) == MANIFEST.content_sha256
    assert content_digest([FileEntry("3/saved_model.pb", 5, "c" * 64)]) != MANIFEST.content_sha256


def edited(**changes: object) -> str:
    data = json.loads(MANIFEST.to_json())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "the manifest m is not a valid Timonel manifest"),
        (edited(format=2), "has format 2, this Timonel reads format 1; upgrade Timonel"),
        (edited(files=[{"path": "x"}]), "is not a valid Timonel manifest (KeyError"),
        (edited(signature_name="other"), "names signature 'other' but records only"),
        (edited(size_bytes=16), "it was changed after publishing"),
        (edited(content_sha256="0" * 64), "it was changed after publishing"),
    ],
)
def test_refuses_what_cannot_be_trusted(text: str, message: str) -> None:
    with pytest.raises(ReleaseError) as info:
        parse_manifest(text, source="m")
    assert message in str(info.value)
