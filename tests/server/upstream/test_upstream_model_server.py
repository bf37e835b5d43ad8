"""TensorFlow Serving's ``model_servers/tensorflow_model_server_test.py``, run against
``timonel serve``.

Each case keeps upstream's requests and expected answers; servers start with the flags
upstream's ``RunServer`` passes (``--rest_api_timeout_in_ms=5000``, ``--grpc_socket_path``,
``--grpc_channel_arguments=...,grpc.so_reuseaddr=1``), one per set of arguments as upstream
caches them. Test models are built at test time as upstream's testdata
(``upstream_testdata.py``); ``half_plus_two_model_metadata.json`` is upstream's file.

Not ported: ``testPredictOnTfLite`` and ``testPredictWithSignatureDefOnTfLite`` (TF Lite is not
built in), ``test_profiler_service_with_valid_trace_request`` (no profiler service),
``test_tf_text`` (needs the tensorflow-text ops and upstream's binary model),
``test_distrat_sequential_keras_saved_model_save`` (needs virtual CPUs configured in the test
process before TensorFlow starts) and ``_TestBadModel`` (not run upstream either).
Keras models are built with tf_keras (Keras 2), the ``tf.keras`` upstream's test was written for.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import upstream_testdata
from serverproc import ServerProcess, spawn
from tensorflow.core.framework import types_pb2
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

pytestmark = pytest.mark.slow

RPC_TIMEOUT = 20.0
HTTP_REST_TIMEOUT_MS = 5000
HERE = Path(__file__).parent


class UpstreamTestdata:
    """Upstream's ``servables/tensorflow/testdata``, built once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.half_plus_two = upstream_testdata.write_half_plus_two(root / "half_plus_two_cpu")
        self.half_plus_three = upstream_testdata.write_half_plus_two(
            root / "saved_model_half_plus_three", b=3.0
        )
        self.half_plus_two_tf2 = upstream_testdata.write_half_plus_two_tf2(
            root / "saved_model_half_plus_two_tf2_cpu"
        )
        self.good_model_config = root / "good_model_config.conf"
        self.good_model_config.write_text(
            upstream_testdata.GOOD_MODEL_CONFIG.replace(
                "${TEST_HALF_PLUS_TWO_DIR}", str(self.half_plus_two)
            ).replace("${TEST_HALF_PLUS_THREE_DIR}", str(self.half_plus_three))
        )
        self.bad_model_config = root / "bad_model_config.txt"
        self.bad_model_config.write_text(upstream_testdata.BAD_MODEL_CONFIG)
        self.monitoring_config = root / "monitoring_config.txt"
        self.monitoring_config.write_text(upstream_testdata.MONITORING_CONFIG)


@pytest.fixture(scope="session")
def testdata(tmp_path_factory: pytest.TempPathFactory) -> UpstreamTestdata:
    return UpstreamTestdata(tmp_path_factory.mktemp("testdata"))


RunServer = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def run_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunServer]:
    """Upstream's ``RunServer``: one server per set of arguments, kept for the module."""
    servers: dict[tuple[Any, ...], ServerProcess] = {}

    def run(
        model_name: str | None,
        model_path: Path | None,
        *,
        model_config_file: Path | None = None,
        monitoring_config_file: Path | None = None,
        grpc_channel_arguments: str = "",
        wait_for_server_ready: bool = True,
        model_config_file_poll_period: int | None = None,
    ) -> ServerProcess:
        key = (model_name, model_path, model_config_file, monitoring_config_file,
               grpc_channel_arguments, model_config_file_poll_period)  # fmt: skip
        if key in servers:
            return servers[key]
        tmp = tmp_path_factory.mktemp("serve")
        flags = [
            f"--rest_api_timeout_in_ms={HTTP_REST_TIMEOUT_MS}",
            f"--grpc_socket_path={tmp / 'tf-serving.sock'}",
        ]
        if model_config_file:
            flags.append(f"--model_config_file={model_config_file}")
        elif model_path:
            flags += [f"--model_name={model_name}", f"--model_base_path={model_path}"]
        if monitoring_config_file:
            flags.append(f"--monitoring_config_file={monitoring_config_file}")
        if model_config_file_poll_period is not None:
            flags.append(f"--model_config_file_poll_wait_seconds={model_config_file_poll_period}")
        channel_arguments = ",".join(
            a for a in (grpc_channel_arguments, "grpc.so_reuseaddr=1") if a
        )
        flags.append(f"--grpc_channel_arguments={channel_arguments}")
        server = spawn(tmp, *flags)
        server.socket_path = tmp / "tf-serving.sock"  # type: ignore[attr-defined]
        if wait_for_server_ready:
            server.wait_ready()
        servers[key] = server
        return server

    yield run
    for server in servers.values():
        server.terminate()


def model_version(model_path: Path) -> int:
    return int(next(model_path.iterdir()).name)


def verify_model_spec(spec: Any, name: str, signature_name: str, version: int) -> None:
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature_name, version)


