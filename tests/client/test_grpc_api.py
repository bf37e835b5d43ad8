"""gRPC requests and replies as pure functions over the real tensorflow-serving-api protos."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from google.protobuf import any_pb2
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    regression_pb2,
)

from timonel import ServingError
from timonel.client._grpc import GrpcApi, model_spec, to_example
from timonel.client._types import ModelVersionStatus, Servable
from timonel.codec.tensor_proto import to_tensor_proto
from timonel.signatures import SignatureDef, TensorInfo

API = GrpcApi()
SIG = SignatureDef(
    inputs={"x": TensorInfo("DT_FLOAT", (-1,))}, outputs={"y": TensorInfo("DT_FLOAT", (-1,))}
)


@pytest.mark.parametrize(
    ("servable", "fields"),
    [
        (Servable("half"), {"name": "half"}),
        (Servable("half", version=7), {"name": "half", "version": "7"}),
        (Servable("half", label="canary"), {"name": "half", "version_label": "canary"}),
        (Servable("half", signature="s"), {"name": "half", "signature_name": "s"}),
    ],
)
def test_model_spec_selects_version_or_label(servable: Servable, fields: dict[str, Any]) -> None:
    from google.protobuf.json_format import MessageToDict

    assert MessageToDict(model_spec(servable), preserving_proto_field_name=True) == fields


def test_predict_request_and_reply() -> None:
    call = API.predict(Servable("half", version=1), {"x": np.array([1.0, 2.0], np.float32)}, SIG)
    assert (call.request.service, call.request.method) == ("PredictionService", "Predict")
    request = call.request.message
    assert isinstance(request, predict_pb2.PredictRequest)
    assert request.model_spec.version.value == 1
    assert request.inputs["x"].tensor_content == np.array([1.0, 2.0], np.float32).tobytes()
    reply = predict_pb2.PredictResponse()
    reply.outputs["y"].CopyFrom(to_tensor_proto(np.array([2.5, 3.0], np.float32)))
    outputs = call.parse(reply)
    assert outputs["y"].dtype == np.float32
    assert outputs["y"].tolist() == [2.5, 3.0]


@pytest.mark.parametrize(
    ("body", "tensor", "reply"),
    [
        ({"instances": [1.0, 2.0]}, [1.0, 2.0], {"predictions": [2.5, 3.0]}),
        ({"inputs": [1.0, 2.0]}, [1.0, 2.0], {"outputs": [2.5, 3.0]}),
        ({"inputs": {"x": [1, 2]}}, [1.0, 2.0], {"outputs": [2.5, 3.0]}),
    ],
)
def test_rest_json_is_typed_by_the_signature_and_answered_in_rest_form(
    body: dict[str, Any], tensor: list[float], reply: dict[str, Any]
) -> None:
    call = API.predict_json(Servable("half"), body, SIG)
    sent = call.request.message.inputs["x"]
    assert np.frombuffer(sent.tensor_content, np.float32).tolist() == tensor
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(to_tensor_proto(np.array([2.5, 3.0], np.float32)))
    assert call.parse(response) == reply


def test_bad_rest_json_fails_before_sending_with_tf_serving_text() -> None:
    with pytest.raises(ServingError, match="Missing 'inputs' or 'instances' key") as info:
        API.predict_json(Servable("half"), {"instancez": [1]}, SIG)
    assert info.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ({"a": 1}, {"a": {"int64_list": {"value": ["1"]}}}),
        ({"a": True}, {"a": {"int64_list": {"value": ["1"]}}}),
        ({"a": [1, 2.5]}, {"a": {"float_list": {"value": [1.0, 2.5]}}}),
        ({"a": "x"}, {"a": {"bytes_list": {"value": ["eA=="]}}}),
        ({"a": {"b64": "/w=="}}, {"a": {"bytes_list": {"value": ["/w=="]}}}),
        ({"a": np.array([1.5, 2.5], np.float32)}, {"a": {"float_list": {"value": [1.5, 2.5]}}}),
        ({"a": []}, {"a": {}}),
    ],
)
def test_examples_are_typed_as_rest_types_them(
    features: dict[str, Any], expected: dict[str, Any]
) -> None:
    from google.protobuf.json_format import MessageToDict

    example = MessageToDict(to_example(features), preserving_proto_field_name=True)
    assert example["features"]["feature"] == expected


def test_a_feature_of_mixed_types_is_refused() -> None:
    with pytest.raises(ServingError, match="Feature: a has element with unexpected JSON type"):
        to_example({"a": [1, None]})


def test_classify_and_regress_requests_and_replies() -> None:
    call = API.classify(Servable("m", signature="c"), [{"x": 1.0}], {"ctx": "a"})
    request = call.request.message
    assert isinstance(request, classification_pb2.ClassificationRequest)
    assert request.model_spec.signature_name == "c"
    context = request.input.example_list_with_context.context
    assert context == to_example({"ctx": "a"})
    reply = classification_pb2.ClassificationResponse()
    reply.result.classifications.add().classes.add(label="a", score=0.5)
    assert call.parse(reply) == [[("a", 0.5)]]

    regress = API.regress(Servable("m"), [{"x": 1.0}], None)
    assert isinstance(regress.request.message, regression_pb2.RegressionRequest)
    examples = regress.request.message.input.example_list.examples
    assert list(examples) == [example_pb2.Example(features=to_example({"x": 1.0}).features)]
    reply_r = regression_pb2.RegressionResponse()
    reply_r.result.regressions.add(value=3.5)
    assert regress.parse(reply_r) == [3.5]


def test_status_request_and_reply() -> None:
    call = API.status(Servable("m", version=2, signature="ignored"))
    assert (call.request.service, call.request.method) == ("ModelService", "GetModelStatus")
    assert call.request.message.model_spec.signature_name == ""
    reply = get_model_status_pb2.GetModelStatusResponse()
    entry = reply.model_version_status.add(version=2, state=30)
    entry.status.error_code = 5
    entry.status.error_message = "gone"
    assert call.parse(reply) == [ModelVersionStatus(2, "AVAILABLE", "NOT_FOUND", "gone")]


def test_metadata_request_and_reply() -> None:
    call = API.metadata(Servable("m"))
    assert list(call.request.message.metadata_field) == ["signature_def"]
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    sig = signature_map.signature_def["serving_default"]
    sig.method_name = "tensorflow/serving/predict"
    sig.inputs["x"].dtype = 1
    sig.inputs["x"].name = "x:0"
    sig.inputs["x"].tensor_shape.dim.add(size=-1)
    sig.outputs["y"].dtype = 1
    sig.outputs["y"].tensor_shape.unknown_rank = True
    packed = any_pb2.Any()
    packed.Pack(signature_map)
    reply = get_model_metadata_pb2.GetModelMetadataResponse()
    reply.model_spec.name = "m"
    reply.model_spec.version.value = 4
    reply.metadata["signature_def"].CopyFrom(packed)
    metadata = call.parse(reply)
    assert (metadata.name, metadata.version) == ("m", 4)
    assert metadata.signatures["serving_default"] == SignatureDef(
        {"x": TensorInfo("DT_FLOAT", (-1,), "x:0")},
        {"y": TensorInfo("DT_FLOAT", None, "")},
        "tensorflow/serving/predict",
    )
    with pytest.raises(ServingError, match="reply has no signature_def map"):
        call.parse(get_model_metadata_pb2.GetModelMetadataResponse())
