"""One table of requests, sent over REST and over gRPC (the real tensorflow-serving-api stubs).

Expected bodies, status codes and error texts are TF Serving's (../shared/tfserving/
TF_SERVING_FACTS.md). Where TF Serving itself answers the two transports differently (unknown
signature, extra or missing inputs), a row says so with ``rest_*`` overrides.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf import text_format
from serverproc import ServerProcess, spawn
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from timonel.codec.status import http_status
from timonel.codec.tensor_proto import from_tensor_proto, to_tensor_proto
from timonel.tfserving import ModelConfig, VersionPolicy, write_models_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    model_repo: Path, monitoring_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("config") / "models.config"
    write_models_config(
        config,
        [
            ModelConfig(
                name="hpt",
                base_path=str(model_repo / "hpt"),
                version_policy=VersionPolicy.all(),
                labels={"stable": 1, "canary": 2},
            ),
            ModelConfig(name="tf1", base_path=str(model_repo / "tf1")),
        ],
    )
    process = spawn(
        tmp_path_factory.mktemp("serve"),
        f"--model_config_file={config}",
        "--allow_version_labels_for_unavailable_models",
        f"--monitoring_config_file={monitoring_file}",
    )
    try:
        process.wait_ready()
        yield process
    finally:
        assert process.terminate() == 0
        assert process.stdout.read_text() == ""


@dataclass(frozen=True)
class Case:
    """A request and TF Serving's answer. ``kind`` is predict, classify, regress or status."""

    id: str
    kind: str = "predict"
    model: str = "hpt"
    version: int | None = None
    label: str | None = None
    signature: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)  # predict: alias → array
    examples: list[dict[str, float]] = field(default_factory=list)  # classify/regress
    code: str = "OK"
    message: str = ""
    outputs: Any = None  # predict: alias → list; classify/regress: results; status: list
    rest_code: str | None = None
    rest_message: str | None = None
    rest_outputs: Any = None


X = {"x": np.array([1.0, 2.0, 5.0], dtype=np.float32)}


def signature_text(inputs: dict[str, Any], outputs: dict[str, Any], method: str) -> str:
    """A SignatureDef as TF Serving quotes it in errors (``DebugString``); each tensor is
    ``alias: (name, dtype, dims)``."""
    signature = meta_graph_pb2.SignatureDef(method_name=method)
    for target, tensors in ((signature.inputs, inputs), (signature.outputs, outputs)):
        for alias, (name, dtype, dims) in tensors.items():
            target[alias].name = name
            target[alias].dtype = types_pb2.DataType.Value(dtype)
            target[alias].tensor_shape.dim.extend(
                tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims
            )
    return str(text_format.MessageToString(signature))


#: the tf1 model's predict and regress signatures (tfmodels.write_half_plus_two_tf1)
PREDICT_SIGNATURE_TEXT = signature_text(
    {"x": ("x:0", "DT_FLOAT", [-1])},
    {"y": ("y:0", "DT_FLOAT", [-1])},
    "tensorflow/serving/predict",
)
REGRESS_SIGNATURE_TEXT = signature_text(
    {"inputs": ("tf_example:0", "DT_STRING", [-1])},
    {"outputs": ("y_examples:0", "DT_FLOAT", [-1, 1])},
    "tensorflow/serving/regress",
)