def verify_predict_request(
    address: str,
    expected_output: float,
    expected_version: int,
    model_name: str = "default",
    specify_output: bool = True,
    batch_input: bool = False,
    signature_name: str = "serving_default",
) -> None:
    """Upstream's ``VerifyPredictRequest``."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    with grpc.insecure_channel(address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, RPC_TIMEOUT
        )
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected_output
    verify_model_spec(result.model_spec, model_name, signature_name, expected_version)


def call_rest(url: str, body: Any = None) -> Any:
    reply = (
        httpx.post(url, json=body, timeout=RPC_TIMEOUT)
        if body is not None
        else httpx.get(url, timeout=RPC_TIMEOUT)
    )
    assert reply.status_code == 200, reply.text
    return json.loads(reply.content)


def sorted_object(obj: Any) -> Any:
    """Upstream's ``SortedObject``."""
    if isinstance(obj, dict):
        return sorted((k, sorted_object(v)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return sorted(sorted_object(x) for x in obj)
    return obj


def test_get_model_status(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    with server.channel() as channel:
        result = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            request, RPC_TIMEOUT
        )
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0


def test_get_model_metadata(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    with server.channel() as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            request, RPC_TIMEOUT
        )
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == model_version(testdata.half_plus_two)
    assert len(result.metadata) == 1
    assert "signature_def" in result.metadata


def _classify(server: ServerProcess, model_path: Path) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    with server.channel() as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(
            request, RPC_TIMEOUT
        )
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    verify_model_spec(result.model_spec, "default", "classify_x_to_y", model_version(model_path))


def test_classify(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    _classify(run_server("default", testdata.half_plus_two), testdata.half_plus_two)


def test_classify_tf2(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    _classify(run_server("default", testdata.half_plus_two_tf2), testdata.half_plus_two_tf2)


def _regress(server: ServerProcess, model_path: Path) -> None:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    with server.channel() as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Regress(
            request, RPC_TIMEOUT
        )
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    verify_model_spec(result.model_spec, "default", "regress_x_to_y", model_version(model_path))


def test_regress(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    _regress(run_server("default", testdata.half_plus_two), testdata.half_plus_two)


def test_regress_tf2(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    _regress(run_server("default", testdata.half_plus_two_tf2), testdata.half_plus_two_tf2)


def _multi_inference(server: ServerProcess, model_path: Path) -> None:
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = "default"
    request.tasks[0].model_spec.signature_name = "regress_x_to_y"
    request.tasks[0].method_name = "tensorflow/serving/regress"
    request.tasks.add().model_spec.name = "default"
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    with server.channel() as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).MultiInference(
            request, RPC_TIMEOUT
        )
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for i in range(2):
        verify_model_spec(
            result.results[i].model_spec,
            request.tasks[i].model_spec.name,
            request.tasks[i].model_spec.signature_name,
            model_version(model_path),
        )


def test_multi_inference(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    _multi_inference(run_server("default", testdata.half_plus_two), testdata.half_plus_two)


def test_multi_inference_tf2(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two_tf2)
    _multi_inference(server, testdata.half_plus_two_tf2)


def test_predict_saved_model(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    """Upstream's ``_TestPredict``."""
    server = run_server("default", testdata.half_plus_two)
    version = model_version(testdata.half_plus_two)
    verify_predict_request(server.grpc_target, 3.0, version)
    verify_predict_request(server.grpc_target, 3.0, version, specify_output=False)


def test_good_model_config(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server(None, None, model_config_file=testdata.good_model_config)
    two, three = model_version(testdata.half_plus_two), model_version(testdata.half_plus_three)
    for specify_output in (True, False):
        verify_predict_request(
            server.grpc_target, 3.0, two, "half_plus_two", specify_output=specify_output
        )
        verify_predict_request(
            server.grpc_target, 4.0, three, "half_plus_three", specify_output=specify_output
        )


def test_bad_model_config(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server(
        None, None, model_config_file=testdata.bad_model_config, wait_for_server_ready=False
    )
    try:
        server.process.wait(120)
    except subprocess.TimeoutExpired:
        pytest.fail("the server started with an unparsable model config")
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in (
        server.stderr.read_text()
    )


_BASE_CONFIG = """
    model_config_list: {{
      config: {{
        name: "{name}",
        base_path: "{model_path}",
        model_platform: "tensorflow"
      }}
    }}
    """


def _reload(
    run_server: RunServer, testdata: UpstreamTestdata, tmp_path: Path, poll_period: int
) -> tuple[ServerProcess, Path]:
    config_path = tmp_path / "model_config.txt"
    config_path.write_text(
        _BASE_CONFIG.format(name="half_plus_two", model_path=testdata.half_plus_two)
    )
    server = run_server(
        None, None, model_config_file=config_path, model_config_file_poll_period=poll_period
    )
    verify_predict_request(
        server.grpc_target,
        3.0,
        model_version(testdata.half_plus_two),
        "half_plus_two",
        specify_output=False,
    )
    config_path.write_text(
        _BASE_CONFIG.format(name="half_plus_three", model_path=testdata.half_plus_three)
    )
    return server, config_path


def test_model_config_reload(
    run_server: RunServer, testdata: UpstreamTestdata, tmp_path: Path
) -> None:
    server, _ = _reload(run_server, testdata, tmp_path, poll_period=1)
    time.sleep(10)  # upstream gives the server 10 s to poll and load the new config
    verify_predict_request(
        server.grpc_target,
        4.0,
        model_version(testdata.half_plus_three),
        "half_plus_three",
        specify_output=False,
    )


def test_model_config_reload_with_zero_poll_period(
    run_server: RunServer, testdata: UpstreamTestdata, tmp_path: Path
) -> None:
    server, _ = _reload(run_server, testdata, tmp_path, poll_period=0)
    time.sleep(0 + 1)
    verify_predict_request(
        server.grpc_target,
        3.0,
        model_version(testdata.half_plus_three),
        "half_plus_two",
        specify_output=False,
    )


def test_good_grpc_channel_args(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server(
        "default",
        testdata.half_plus_two,
        grpc_channel_arguments="grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
    )
    verify_predict_request(
        server.grpc_target,
        3.0,
        model_version(testdata.half_plus_three),
        specify_output=False,
    )


def test_classify_rest(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert call_rest(f"{server.rest}/v1/models/default:classify", body) == {
        "results": [[["", 3.0]]]
    }


def test_regress_rest(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert call_rest(f"{server.rest}/v1/models/default:regress", body) == {"results": [3.0]}


def test_predict_rest(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    assert call_rest(
        f"{server.rest}/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}
    ) == {"predictions": [3.0, 3.5, 4.0]}


def test_predict_columnar_rest(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    assert call_rest(f"{server.rest}/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]}) == {
        "outputs": [3.0, 3.5, 4.0]
    }


def test_get_status_rest(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    assert call_rest(f"{server.rest}/v1/models/default") == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_get_model_metadata_rest(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    expected = json.loads((HERE / "half_plus_two_model_metadata.json").read_text())
    reply = call_rest(f"{server.rest}/v1/models/default/metadata")
    assert sorted_object(reply) == sorted_object(expected)


def test_prometheus_endpoint(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server(
        "default", testdata.half_plus_two, monitoring_config_file=testdata.monitoring_config
    )
    reply = httpx.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=RPC_TIMEOUT)
    assert "# TYPE" in reply.text


def test_predict_uds(run_server: RunServer, testdata: UpstreamTestdata) -> None:
    server = run_server("default", testdata.half_plus_two)
    verify_predict_request(
        f"unix:{server.socket_path}",  # type: ignore[attr-defined]
        3.0,
        model_version(testdata.half_plus_three),
        specify_output=False,
    )


def _saved(tmp_path: Path, save: Callable[[Path], None]) -> Path:
    base = tmp_path / "tf_saved_model_save"
    save(base / "00000123")
    return base


def test_tf_saved_model_save(run_server: RunServer, tmp_path: Path) -> None:
    import tensorflow as tf

    def save(export_path: Path) -> None:
        root = tf.train.Checkpoint()
        root.v1 = tf.Variable(3.0)
        root.v2 = tf.Variable(2.0)
        root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
        to_save = root.f.get_concrete_function(tf.TensorSpec(None, tf.float32))
        tf.saved_model.save(root, str(export_path), to_save)

    base = _saved(tmp_path, save)
    server = run_server("default", base)
    verify_predict_request(server.grpc_target, 12.0, model_version(base), specify_output=False)


def test_tf_saved_model_save_multiple_signatures(run_server: RunServer, tmp_path: Path) -> None:
    import tensorflow as tf

    def save(export_path: Path) -> None:
        root = tf.train.Checkpoint()
        root.f = tf.function(
            lambda x: {"y": 1.0}, input_signature=[tf.TensorSpec(None, tf.float32)]
        )
        root.g = tf.function(
            lambda x: {"y": 2.0}, input_signature=[tf.TensorSpec(None, tf.float32)]
        )
        tf.saved_model.save(
            root,
            str(export_path),
            signatures={"serving_default": root.f, "custom_signature_key": root.g},
        )

    base = _saved(tmp_path, save)
    server = run_server("default", base)
    version = model_version(base)
    verify_predict_request(server.grpc_target, 2.0, version, signature_name="custom_signature_key")
    verify_predict_request(server.grpc_target, 1.0, version)


def test_sequential_keras_saved_model_save(run_server: RunServer, tmp_path: Path) -> None:
    """Upstream's ``tf.keras`` is Keras 2, whose SavedModel names the output after the last
    layer (``y``); Keras 3 names it ``output_0``. The model is built with tf_keras, Keras 2 as
    a package, so the server is checked on the model upstream's test saves."""
    import tensorflow as tf
    import tf_keras

    def save(export_path: Path) -> None:
        model = tf_keras.models.Sequential()
        model.add(tf_keras.layers.Input(dtype="float32", shape=(1,), name="x"))
        model.add(tf_keras.layers.Lambda(lambda x: x, name="y"))
        tf.saved_model.save(model, str(export_path))

    base = _saved(tmp_path, save)
    server = run_server("default", base)
    verify_predict_request(
        server.grpc_target, 2.0, model_version(base), batch_input=True, specify_output=False
    )
