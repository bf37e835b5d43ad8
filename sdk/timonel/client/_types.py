"""What the client answers with: model metadata and version status, the same for REST and gRPC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from timonel.signatures import DEFAULT_SIGNATURE, SignatureDef


@dataclass(frozen=True)
class Servable:
    """Which servable a request addresses: a model name and at most one of version or label.

    An empty ``signature`` means the server's default (``serving_default``).
    """

    model: str
    version: int | None = None
    label: str | None = None
    signature: str = ""

    def __post_init__(self) -> None:
        from timonel.errors import SpecError

        if not self.model or "/" in self.model or ":" in self.model:
            raise SpecError(
                f"model name {self.model!r} cannot be put in a TF Serving URL; "
                "give the name the server serves, without '/' or ':'",
                field="model",
            )
        if self.version is not None and self.label is not None:
            raise SpecError(
                f"both version {self.version} and label {self.label!r} were given for model "
                f"{self.model!r}; TF Serving selects by one of them: drop the other",
                field="version",
            )

    @property
    def signature_key(self) -> str:
        return self.signature or DEFAULT_SIGNATURE


@dataclass(frozen=True)
class ModelMetadata:
    """A model version's signatures, as ``GetModelMetadata`` and ``GET .../metadata`` report."""

    name: str
    version: int
    signatures: Mapping[str, SignatureDef] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersionStatus:
    """One version's state (``AVAILABLE``, ``LOADING``, ``END``...) and its load error, if any."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


#: (label, score) pairs per example, best first as the model returned them
Classifications = list[list[tuple[str, float]]]