CASES = [
    Case("latest version", inputs=X, outputs={"y": [3.5, 4.0, 5.5]}),
    Case("specific version", version=1, inputs=X, outputs={"y": [2.5, 3.0, 4.5]}),
    Case("label stable", label="stable", inputs=X, outputs={"y": [2.5, 3.0, 4.5]}),
    Case("label canary", label="canary", inputs=X, outputs={"y": [3.5, 4.0, 5.5]}),
    Case(
        "unknown model",
        model="nope",
        inputs=X,
        code="NOT_FOUND",
        message="Servable not found for request: Latest(nope)",
    ),
    Case(
        "unknown version",
        version=7,
        inputs=X,
        code="NOT_FOUND",
        message="Servable not found for request: Specific(hpt, 7)",
    ),
    Case(
        "unknown label",
        label="beta",
        inputs=X,
        code="INVALID_ARGUMENT",
        message="Unrecognized servable version label: beta",
    ),
    Case(
        "unknown signature",
        signature="nope",
        inputs=X,
        code="FAILED_PRECONDITION",
        message='Serving signature key "nope" not found.',
        rest_code="INVALID_ARGUMENT",
        rest_message='Serving signature name: "nope" not found in signature def',
    ),
    Case(
        "extra input",
        inputs={**X, "z": np.array([1.0], dtype=np.float32)},
        code="INVALID_ARGUMENT",
        message="input size does not match signature: 2!=1 len({x,z}) != len({x}). "
        "Sent extra: {z}. Missing but required: {}.",
        # TF Serving's REST decoder reads only the signature's inputs from the object.
        rest_code="OK",
        rest_outputs={"y": [3.5, 4.0, 5.5]},
    ),
    Case(
        "missing input",
        inputs={"q": np.array([1.0], dtype=np.float32)},
        code="INVALID_ARGUMENT",
        message="Signature input alias: x(feed name: serving_default_x:0) not found in request "
        "and no default value provided. Inputs expected to be in the request {q}, or default "
        "input alias set: ",
        rest_message="Missing named input: x in 'inputs' object.",
    ),
    Case(
        "strings and bytes",
        model="tf1",
        signature="text",
        inputs={"text": np.array([b"ab", b"\xff\x00z"], dtype=object)},
        outputs={"length": [2, 3], "echo_bytes": [b"ab", b"\xff\x00z"]},
    ),
    Case(
        "classify",
        kind="classify",
        model="tf1",
        signature="tensorflow/serving/classify",
        examples=[{"x": 1.0}, {"x": 6.0}],
        outputs=[[("low", 0.75), ("high", 0.25)], [("low", 0.5), ("high", 0.5)]],
    ),
    Case(
        "classify on a predict signature",
        kind="classify",
        model="tf1",
        examples=[{"x": 1.0}],
        code="INVALID_ARGUMENT",
        # without --enable_signature_method_name_check, its input alias is what is wrong
        message="No classification inputs found in SignatureDef: " + PREDICT_SIGNATURE_TEXT,
    ),
    Case(
        "regress",
        kind="regress",
        model="tf1",
        signature="tensorflow/serving/regress",
        examples=[{"x": 1.0}, {"x": 6.0}],
        outputs=[2.5, 5.0],
    ),
    Case(
        "regress on an unknown signature",
        kind="regress",
        model="tf1",
        signature="nope",
        examples=[{"x": 1.0}],
        code="INVALID_ARGUMENT",
        message="No signature was found with the name: nope",
    ),
    Case("status", kind="status", outputs=[("2", "AVAILABLE"), ("1", "AVAILABLE")]),
    Case("status of a version", kind="status", version=1, outputs=[("1", "AVAILABLE")]),
    Case(
        "status of an unknown model",
        kind="status",
        model="nope",
        code="NOT_FOUND",
        message="Could not find any versions of model nope",
    ),
    Case(
        "status of an unknown version",
        kind="status",
        version=9,
        code="NOT_FOUND",
        message="Could not find version 9 of model hpt",
    ),
]


@dataclass(frozen=True)
class Answer:
    code: str
    message: str = ""
    outputs: Any = None


# ---- REST -----------------------------------------------------------------------------------


def _rest_path(case: Case) -> str:
    path = f"/v1/models/{case.model}"
    if case.version is not None:
        path += f"/versions/{case.version}"
    if case.label is not None:
        path += f"/labels/{case.label}"
    return path


