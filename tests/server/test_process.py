"""The ``timonel serve`` process: batching end to end, the body limit, SIGTERM drain, startup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from serverproc import ServerProcess, StartServer, running
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from timonel.codec.tensor_proto import to_tensor_proto
from timonel.tfserving import BatchingParameters, write_batching_parameters

pytestmark = pytest.mark.slow

#: Calls wait up to 1.5 s for company, so calls sent together meet in one batch.
BATCHING = BatchingParameters(
    max_batch_size=64, batch_timeout_micros=1_500_000, num_batch_threads=1
)


@pytest.fixture(scope="module")
def batching_flags(
    model_repo: Path, monitoring_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    params = tmp_path_factory.mktemp("batching") / "batching.config"
    write_batching_parameters(params, BATCHING)
    return [
        "--model_name=hpt",
        f"--model_base_path={model_repo / 'hpt'}",
        "--enable_batching",
        f"--batching_parameters_file={params}",
        f"--monitoring_config_file={monitoring_file}",
        "--rest_api_max_body_bytes=512",
    ]


@pytest.fixture(scope="module")
def server(
    batching_flags: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running(tmp_path_factory.mktemp("serve"), *batching_flags) as process:
        yield process


def _predict_concurrently(rest: str, count: int) -> list[httpx.Response]:
    replies: list[httpx.Response] = []

    def one(i: int) -> None:
        replies.append(
            httpx.post(f"{rest}/v1/models/hpt:predict", json={"instances": [float(i)]}, timeout=120)
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return replies


def test_concurrent_requests_run_as_one_batch(server: ServerProcess) -> None:
    replies = _predict_concurrently(server.rest, 8)
    assert sorted(r.json()["predictions"][0] for r in replies) == [3.0 + 0.5 * i for i in range(8)]
    metrics = httpx.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=10).text
    runs = (
        ':tensorflow:serving:batching_session:wrapped_run_count{thread_pool_name="batch_threads"}'
    )
    assert f"{runs} 1.0" in metrics
    assert (
        ':tensorflow:serving:batching_session:processed_batch_size_bucket{model_name="hpt"'
        in metrics
    )


def _metric(rest: str, series: str) -> float:
    text = httpx.get(f"{rest}/monitoring/prometheus/metrics", timeout=10).text
    line = next((line for line in text.splitlines() if line.startswith(f"{series} ")), None)
    return 0.0 if line is None else float(line.rsplit(" ", 1)[1])


def test_concurrent_grpc_calls_run_as_one_batch(server: ServerProcess) -> None:
    runs = (
        ':tensorflow:serving:batching_session:wrapped_run_count{thread_pool_name="batch_threads"}'
    )
    rows = (
        ":tensorflow:serving:batching_session:processed_batch_size_sum"
        '{model_name="hpt",op_name="BatchingSession"}'
    )
    runs_before, rows_before = _metric(server.rest, runs), _metric(server.rest, rows)
    outputs: dict[int, list[float]] = {}

    def one(channel: grpc.Channel, i: int) -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "hpt"
        request.inputs["x"].CopyFrom(to_tensor_proto(np.array([float(i)], dtype=np.float32)))
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )
        outputs[i] = list(reply.outputs["y"].float_val)

    with server.channel() as channel:
        callers = [threading.Thread(target=one, args=(channel, i)) for i in range(8)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(60)
    assert outputs == {i: [3.0 + 0.5 * i] for i in range(8)}
    assert _metric(server.rest, runs) == runs_before + 1
    assert _metric(server.rest, rows) == rows_before + 8


def test_a_body_over_the_limit_gets_413(server: ServerProcess) -> None:
    body = b'{"instances": [' + b"1.0, " * 200 + b"1.0]}"
    reply = httpx.post(f"{server.rest}/v1/models/hpt:predict", content=body, timeout=10)
    assert reply.status_code == 413
    assert reply.json() == {
        "error": f"Request body of {len(body)} bytes is larger than the limit of 512 bytes; send "
        "fewer instances per request, or start the server with a larger --rest_api_max_body_bytes"
    }


def test_sigterm_finishes_in_flight_requests_then_exits_cleanly(
    model_repo: Path,
    monitoring_file: Path,
    server_factory: StartServer,
    tmp_path: Path,
) -> None:
    """Four calls wait in a batch that neither fills nor times out during the test; SIGTERM
    runs it, answers them, and the process exits 0."""
    params = tmp_path / "batching.config"
    write_batching_parameters(
        params,
        BatchingParameters(
            max_batch_size=64, batch_timeout_micros=600_000_000, num_batch_threads=1
        ),
    )
    server = server_factory(
        "--model_name=hpt",
        f"--model_base_path={model_repo / 'hpt'}",
        "--enable_batching",
        f"--batching_parameters_file={params}",
        f"--monitoring_config_file={monitoring_file}",
    )
    replies: list[httpx.Response] = []
    grpc_replies: list[predict_pb2.PredictResponse] = []

    def rest_call() -> None:
        replies.extend(_predict_concurrently(server.rest, 3))

    def grpc_call() -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "hpt"
        request.inputs["x"].CopyFrom(to_tensor_proto(np.array([2.0], dtype=np.float32)))
        with server.channel() as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            grpc_replies.append(stub.Predict(request, timeout=120))

    workers = [threading.Thread(target=rest_call), threading.Thread(target=grpc_call)]
    for worker in workers:
        worker.start()
    in_flight = 'timonel_requests_in_flight{model_name="hpt",version="2"}'
    hang_guard = time.monotonic() + 120
    while _metric(server.rest, in_flight) < 4:  # until the server holds all four calls
        assert time.monotonic() < hang_guard, server.stderr.read_text()[-3000:]
        time.sleep(0.05)
    server.process.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.join(120)
    assert server.process.wait(120) == 0
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert sorted(r.json()["predictions"][0] for r in replies) == [3.0, 3.5, 4.0]
    assert len(grpc_replies) == 1
    assert list(grpc_replies[0].outputs["y"].float_val) == [4.0]
    assert server.stdout.read_text() == ""
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.rest}/v1/models/hpt", timeout=5)
    with (
        grpc.insecure_channel(server.grpc_target) as channel,
        pytest.raises(grpc.FutureTimeoutError),
    ):
        grpc.channel_ready_future(channel).result(timeout=1)


def _serve(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timonel", "serve", "--port=0", "--rest_api_port=0", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_startup_without_a_grpc_listener_fails_like_tf_serving() -> None:
    result = _serve("--model_base_path=/m")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == (
        "Failed to start server. Error: INVALID_ARGUMENT: At least one of "
        "server_options.grpc_port or server_options.grpc_socket_path must be set."
    )


def test_startup_without_a_model_fails_like_tf_serving(tmp_path: Path) -> None:
    result = _serve(f"--grpc_socket_path={tmp_path / 'grpc.sock'}")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "Failed to start server. Error: INVALID_ARGUMENT: Both server_options.model_base_path and "
        "server_options.model_config_file are empty!"
    )


def test_startup_with_a_model_that_cannot_load_fails(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "saved_model.pb").write_bytes(b"garbage")
    result = _serve(
        "--model_name=m",
        f"--model_base_path={tmp_path / 'm'}",
        "--max_num_load_retries=0",
        f"--grpc_socket_path={tmp_path / 'grpc.sock'}",
    )
    assert result.returncode == 1
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "Failed to start server. Error: UNKNOWN: 1 servable(s) did not become available: "
        "{{{name: m version: 1} due to error: "
    )


def test_flags_keep_tf_servings_syntax() -> None:
    from timonel.cli.serve import options_from_args

    options = options_from_args(
        [
            "--model_base_path=/m",
            "--enable_batching",
            "--enable_model_warmup=false",
            "--port",
            "9000",
        ]
    )
    assert (options.enable_batching, options.enable_model_warmup, options.port) == (
        True,
        False,
        9000,
    )
    assert (options.rest_api_port, options.host, options.model_name) == (
        8501,
        "127.0.0.1",
        "default",
    )
