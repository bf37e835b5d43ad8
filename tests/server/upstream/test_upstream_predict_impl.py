"""TensorFlow Serving's ``servables/tensorflow/predict_impl_test.cc``, as Predict calls to
``timonel serve``.

The server serves ``test_model``: TensorFlow's half_plus_two at version 123, as upstream's
fixture, and a second one the counter model (``saved_model_counter``). Each request and expected
answer is upstream's (responses compared as whole protos).

Not ported: ``ModelSpecOverride`` (a C++ entry point no request reaches) and
``ThreadPoolFactory`` (thread pools passed in through the C++ API).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import upstream_testdata
from google.protobuf import text_format
from serverproc import ServerProcess, running
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow

SPEC = 'model_spec { name: "test_model" version { value: 123 } }'
FLOAT_2 = "{ dtype: DT_FLOAT float_val: 2.0 }"
STRING_ANY = "{ dtype: DT_STRING tensor_shape { dim { size: 1 } } string_val: 'any_key' }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = upstream_testdata.write_half_plus_two(
        tmp_path_factory.mktemp("model") / "hpt", tensorflow_testdata=True
    )
    with running(
        tmp_path_factory.mktemp("serve"), "--model_name=test_model", f"--model_base_path={base}"
    ) as process:
        yield process


def predict(
    server: ServerProcess, text: str
) -> tuple[grpc.StatusCode, predict_pb2.PredictResponse | None]:
    request = text_format.Parse(text, predict_pb2.PredictRequest())
    with server.channel() as channel:
        try:
            return grpc.StatusCode.OK, prediction_service_pb2_grpc.PredictionServiceStub(
                channel
            ).Predict(request, timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), None


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("model_spec {}", grpc.StatusCode.INVALID_ARGUMENT),
        ('model_spec { name: "test" }', grpc.StatusCode.NOT_FOUND),
    ],
)
def test_missing_or_empty_model_spec(
    server: ServerProcess, request_text: str, code: grpc.StatusCode
) -> None:
    assert predict(server, request_text)[0] == code


def test_empty_input_list(server: ServerProcess) -> None:
    assert predict(server, SPEC)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_input_tensors_dont_match_model_spec_inputs(server: ServerProcess) -> None:
    request = f"{SPEC} inputs {{ key: 'key' value {STRING_ANY} }}"
    assert predict(server, request)[0] == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        (["output_filter"], grpc.StatusCode.INVALID_ARGUMENT),
        (["y"], grpc.StatusCode.OK),
        (["y", "y"], grpc.StatusCode.INVALID_ARGUMENT),  # a duplicate output filter
    ],
)
def test_output_filters_dont_match_model_spec_outputs(
    server: ServerProcess, filters: list[str], code: grpc.StatusCode
) -> None:
    request = f"{SPEC} inputs {{ key: 'x' value {FLOAT_2} }}" + "".join(
        f" output_filter: '{name}'" for name in filters
    )
    assert predict(server, request)[0] == code


def test_input_tensors_have_wrong_type(server: ServerProcess) -> None:
    request = f"{SPEC} inputs {{ key: 'x' value {STRING_ANY} }} output_filter: 'y'"
    assert predict(server, request)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_prediction_success(server: ServerProcess) -> None:
    code, response = predict(server, f"{SPEC} inputs {{ key: 'x' value {FLOAT_2} }}")
    assert code == grpc.StatusCode.OK
    assert response == text_format.Parse(
        'model_spec { name: "test_model" version { value: 123 } signature_name: '
        '"serving_default" } outputs { key: "y" value { dtype: DT_FLOAT tensor_shape {} '
        "float_val: 3 } }",
        predict_pb2.PredictResponse(),
    )


def test_prediction_with_named_regression_signature(server: ServerProcess) -> None:
    code, response = predict(
        server,
        'model_spec { name: "test_model" version { value: 123 } signature_name: '
        f'"regress_x2_to_y3" }} inputs {{ key: "inputs" value {FLOAT_2} }}',
    )
    assert code == grpc.StatusCode.OK
    assert response == text_format.Parse(
        'model_spec { name: "test_model" version { value: 123 } signature_name: '
        '"regress_x2_to_y3" } outputs { key: "outputs" value { dtype: DT_FLOAT tensor_shape {} '
        "float_val: 4 } }",
        predict_pb2.PredictResponse(),
    )


def test_prediction_with_named_classification_signature(server: ServerProcess) -> None:
    code, response = predict(
        server,
        'model_spec { name: "test_model" version { value: 123 } signature_name: '
        f'"classify_x2_to_y3" }} inputs {{ key: "inputs" value {FLOAT_2} }}',
    )
    assert code == grpc.StatusCode.OK
    assert response == text_format.Parse(
        'model_spec { name: "test_model" version { value: 123 } signature_name: '
        '"classify_x2_to_y3" } outputs { key: "scores" value { dtype: DT_FLOAT tensor_shape {} '
        "float_val: 4 } }",
        predict_pb2.PredictResponse(),
    )


@pytest.fixture(scope="module")
def counter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = upstream_testdata.write_counter(tmp_path_factory.mktemp("model") / "counter")
    with running(
        tmp_path_factory.mktemp("serve"), "--model_name=test_model", f"--model_base_path={base}"
    ) as process:
        yield process


def test_prediction_with_customized_signatures(counter_server: ServerProcess) -> None:
    """get_counter, incr_counter, reset_counter, incr_counter (with an output filter) and
    incr_counter_by(3), in upstream's order, each answering the counter after it."""
    calls = [
        ("get_counter", "", 0),
        ("incr_counter", "", 1),
        ("reset_counter", "", 0),
        ("incr_counter", "output_filter: 'output'", 1),
        ("incr_counter_by", "inputs { key: 'delta' value { dtype: DT_FLOAT float_val: 3 } }", 4),
    ]
    for signature, extra, value in calls:
        spec = (
            f'model_spec {{ name: "test_model" version {{ value: 123 }} '
            f'signature_name: "{signature}" }}'
        )
        assert predict(counter_server, f"{spec} {extra}") == (
            grpc.StatusCode.OK,
            text_format.Parse(
                f'{spec} outputs {{ key: "output" value {{ dtype: DT_FLOAT tensor_shape {{}} '
                f"float_val: {value} }} }}",
                predict_pb2.PredictResponse(),
            ),
        ), signature