def _json_value(alias: str, value: Any) -> Any:
    if isinstance(value, bytes):
        if alias.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode()}
        return value.decode("utf-8", "replace")
    return value


def _rest_call(server: ServerProcess, case: Case) -> Answer:
    path = _rest_path(case)
    body: dict[str, Any] = {"signature_name": case.signature} if case.signature else {}
    if case.kind == "status":
        reply = httpx.get(server.rest + path, timeout=30)
    elif case.kind == "predict":
        body["inputs"] = {
            alias: [
                {"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v
                for v in value.tolist()
            ]
            for alias, value in case.inputs.items()
        }
        reply = httpx.post(f"{server.rest}{path}:predict", json=body, timeout=30)
    else:
        body["examples"] = case.examples
        reply = httpx.post(f"{server.rest}{path}:{case.kind}", json=body, timeout=30)
    assert reply.headers["content-type"] == "application/json"
    data = reply.json()
    if reply.status_code != 200:
        return Answer(_code_of(reply.status_code), data["error"])
    if case.kind == "status":
        return Answer(
            "OK", outputs=[(s["version"], s["state"]) for s in data["model_version_status"]]
        )
    if case.kind == "predict":
        outputs = data["outputs"]
        return Answer("OK", outputs=outputs if isinstance(outputs, dict) else {"_": outputs})
    if case.kind == "classify":
        return Answer("OK", outputs=[[tuple(pair) for pair in row] for row in data["results"]])
    return Answer("OK", outputs=data["results"])


def _code_of(status: int) -> str:
    codes = ["INVALID_ARGUMENT", "NOT_FOUND", "UNIMPLEMENTED", "UNAVAILABLE", "INTERNAL"]
    return next(code for code in codes if http_status(code) == status)


def _rest_expected(case: Case) -> Answer:
    code = case.rest_code or case.code
    if code != "OK":
        return Answer(code, case.rest_message if case.rest_message is not None else case.message)
    outputs = case.rest_outputs if case.rest_outputs is not None else case.outputs
    if case.kind == "predict":
        converted = {a: [_json_value(a, v) for v in values] for a, values in outputs.items()}
        outputs = converted if len(converted) > 1 else {"_": next(iter(converted.values()))}
    return Answer("OK", outputs=outputs)


# ---- gRPC -----------------------------------------------------------------------------------


def _fill_spec(spec: Any, case: Case) -> None:
    spec.name = case.model
    if case.version is not None:
        spec.version.value = case.version
    if case.label is not None:
        spec.version_label = case.label
    if case.signature:
        spec.signature_name = case.signature


def _examples(case: Case) -> list[Any]:
    return [
        example_pb2.Example(
            features=feature_pb2.Features(
                feature={
                    k: feature_pb2.Feature(float_list=feature_pb2.FloatList(value=[v]))
                    for k, v in example.items()
                }
            )
        )
        for example in case.examples
    ]


def _grpc_call(server: ServerProcess, case: Case) -> Answer:
    with server.channel() as channel:
        predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            if case.kind == "status":
                request = get_model_status_pb2.GetModelStatusRequest()
                _fill_spec(request.model_spec, case)
                reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                    request, timeout=30
                )
                states = get_model_status_pb2.ModelVersionStatus.State
                return Answer(
                    "OK",
                    outputs=[
                        (str(s.version), states.Name(s.state)) for s in reply.model_version_status
                    ],
                )
            if case.kind == "predict":
                request = predict_pb2.PredictRequest()
                _fill_spec(request.model_spec, case)
                for alias, value in case.inputs.items():
                    request.inputs[alias].CopyFrom(to_tensor_proto(value))
                reply = predictions.Predict(request, timeout=30)
                return Answer(
                    "OK",
                    outputs={a: from_tensor_proto(t).tolist() for a, t in reply.outputs.items()},
                )
            request_class = (
                classification_pb2.ClassificationRequest
                if case.kind == "classify"
                else regression_pb2.RegressionRequest
            )
            request = request_class()
            _fill_spec(request.model_spec, case)
            request.input.example_list.examples.extend(_examples(case))
            if case.kind == "classify":
                reply = predictions.Classify(request, timeout=30)
                return Answer(
                    "OK",
                    outputs=[
                        [(c.label, c.score) for c in row.classes]
                        for row in reply.result.classifications
                    ],
                )
            reply = predictions.Regress(request, timeout=30)
            return Answer("OK", outputs=[r.value for r in reply.result.regressions])
        except grpc.RpcError as exc:
            return Answer(exc.code().name, exc.details())


