"""TF Serving's gRPC API as pure functions: a ``Call`` per client method, no I/O.

Requests are the real ``tensorflow_serving.apis`` protos; tensors travel through
``timonel.codec.tensor_proto``.
This module imports TensorFlow's protos, so the client imports it only when gRPC is chosen.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf import message as protobuf_message
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from timonel.client._call import Arrays, Call, JsonExample, encode_inputs
from timonel.client._types import Classifications, ModelMetadata, ModelVersionStatus, Servable
from timonel.codec.json_tensor import decode_predict, encode_predict
from timonel.codec.tensor_proto import from_tensor_proto, to_tensor_proto
from timonel.errors import ServingError
from timonel.signatures import SignatureDef, TensorInfo


@dataclass(frozen=True)
class GrpcRequest:
    """A unary call: the service (``PredictionService``, ``ModelService``), method and message."""

    service: str
    method: str
    message: protobuf_message.Message


def model_spec(servable: Servable) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=servable.model, signature_name=servable.signature)
    if servable.version is not None:
        spec.version.value = servable.version
    elif servable.label is not None:
        spec.version_label = servable.label
    return spec


def predict_request(
    servable: Servable, inputs: Mapping[str, np.ndarray[Any, Any]]
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_spec(servable))
    for name, tensor in encode_inputs(inputs, to_tensor_proto).items():
        request.inputs[name].CopyFrom(tensor)
    return request


def parse_predict(reply: predict_pb2.PredictResponse) -> Arrays:
    return {name: from_tensor_proto(tensor) for name, tensor in reply.outputs.items()}


class GrpcApi:
    """Builds gRPC calls; the transport invokes the stub method and hands back the reply."""

    json_needs_signature = True

    def status(self, servable: Servable) -> Call[list[ModelVersionStatus]]:
        spec = model_spec(servable)
        spec.ClearField("signature_name")
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
        return Call(GrpcRequest("ModelService", "GetModelStatus", request), parse_status)

    def metadata(self, servable: Servable) -> Call[ModelMetadata]:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_spec(servable), metadata_field=["signature_def"]
        )
        return Call(GrpcRequest("PredictionService", "GetModelMetadata", request), parse_metadata)

    def predict(
        self,
        servable: Servable,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        signature: SignatureDef,
    ) -> Call[Arrays]:
        request = predict_request(servable, inputs)
        return Call(GrpcRequest("PredictionService", "Predict", request), parse_predict)

    def predict_json(
        self, servable: Servable, body: Mapping[str, Any], signature: SignatureDef | None
    ) -> Call[dict[str, Any]]:
        if signature is None:
            raise ValueError("gRPC needs the signature to type a JSON body")
        # The REST codec decodes and encodes bodies exactly as TF Serving does, so a JSON body
        # sent over gRPC fails and answers with the same text as over REST.
        dtypes = {name: info.dtype for name, info in signature.inputs.items()}
        decoded = decode_predict(body, dtypes)
        request = predict_request(servable, decoded.tensors)

        def parse(reply: predict_pb2.PredictResponse) -> dict[str, Any]:
            encoded = encode_predict(parse_predict(reply), decoded.format)
            result: dict[str, Any] = json.loads(encoded)
            return result

        return Call(GrpcRequest("PredictionService", "Predict", request), parse)

    def classify(
        self, servable: Servable, examples: list[JsonExample], context: JsonExample | None
    ) -> Call[Classifications]:
        request = classification_pb2.ClassificationRequest(
            model_spec=model_spec(servable), input=example_input(examples, context)
        )
        return Call(GrpcRequest("PredictionService", "Classify", request), parse_classify)

    def regress(
        self, servable: Servable, examples: list[JsonExample], context: JsonExample | None
    ) -> Call[list[float]]:
        request = regression_pb2.RegressionRequest(
            model_spec=model_spec(servable), input=example_input(examples, context)
        )
        return Call(GrpcRequest("PredictionService", "Regress", request), parse_regress)


def example_input(examples: list[JsonExample], context: JsonExample | None) -> input_pb2.Input:
    """Examples as TF Serving's ``Input``, typed by REST's rules for classify/regress JSON."""
    converted = [to_example(example) for example in examples]
    if context is None:
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=converted))
    return input_pb2.Input(
        example_list_with_context=input_pb2.ExampleListWithContext(
            examples=converted, context=to_example(context)
        )
    )


def to_example(features: JsonExample) -> example_pb2.Example:
    """A feature mapping as ``tf.train.Example``: integers and booleans → int64_list,
    other numbers → float_list, str/bytes/``{"b64": ...}`` → bytes_list (``util/json_tensor.cc``).
    """
    example = example_pb2.Example()
    for name, value in features.items():
        example.features.feature[name].CopyFrom(_feature(name, value))
    return example


def _feature(name: str, value: Any) -> feature_pb2.Feature:
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist() if value.dtype.kind not in "OSU" else list(np.ravel(value))
    values = value if isinstance(value, list) else [value]
    if not values:
        return feature_pb2.Feature()
    try:
        if all(isinstance(v, bool | int) for v in values):
            return feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=map(int, values)))
        if all(isinstance(v, bool | int | float) for v in values):
            return feature_pb2.Feature(float_list=feature_pb2.FloatList(value=map(float, values)))
    except ValueError as exc:
        raise ServingError(
            f"Feature: {name} has a value outside int64: {values}", code="INVALID_ARGUMENT"
        ) from exc
    if all(isinstance(v, str | bytes | dict) for v in values):
        return feature_pb2.Feature(
            bytes_list=feature_pb2.BytesList(value=[_bytes(v) for v in values])
        )
    kinds = sorted({type(v).__name__ for v in values})
    raise ServingError(
        f"Feature: {name} has element with unexpected JSON type: {'/'.join(kinds)}; a feature is "
        'a number, a string, {"b64": ...} or a flat list of one of those',
        code="INVALID_ARGUMENT",
    )


def _bytes(value: str | bytes | dict[str, Any]) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError as exc:
            raise ServingError("Unable to base64 decode", code="INVALID_ARGUMENT") from exc
    raise ServingError(
        f'Feature value {value!r} is an object; only {{"b64": "<base64>"}} is allowed',
        code="INVALID_ARGUMENT",
    )


def parse_status(reply: get_model_status_pb2.GetModelStatusResponse) -> list[ModelVersionStatus]:
    states = get_model_status_pb2.ModelVersionStatus.State
    return [
        ModelVersionStatus(
            version=entry.version,
            state=states.Name(entry.state),
            error_code=_enum_name(entry.status, "error_code"),
            error_message=entry.status.error_message,
        )
        for entry in reply.model_version_status
    ]


def _enum_name(message: protobuf_message.Message, field: str) -> str:
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    number = getattr(message, field)
    value = enum.values_by_number.get(number)
    return value.name if value is not None else str(number)


def _tensor_info(info: meta_graph_pb2.TensorInfo) -> TensorInfo:
    shape = (
        None if info.tensor_shape.unknown_rank else tuple(dim.size for dim in info.tensor_shape.dim)
    )
    return TensorInfo(dtype=types_pb2.DataType.Name(info.dtype), shape=shape, name=info.name)


def parse_metadata(reply: get_model_metadata_pb2.GetModelMetadataResponse) -> ModelMetadata:
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if "signature_def" not in reply.metadata or not reply.metadata["signature_def"].Unpack(
        signature_map
    ):
        raise ServingError(
            "the server's GetModelMetadata reply has no signature_def map; check that it is a "
            "TF-Serving-compatible gRPC port",
            code="INTERNAL",
        )
    return ModelMetadata(
        name=reply.model_spec.name,
        version=reply.model_spec.version.value,
        signatures={
            key: SignatureDef(
                inputs={k: _tensor_info(v) for k, v in sig.inputs.items()},
                outputs={k: _tensor_info(v) for k, v in sig.outputs.items()},
                method_name=sig.method_name,
            )
            for key, sig in signature_map.signature_def.items()
        },
    )


def parse_classify(reply: classification_pb2.ClassificationResponse) -> Classifications:
    return [
        [(cls.label, cls.score) for cls in classification.classes]
        for classification in reply.result.classifications
    ]


def parse_regress(reply: regression_pb2.RegressionResponse) -> list[float]:
    return [regression.value for regression in reply.result.regressions]
