"""TensorFlow Serving's ``servables/tensorflow/multi_inference_test.cc``, as MultiInference calls
to ``timonel serve``.

Upstream runs each case on the TF1 half_plus_two with the signature method-name check on and on
the native TF2 half_plus_two with it off; so do we, one server each, serving ``test_model``
(both built as upstream's testdata, ``upstream_testdata``). Each case sends upstream's request
and expects its result, or its code and the text it looks for.

Differences of the wire: upstream builds the runner with servable version 1 by hand, so its
expected model specs say version 1; the server answers with the version it serves, 123.

Not ported: ``ThreadPoolOptions`` (it counts the ops scheduled on thread pools the test passes in
through the C++ API; no request can pass a thread pool).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import upstream_testdata
from serverproc import ServerProcess, running
from tensorflow_serving.apis import inference_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow

MODEL = "test_model"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
PREDICT = "tensorflow/serving/predict"
VERSION = int(upstream_testdata.VERSION)


@pytest.fixture(scope="module", params=["tf1", "tf2"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base: Path = tmp_path_factory.mktemp("model") / "half_plus_two"
    tf1 = request.param == "tf1"
    if tf1:
        upstream_testdata.write_half_plus_two(base)
    else:
        upstream_testdata.write_half_plus_two_tf2(base)
    with running(
        tmp_path_factory.mktemp("serve"),
        f"--model_name={MODEL}",
        f"--model_base_path={base}",
        f"--enable_signature_method_name_check={str(tf1).lower()}",
    ) as process:
        yield process


def add_input(request: inference_pb2.MultiInferenceRequest, **features: float) -> None:
    """multi_inference_test.cc's ``AddInput``: one Example of float features."""
    example = request.input.example_list.examples.add()
    for name, value in features.items():
        example.features.feature[name].float_list.value.append(value)


def add_task(
    request: inference_pb2.MultiInferenceRequest, signature: str, method: str, model: str = MODEL
) -> None:
    """multi_inference_test.cc's ``PopulateTask``."""
    task = request.tasks.add(method_name=method)
    task.model_spec.name = model
    task.model_spec.signature_name = signature


def infer(
    server: ServerProcess, request: inference_pb2.MultiInferenceRequest
) -> tuple[grpc.StatusCode, str, inference_pb2.MultiInferenceResponse | None]:
    with server.channel() as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return grpc.StatusCode.OK, "", stub.MultiInference(request, timeout=60)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or "", None


def expected_result(
    response: inference_pb2.MultiInferenceResponse, signature: str
) -> inference_pb2.InferenceResult:
    result = response.results.add()
    result.model_spec.name = MODEL
    result.model_spec.signature_name = signature
    result.model_spec.version.value = VERSION
    return result


def assert_error(
    server: ServerProcess,
    request: inference_pb2.MultiInferenceRequest,
    code: grpc.StatusCode,
    text: str,
) -> None:
    got, message, _ = infer(server, request)
    assert got == code, message
    assert text in message


def test_missing_input(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_task(request, "regress_x_to_y", REGRESS)
    assert_error(server, request, grpc.StatusCode.INVALID_ARGUMENT, "Input is empty")


def test_undefined_signature(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_input(request, x=2)
    add_task(request, "ThisSignatureDoesNotExist", REGRESS)
    assert_error(server, request, grpc.StatusCode.INVALID_ARGUMENT, "signature not found")


def test_inconsistent_model_specs_in_request(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_input(request, x=2)
    add_task(request, "regress_x_to_y", REGRESS)
    add_task(request, "regress_x_to_y", REGRESS, model="ModelDoesNotExist")
    assert_error(
        server, request, grpc.StatusCode.INVALID_ARGUMENT, "must access the same model name"
    )


def test_evaluate_duplicate_signatures(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_input(request, x=2)
    add_task(request, "regress_x_to_y", REGRESS)
    add_task(request, "regress_x_to_y", REGRESS)
    assert_error(
        server,
        request,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Duplicate evaluation of signature: regress_x_to_y",
    )


def test_unsupported_signature_type(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_input(request, x=2)
    add_task(request, "serving_default", PREDICT)
    assert_error(server, request, grpc.StatusCode.UNIMPLEMENTED, "Unsupported signature")


def test_valid_single_signature(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_input(request, x=2)
    add_task(request, "regress_x_to_y", REGRESS)
    expected = inference_pb2.MultiInferenceResponse()
    expected_result(expected, "regress_x_to_y").regression_result.regressions.add(value=3.0)
    assert infer(server, request) == (grpc.StatusCode.OK, "", expected)


def test_multiple_valid_regress_signatures(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_input(request, x=2)
    add_task(request, "regress_x_to_y", REGRESS)
    add_task(request, "regress_x_to_y2", REGRESS)
    expected = inference_pb2.MultiInferenceResponse()
    # regress_x_to_y is y = 0.5x + 2, regress_x_to_y2 is y2 = 0.5x + 3
    expected_result(expected, "regress_x_to_y").regression_result.regressions.add(value=3.0)
    expected_result(expected, "regress_x_to_y2").regression_result.regressions.add(value=4.0)
    assert infer(server, request) == (grpc.StatusCode.OK, "", expected)


def test_regress_and_classify_signatures(server: ServerProcess) -> None:
    request = inference_pb2.MultiInferenceRequest()
    add_input(request, x=2)
    add_task(request, "regress_x_to_y", REGRESS)
    add_task(request, "classify_x_to_y", CLASSIFY)
    expected = inference_pb2.MultiInferenceResponse()
    expected_result(expected, "regress_x_to_y").regression_result.regressions.add(value=3.0)
    classification = expected_result(expected, "classify_x_to_y").classification_result
    classification.classifications.add().classes.add(score=3.0)
    assert infer(server, request) == (grpc.StatusCode.OK, "", expected)