def _grpc_expected(case: Case) -> Answer:
    if case.code != "OK":
        return Answer(case.code, case.message)
    return Answer("OK", outputs=case.outputs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rest(server: ServerProcess, case: Case) -> None:
    assert _rest_call(server, case) == _rest_expected(case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_grpc(server: ServerProcess, case: Case) -> None:
    assert _grpc_call(server, case) == _grpc_expected(case)


# ---- what only one transport can express -----------------------------------------------------

REST_ONLY = [
    (
        "POST",
        "/v1/models/hpt:PREDICT",
        b"{}",
        400,
        "Malformed request: POST /v1/models/hpt:PREDICT",
    ),
    ("GET", "/v1/models/hpt:predict", b"", 400, "Malformed request: GET /v1/models/hpt:predict"),
    ("PUT", "/v1/models/hpt", b"", 400, "Malformed request: PUT /v1/models/hpt"),
    (
        "GET",
        "/v1/models/hpt/versions/HELLO",
        b"",
        400,
        "Malformed request: GET /v1/models/hpt/versions/HELLO",
    ),
    ("GET", "/v1/models", b"", 400, "Missing model name in request."),
    ("POST", "/v1/models/hpt:predict", b"", 400, "JSON Parse error: The document is empty"),
    (
        "POST",
        "/v1/models/hpt:predict",
        b"{bad",
        400,
        "JSON Parse error: Missing a name for object member. at offset: 1",
    ),
    ("POST", "/v1/models/hpt:predict", b"[1]", 400, "JSON Value: [\n    1\n] Is not object"),
    ("POST", "/v1/models/hpt:predict", b'{"x": 1}', 400, "Missing 'inputs' or 'instances' key"),
    (
        "POST",
        "/v1/models/hpt:predict",
        b'{"instances": ["x"]}',
        400,
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "x" '
        "Type: String is not of expected type: float",
    ),
    (
        "POST",
        "/v1/models/hpt:predict",
        b'{"instances": [[1.0], [1.0, 2.0]]}',
        400,
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
        "tensor size: 1 but got: 2",
    ),
    (
        "POST",
        "/v1/models/hpt:predict",
        b'{"instances": [1.0], "inputs": [1.0]}',
        400,
        'JSON Value: {\n    "instances": [\n        1.0\n    ],\n'
        '    "inputs": [\n        1.0\n    ]\n} '
        "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
    ),
    (
        "POST",
        "/v1/models/tf1:classify",
        b'{"signature_name": "tensorflow/serving/classify"}',
        400,
        'JSON Value: {\n    "signature_name": "tensorflow/serving/classify"\n} When method is '
        "classify, key 'examples' is expected and was not found",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), REST_ONLY)
def test_rest_only_errors(
    server: ServerProcess, method: str, path: str, body: bytes, status: int, error: str
) -> None:
    reply = httpx.request(method, server.rest + path, content=body, timeout=30)
    assert (reply.status_code, reply.json()) == (status, {"error": error})
    assert reply.headers["content-type"] == "application/json"


def test_rest_row_format_answers_predictions(server: ServerProcess) -> None:
    reply = httpx.post(
        f"{server.rest}/v1/models/hpt/versions/1:predict",
        json={"instances": [1.0, 2.0, 5.0]},
        timeout=30,
    )
    assert reply.json() == {"predictions": [2.5, 3.0, 4.5]}


def test_rest_row_format_with_several_outputs_answers_objects(server: ServerProcess) -> None:
    reply = httpx.post(
        f"{server.rest}/v1/models/tf1:predict",
        json={"signature_name": "text", "instances": [{"b64": "YWI="}, "xyz"]},
        timeout=30,
    )
    assert reply.json() == {
        "predictions": [
            {"echo_bytes": {"b64": "YWI="}, "length": 2},
            {"echo_bytes": {"b64": "eHl6"}, "length": 3},
        ]
    }


def test_rest_accepts_gzip_bodies(server: ServerProcess) -> None:
    import gzip

    reply = httpx.post(
        f"{server.rest}/v1/models/hpt/versions/1:predict",
        content=gzip.compress(b'{"instances": [1.0]}'),
        headers={"Content-Encoding": "gzip"},
        timeout=30,
    )
    assert reply.json() == {"predictions": [2.5]}


def test_rest_paths_outside_v1_are_plain_404(server: ServerProcess) -> None:
    reply = httpx.get(f"{server.rest}/healthz", timeout=30)
    assert reply.status_code == 404
    assert "application/json" not in reply.headers["content-type"]


def test_rest_metadata_lists_signature_defs(server: ServerProcess) -> None:
    data = httpx.get(f"{server.rest}/v1/models/hpt/versions/1/metadata", timeout=30).json()
    assert data["model_spec"] == {"name": "hpt", "signature_name": "", "version": "1"}
    signature = data["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["inputs"]["x"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}],
        "unknown_rank": False,
    }


def test_grpc_metadata_packs_a_signature_def_map(server: ServerProcess) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "tf1"
    request.metadata_field.append("signature_def")
    with server.channel() as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            request, timeout=30
        )
    signatures = get_model_metadata_pb2.SignatureDefMap()
    reply.metadata["signature_def"].Unpack(signatures)
    assert reply.model_spec.version.value == 1
    assert signatures.signature_def["tensorflow/serving/regress"].method_name == (
        "tensorflow/serving/regress"
    )


@pytest.mark.parametrize(
    ("fields", "name", "message"),
    [
        ([], "hpt", "GetModelMetadataRequest must specify at least one metadata_field"),
        (["x"], "hpt", "Metadata field x is not supported"),
        (["signature_def"], "", "ModelSpec has no name specified."),
    ],
)
def test_grpc_metadata_errors(
    server: ServerProcess, fields: list[str], name: str, message: str
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
    request.model_spec.name = name
    with server.channel() as channel, pytest.raises(grpc.RpcError) as caught:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            request, timeout=30
        )
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
    )


