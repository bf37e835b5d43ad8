"""TensorFlow Serving's ``servables/tensorflow/classification_service_test.cc`` and
``regression_service_test.cc``, as Classify and Regress calls to ``timonel serve``.

The server serves ``test_model``: TensorFlow's half_plus_two at version 123, as upstream's
fixture. Each request and expected answer is upstream's (responses compared as whole protos).

Not ported: ``ModelSpecOverride`` (a C++ entry point that replaces the request's ModelSpec; no
request over the wire reaches it) and ``ThreadPoolOptions`` (it counts the ops scheduled on
thread pools the test passes in through the C++ API).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import upstream_testdata
from google.protobuf import text_format
from serverproc import ServerProcess, running
from tensorflow_serving.apis import (
    classification_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

pytestmark = pytest.mark.slow

EXAMPLE = """
input { example_list { examples { features {
  feature: { key: "x" value: { float_list: { value: [ 80.0 ] } } }
  feature: { key: "locale" value: { bytes_list: { value: [ "pt_BR" ] } } }
  feature: { key: "age" value: { float_list: { value: [ 19.0 ] } } }
} } } }
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = upstream_testdata.write_half_plus_two(tmp_path_factory.mktemp("model") / "hpt")
    with running(
        tmp_path_factory.mktemp("serve"), "--model_name=test_model", f"--model_base_path={base}"
    ) as process:
        yield process


def call(server: ServerProcess, method: str, request: Any) -> tuple[grpc.StatusCode, Any]:
    with server.channel() as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return grpc.StatusCode.OK, getattr(stub, method)(request, timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), None


@pytest.mark.parametrize(
    ("method", "request_class"),
    [("Classify", classification_pb2.ClassificationRequest),
     ("Regress", regression_pb2.RegressionRequest)],
)  # fmt: skip
def test_invalid_model_spec(server: ServerProcess, method: str, request_class: Any) -> None:
    request = request_class()
    assert call(server, method, request)[0] == grpc.StatusCode.INVALID_ARGUMENT
    request.model_spec.SetInParent()
    assert call(server, method, request)[0] == grpc.StatusCode.INVALID_ARGUMENT
    request.model_spec.name = "foo"
    assert call(server, method, request)[0] == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("method", "request_class"),
    [("Classify", classification_pb2.ClassificationRequest),
     ("Regress", regression_pb2.RegressionRequest)],
)  # fmt: skip
def test_invalid_signature(server: ServerProcess, method: str, request_class: Any) -> None:
    request = text_format.Parse(
        'model_spec { name: "test_model" signature_name: "invalid_signature_name" }',
        request_class(),
    )
    assert call(server, method, request)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_classification_success(server: ServerProcess) -> None:
    request = text_format.Parse(
        'model_spec { name: "test_model" signature_name: "classify_x_to_y" }' + EXAMPLE,
        classification_pb2.ClassificationRequest(),
    )
    code, response = call(server, "Classify", request)
    assert code == grpc.StatusCode.OK
    assert response == text_format.Parse(
        "result { classifications { classes { score: 42 } } }"
        'model_spec { name: "test_model" signature_name: "classify_x_to_y" '
        "version { value: 123 } }",
        classification_pb2.ClassificationResponse(),
    )


def test_regression_success(server: ServerProcess) -> None:
    request = text_format.Parse(
        'model_spec { name: "test_model" signature_name: "regress_x_to_y" }' + EXAMPLE,
        regression_pb2.RegressionRequest(),
    )
    code, response = call(server, "Regress", request)
    assert code == grpc.StatusCode.OK
    assert response == text_format.Parse(
        "result { regressions { value: 42 } }"
        'model_spec { name: "test_model" signature_name: "regress_x_to_y" '
        "version { value: 123 } }",
        regression_pb2.RegressionResponse(),
    )
