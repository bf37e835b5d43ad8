"""TF Serving's REST API as pure functions: a ``Call`` per client method, no I/O.

Paths and bodies follow ``g3doc/api_rest.md`` and ``util/json_tensor.cc``:
``/v1/models/<name>[/versions/<n>|/labels/<l>]`` with ``:predict``, ``:classify``, ``:regress``
or ``/metadata``; tensors are JSON (see ``timonel.codec.json_tensor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from timonel.client._call import Arrays, Call, JsonExample, encode_inputs
from timonel.client._types import Classifications, ModelMetadata, ModelVersionStatus, Servable
from timonel.codec.json_tensor import from_json, to_json
from timonel.errors import ServingError
from timonel.signatures import SignatureDef, TensorInfo


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request relative to the server's base URL; ``body`` is sent as JSON."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None


def model_path(servable: Servable) -> str:
    """``/v1/models/<name>`` plus ``/versions/<n>`` or ``/labels/<l>``, URL-quoted."""
    path = f"/v1/models/{quote(servable.model, safe='')}"
    if servable.version is not None:
        path += f"/versions/{servable.version}"
    elif servable.label is not None:
        path += f"/labels/{quote(servable.label, safe='')}"
    return path


def _unexpected(what: str, body: Any) -> ServingError:
    return ServingError(
        f"the server's {what} reply is not TF Serving's format: {str(body)[:200]}; check that "
        "the URL points at a TF-Serving-compatible REST port",
        code="INTERNAL",
    )


def _with_signature(servable: Servable, body: dict[str, Any]) -> dict[str, Any]:
    if servable.signature:
        return {"signature_name": servable.signature, **body}
    return body


class RestApi:
    """Builds REST calls; the transport sends ``HttpRequest`` and parses JSON replies."""

    json_needs_signature = False

    def status(self, servable: Servable) -> Call[list[ModelVersionStatus]]:
        return Call(HttpRequest("GET", model_path(servable)), parse_status)

    def metadata(self, servable: Servable) -> Call[ModelMetadata]:
        return Call(HttpRequest("GET", model_path(servable) + "/metadata"), parse_metadata)

    def predict(
        self,
        servable: Servable,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        signature: SignatureDef,
    ) -> Call[Arrays]:
        body = _with_signature(servable, {"inputs": encode_inputs(inputs, to_json)})

        def parse(reply: Any) -> Arrays:
            return parse_outputs(reply, signature)

        return Call(HttpRequest("POST", model_path(servable) + ":predict", body), parse)

    def predict_json(
        self, servable: Servable, body: Mapping[str, Any], signature: SignatureDef | None
    ) -> Call[dict[str, Any]]:
        sent = _with_signature(servable, dict(body))
        return Call(HttpRequest("POST", model_path(servable) + ":predict", sent), _object)

    def classify(
        self, servable: Servable, examples: list[JsonExample], context: JsonExample | None
    ) -> Call[Classifications]:
        return Call(_example_request(servable, "classify", examples, context), parse_classify)

    def regress(
        self, servable: Servable, examples: list[JsonExample], context: JsonExample | None
    ) -> Call[list[float]]:
        return Call(_example_request(servable, "regress", examples, context), parse_regress)


def _example_request(
    servable: Servable, verb: str, examples: list[JsonExample], context: JsonExample | None
) -> HttpRequest:
    body: dict[str, Any] = {"examples": [_json_example(example) for example in examples]}
    if context is not None:
        body["context"] = _json_example(context)
    return HttpRequest("POST", f"{model_path(servable)}:{verb}", _with_signature(servable, body))


def _json_example(example: JsonExample) -> dict[str, Any]:
    """Feature values as JSON; numpy values become lists, bytes become ``{"b64": ...}``."""
    return {
        name: to_json(value) if isinstance(value, np.ndarray | np.generic | bytes) else value
        for name, value in example.items()
    }


def _object(reply: Any) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise _unexpected("predict", reply)
    return reply


def parse_outputs(reply: Any, signature: SignatureDef) -> Arrays:
    """``{"outputs": ...}`` as arrays typed by the signature; one output comes back unnamed."""
    if not isinstance(reply, dict) or "outputs" not in reply:
        raise _unexpected("predict", reply)
    outputs = reply["outputs"]
    if len(signature.outputs) == 1:
        [(name, info)] = signature.outputs.items()
        return {name: from_json(outputs, info.dtype)}
    if not isinstance(outputs, dict):
        raise _unexpected("predict", reply)
    unknown = sorted(set(outputs) - set(signature.outputs))
    if unknown:
        raise _unexpected("predict", reply)
    return {
        name: from_json(value, signature.outputs[name].dtype) for name, value in outputs.items()
    }


def parse_status(reply: Any) -> list[ModelVersionStatus]:
    try:
        return [
            ModelVersionStatus(
                version=int(entry["version"]),
                state=str(entry["state"]),
                error_code=str(entry.get("status", {}).get("error_code", "OK")),
                error_message=str(entry.get("status", {}).get("error_message", "")),
            )
            for entry in reply["model_version_status"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise _unexpected("model status", reply) from exc


def _tensor_info(entry: Mapping[str, Any]) -> TensorInfo:
    shape_json = entry.get("tensor_shape", {})
    shape = (
        None
        if shape_json.get("unknown_rank")
        else tuple(int(dim.get("size", -1)) for dim in shape_json.get("dim", []))
    )
    return TensorInfo(dtype=str(entry["dtype"]), shape=shape, name=str(entry.get("name", "")))


def parse_metadata(reply: Any) -> ModelMetadata:
    try:
        spec = reply["model_spec"]
        signatures = reply["metadata"]["signature_def"]["signature_def"]
        return ModelMetadata(
            name=str(spec["name"]),
            version=int(spec.get("version", 0)),
            signatures={
                key: SignatureDef(
                    inputs={k: _tensor_info(v) for k, v in sig.get("inputs", {}).items()},
                    outputs={k: _tensor_info(v) for k, v in sig.get("outputs", {}).items()},
                    method_name=str(sig.get("method_name", "")),
                )
                for key, sig in signatures.items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _unexpected("metadata", reply) from exc


def parse_classify(reply: Any) -> Classifications:
    try:
        return [[(str(label), float(score)) for label, score in row] for row in reply["results"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise _unexpected("classify", reply) from exc


def parse_regress(reply: Any) -> list[float]:
    try:
        return [float(value) for value in reply["results"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise _unexpected("regress", reply) from exc
