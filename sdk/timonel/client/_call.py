"""A request built without I/O, paired with the function that reads its reply.

The REST and gRPC protocols (``_rest``, ``_grpc``) turn each client method into a ``Call``; the
sync and async transports only send ``Call.request`` and hand the raw reply to ``Call.parse``.
So every request and every reply format is tested without a server, and the four clients
(REST or gRPC, sync or async) share all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from timonel.client._types import Classifications, ModelMetadata, ModelVersionStatus, Servable
from timonel.errors import SpecError
from timonel.signatures import SignatureDef

R = TypeVar("R")
T = TypeVar("T")
Arrays = dict[str, np.ndarray[Any, Any]]
#: a tf.train.Example written as JSON: feature name → value or list of values
JsonExample = Mapping[str, Any]


@dataclass(frozen=True)
class Call(Generic[R]):
    """What to send (an ``HttpRequest`` or a ``GrpcRequest``) and how to read the answer."""

    request: Any
    parse: Callable[[Any], R]


def encode_inputs(inputs: Mapping[str, Any], encode: Callable[[Any], T]) -> dict[str, T]:
    """Each named input through ``encode`` (``np.asarray``, a codec), for a predict call.

    numpy and the codecs refuse a value that is no tensor (an object, a set, a ragged list) with
    a TypeError or ValueError; that is the caller's input to fix, so it is reported as a
    ``SpecError`` naming the input, the same for REST and gRPC.
    """
    encoded: dict[str, T] = {}
    for name, value in inputs.items():
        try:
            encoded[name] = encode(value)
        except (TypeError, ValueError) as exc:
            raise SpecError(
                f"input {name!r}: {exc}; give a numpy array, a number, a string, or a "
                "rectangular (nested) list of numbers, strings or bytes",
                field=f"inputs.{name}",
            ) from exc
    return encoded


class Api(Protocol):
    """What REST and gRPC each provide: a pure builder per client method."""

    #: whether ``predict_json`` needs the signature (gRPC has to type JSON values itself)
    json_needs_signature: bool

    def status(self, servable: Servable) -> Call[list[ModelVersionStatus]]: ...

    def metadata(self, servable: Servable) -> Call[ModelMetadata]: ...

    def predict(
        self,
        servable: Servable,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        signature: SignatureDef,
    ) -> Call[Arrays]: ...

    def predict_json(
        self, servable: Servable, body: Mapping[str, Any], signature: SignatureDef | None
    ) -> Call[dict[str, Any]]: ...

    def classify(
        self,
        servable: Servable,
        examples: list[JsonExample],
        context: JsonExample | None,
    ) -> Call[Classifications]: ...

    def regress(
        self,
        servable: Servable,
        examples: list[JsonExample],
        context: JsonExample | None,
    ) -> Call[list[float]]: ...
