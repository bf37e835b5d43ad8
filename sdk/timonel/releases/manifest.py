"""A release's manifest, ``timonel.json``: what was published, so a deployment can be traced back
to its source and every byte verified.

Pure: built from values, read from and written to JSON text; no I/O. The JSON keys are the
attribute names; other parts of Timonel read ``size_bytes`` and ``tensorflow_version``.

    {"format": 1, "name": "digits", "version": 3,
     "signature_name": "serving_default",
     "signatures": {"serving_default": {"method_name": "tensorflow/serving/predict",
                    "inputs": {"inputs": {"dtype": "DT_FLOAT", "shape": [-1, 64], "name": ...}},
                    "outputs": {"output_0": {"dtype": "DT_FLOAT", "shape": [-1, 10], ...}}}},
     "tensorflow_version": "2.21.0", "size_bytes": 123456,
     "files": [{"path": "3/saved_model.pb", "size": 4567, "sha256": "..."}, ...],
     "content_sha256": "...", "warmup_records": 4,
     "created": "2026-01-01T00:00:00Z", "source": "/work/export/digits", "timonel_version": "..."}

``content_sha256`` is the digest of the file list (path, size, SHA-256 of each file): two
publishes with the same content have the same digest whatever their time or source, which is what
makes a retried publish idempotent and a different one refusable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from timonel.errors import ReleaseError
from timonel.signatures import SignatureDef, TensorInfo

#: Bumped when a reader would misread a newer manifest.
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class FileEntry:
    """One file of a release, relative to the release folder (``3/variables/variables.index``)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    signature_name: str
    signatures: Mapping[str, SignatureDef]
    tensorflow_version: str
    files: tuple[FileEntry, ...]
    created: str
    source: str
    timonel_version: str
    warmup_records: int = 0
    format: int = MANIFEST_FORMAT
    size_bytes: int = field(init=False)
    content_sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(sorted(self.files, key=lambda f: f.path)))
        object.__setattr__(self, "size_bytes", sum(f.size for f in self.files))
        object.__setattr__(self, "content_sha256", content_digest(self.files))

    @property
    def signature(self) -> SignatureDef:
        """The signature the release serves by default."""
        return self.signatures[self.signature_name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "name": self.name,
            "version": self.version,
            "signature_name": self.signature_name,
            "signatures": {
                key: _signature_to_dict(sig) for key, sig in sorted(self.signatures.items())
            },
            "tensorflow_version": self.tensorflow_version,
            "size_bytes": self.size_bytes,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "content_sha256": self.content_sha256,
            "warmup_records": self.warmup_records,
            "created": self.created,
            "source": self.source,
            "timonel_version": self.timonel_version,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def content_digest(files: Sequence[FileEntry]) -> str:
    """SHA-256 over the sorted ``sha256 size path`` lines of a release's files."""
    lines = "".join(f"{f.sha256} {f.size} {f.path}\n" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def parse_manifest(text: str | bytes, *, source: str) -> Manifest:
    """Read a manifest, refusing one that is malformed or whose recorded digest or size does not
    match its own file list (a manifest edited after publishing)."""
    try:
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise ReleaseError(
                f"the manifest {source} has format {data.get('format')!r}, this Timonel reads "
                f"format {MANIFEST_FORMAT}; upgrade Timonel to read it"
            )
        manifest = Manifest(
            name=str(data["name"]),
            version=int(data["version"]),
            signature_name=str(data["signature_name"]),
            signatures={
                key: _signature_from_dict(value) for key, value in data["signatures"].items()
            },
            tensorflow_version=str(data["tensorflow_version"]),
            files=tuple(
                FileEntry(path=str(f["path"]), size=int(f["size"]), sha256=str(f["sha256"]))
                for f in data["files"]
            ),
            created=str(data["created"]),
            source=str(data["source"]),
            timonel_version=str(data["timonel_version"]),
            warmup_records=int(data.get("warmup_records", 0)),
        )
    except ReleaseError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReleaseError(
            f"the manifest {source} is not a valid Timonel manifest ({type(exc).__name__}: "
            f"{exc}); the release is corrupt: publish it again under a new version"
        ) from exc
    if manifest.signature_name not in manifest.signatures:
        raise ReleaseError(
            f"the manifest {source} names signature {manifest.signature_name!r} but records only "
            f"{sorted(manifest.signatures)}; the release is corrupt: publish it again"
        )
    recorded = (data.get("content_sha256"), data.get("size_bytes"))
    if recorded != (manifest.content_sha256, manifest.size_bytes):
        raise ReleaseError(
            f"the manifest {source} records content {recorded[0]} and {recorded[1]} bytes but its "
            f"file list gives {manifest.content_sha256} and {manifest.size_bytes}: it was changed "
            "after publishing; publish the model again under a new version"
        )
    return manifest


def _signature_to_dict(signature: SignatureDef) -> dict[str, Any]:
    def tensors(infos: Mapping[str, TensorInfo]) -> dict[str, Any]:
        return {
            key: {
                "dtype": info.dtype,
                "shape": None if info.shape is None else list(info.shape),
                "name": info.name,
            }
            for key, info in sorted(infos.items())
        }

    return {
        "method_name": signature.method_name,
        "inputs": tensors(signature.inputs),
        "outputs": tensors(signature.outputs),
    }


def _signature_from_dict(data: Mapping[str, Any]) -> SignatureDef:
    def tensors(infos: Mapping[str, Any]) -> dict[str, TensorInfo]:
        return {
            key: TensorInfo(
                dtype=str(info["dtype"]),
                shape=None if info["shape"] is None else tuple(int(d) for d in info["shape"]),
                name=str(info.get("name", "")),
            )
            for key, info in infos.items()
        }

    return SignatureDef(
        inputs=tensors(data["inputs"]),
        outputs=tensors(data["outputs"]),
        method_name=str(data.get("method_name", "")),
    )
