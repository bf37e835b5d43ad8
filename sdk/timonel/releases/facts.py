"""What serving needs to know about a release, read from its manifest: its size and the
TensorFlow that exported it.

``read_facts`` is the one read (``<release>/timonel.json`` through the storage back ends);
``apply_facts`` lays them over a ServingSpec without I/O, so deciding what a fact changes is
testable apart from fetching it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from timonel.errors import ReleaseError, SpecError
from timonel.releases.layout import MANIFEST_NAME, join
from timonel.spec import ServingSpec


@dataclass(frozen=True)
class ReleaseFacts:
    """A release's size in bytes (for ``--gpu auto``) and the TensorFlow that exported it."""

    size_bytes: int
    tensorflow_version: str | None = None

    def __post_init__(self) -> None:
        if self.size_bytes < 0:
            raise SpecError(
                f"size_bytes: {self.size_bytes} is negative; give the release's size in bytes",
                field="size_bytes",
            )

    @classmethod
    def from_json(cls, text: str | bytes, *, uri: str) -> ReleaseFacts:
        """The facts in a manifest's JSON text; a ReleaseError naming ``uri`` if any is missing."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReleaseError(f"{uri}: the release manifest is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("size_bytes"), int):
            raise ReleaseError(
                f"{uri}: the release manifest has no size_bytes; republish the release or give "
                "--model-size"
            )
        version = data.get("tensorflow_version")
        return cls(data["size_bytes"], version if isinstance(version, str) else None)


def read_facts(release_uri: str) -> ReleaseFacts:
    """Read ``<release>/timonel.json`` from a local folder, gs:// or s3://."""
    from timonel.releases.storage import normalize_uri, open_storage

    uri = join(normalize_uri(release_uri), MANIFEST_NAME)
    text = open_storage(uri).read_bytes(uri)
    if text is None:
        raise ReleaseError(
            f"{uri}: no release manifest; give a published release URI "
            "(<repo>/<model>/v<N>), or publish this one with `timonel package` (for --gpu "
            "auto, --model-size also does without it)"
        )
    return ReleaseFacts.from_json(text, uri=uri)


def apply_facts(spec: ServingSpec, facts: ReleaseFacts) -> ServingSpec:
    """The spec with the release's TensorFlow version, unless it names one itself.

    Defaults are resolved again from the spec as written, so a runtime version left out becomes
    one that can load the model, and one given is refused (SpecError) when it is older.
    """
    if spec.model.tensorflow_version is not None or facts.tensorflow_version is None:
        return spec
    data = spec.model_dump(exclude_unset=True)
    data["model"]["tensorflow_version"] = facts.tensorflow_version
    return ServingSpec(**data)
