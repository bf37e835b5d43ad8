"""A serving signature as plain data: what goes in and out of a model, by name, dtype and shape.

The release manifest, the packager, the client and the server all describe signatures; this
module holds the one description they share, with no numpy, TensorFlow or HTTP client behind it,
so reading a release's manifest stays as light as reading JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: TF Serving's default signature, used when a request names none.
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature: TF dtype name (``DT_FLOAT``) and shape.

    ``shape`` uses -1 for unknown dimensions and is None when the rank is unknown.
    """

    dtype: str
    shape: tuple[int, ...] | None
    name: str = ""


@dataclass(frozen=True)
class SignatureDef:
    """A serving signature: named inputs and outputs and the method (predict, classify...)."""

    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]
    method_name: str = ""