def test_grpc_predict_without_model_spec(server: ServerProcess) -> None:
    with server.channel() as channel, pytest.raises(grpc.RpcError) as caught:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            predict_pb2.PredictRequest(), timeout=30
        )
    assert caught.value.details() == "Missing ModelSpec"


def test_grpc_output_filter(server: ServerProcess) -> None:
    request = predict_pb2.PredictRequest(output_filter=["length"])
    request.model_spec.name = "tf1"
    request.model_spec.signature_name = "text"
    request.inputs["text"].CopyFrom(to_tensor_proto(np.array([b"abc"], dtype=object)))
    with server.channel() as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )
    assert list(reply.outputs) == ["length"]
    assert list(reply.outputs["length"].int_val) == [3]
    assert reply.model_spec.signature_name == "text"


def test_metrics_use_tf_serving_names(server: ServerProcess) -> None:
    httpx.post(f"{server.rest}/v1/models/hpt:predict", json={"instances": [1.0]}, timeout=30)
    text = httpx.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=30).text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="hpt",status="OK"}' in text
    assert (
        ':tensorflow:serving:request_latency_bucket{model_name="hpt",API="predict",'
        'entrypoint="REST",le="10.0"}'
    ) in text
    assert ":tensorflow:serving:request_latency_count" in text
    assert "process_resident_memory_bytes" in text
    assert 'timonel_requests_in_flight{model_name="hpt",version="2"} 0.0' in text


# ---- MultiInference (gRPC only) ----------------------------------------------------------------

CLASSIFY, REGRESS = "tensorflow/serving/classify", "tensorflow/serving/regress"


def _multi_inference(
    server: ServerProcess, tasks: list[tuple[str, str, str]], examples: list[dict[str, float]]
) -> Any:
    """MultiInference of ``(model, signature, method)`` tasks on the examples."""
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = model
        task.model_spec.signature_name = signature
    request.input.example_list.examples.extend(_examples(Case("examples", examples=examples)))
    with server.channel() as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).MultiInference(
            request, timeout=30
        )


def test_grpc_multi_inference_answers_every_task_from_one_input(server: ServerProcess) -> None:
    reply = _multi_inference(
        server,
        [("tf1", CLASSIFY, CLASSIFY), ("tf1", REGRESS, REGRESS)],
        [{"x": 1.0}, {"x": 6.0}],
    )
    classify, regress = reply.results
    assert (classify.model_spec.name, classify.model_spec.signature_name) == ("tf1", CLASSIFY)
    assert (regress.model_spec.name, regress.model_spec.signature_name) == ("tf1", REGRESS)
    assert classify.model_spec.version.value == regress.model_spec.version.value == 1
    assert [
        [(c.label, c.score) for c in row.classes]
        for row in classify.classification_result.classifications
    ] == [[("low", 0.75), ("high", 0.25)], [("low", 0.5), ("high", 0.5)]]
    assert [r.value for r in regress.regression_result.regressions] == [2.5, 5.0]


@pytest.mark.parametrize(
    ("tasks", "code", "message"),
    [
        ([], "INVALID_ARGUMENT", "ModelSpec has no name specified."),
        (
            [("nope", CLASSIFY, CLASSIFY)],
            "NOT_FOUND",
            "Servable not found for request: Latest(nope)",
        ),
        (
            [("tf1", CLASSIFY, CLASSIFY), ("hpt", REGRESS, REGRESS)],
            "INVALID_ARGUMENT",
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
        ),
        (
            [("tf1", CLASSIFY, CLASSIFY), ("", REGRESS, REGRESS)],
            "INVALID_ARGUMENT",
            "Found ModelSpec with an empty model name.",
        ),
        (
            [("tf1", REGRESS, REGRESS), ("tf1", REGRESS, REGRESS)],
            "INVALID_ARGUMENT",
            f"Duplicate evaluation of signature: {REGRESS}",
        ),
        (
            [("tf1", "nope", CLASSIFY)],
            "INVALID_ARGUMENT",
            "Requested signature not found in model graph: nope",
        ),
        (
            [("tf1", CLASSIFY, "tensorflow/serving/predict")],
            "UNIMPLEMENTED",
            "Unsupported signature method_name: tensorflow/serving/predict",
        ),
        (  # without --enable_signature_method_name_check, the outputs decide
            [("tf1", REGRESS, CLASSIFY)],
            "INVALID_ARGUMENT",
            'Expected classification signature outputs to contain at least one of "classes" or '
            '"scores". Signature was: ' + REGRESS_SIGNATURE_TEXT,
        ),
    ],
    ids=[
        "no task",
        "unknown model",
        "two models",
        "empty model name",
        "duplicate signature",
        "unknown signature",
        "unsupported method",
        "method of another signature",
    ],
)
def test_grpc_multi_inference_errors(
    server: ServerProcess, tasks: list[tuple[str, str, str]], code: str, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _multi_inference(server, tasks, [{"x": 1.0}])
    assert (caught.value.code().name, caught.value.details()) == (code, message)
