"""A model call slower than its timeout ends with DEADLINE_EXCEEDED, as in TF Serving: REST calls
get ``--rest_api_timeout_in_ms`` (HTTP 504), gRPC calls the time left of the client's deadline.

The model spins for as many loop steps as asked (``tfmodels.write_spin``), so a call is made slow
by its input alone; TensorFlow cancels it at the timeout and the server goes on serving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tfmodels
from serverproc import ServerProcess, spawn
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from timonel.codec.tensor_proto import to_tensor_proto

pytestmark = pytest.mark.slow

#: loop steps no call can finish before its timeout (days of work)
FOREVER = 10**12


@pytest.fixture(scope="module")
def server(
    monitoring_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("models") / "spin"
    tfmodels.write_spin(base / "1")
    process = spawn(
        tmp_path_factory.mktemp("serve"),
        "--model_name=spin",
        f"--model_base_path={base}",
        "--rest_api_timeout_in_ms=2000",
        f"--monitoring_config_file={monitoring_file}",
    )
    try:
        process.wait_ready()
        yield process
    finally:
        assert process.terminate() == 0


def _rest(server: ServerProcess, spins: int) -> httpx.Response:
    body = {"inputs": {"x": [1.0], "spins": spins}}
    return httpx.post(f"{server.rest}/v1/models/spin:predict", json=body, timeout=60)


def _grpc(server: ServerProcess, spins: int, deadline: float | None) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "spin"
    request.inputs["x"].CopyFrom(to_tensor_proto(np.array([1.0], dtype=np.float32)))
    request.inputs["spins"].CopyFrom(to_tensor_proto(np.array(spins, dtype=np.int64)))
    with server.channel() as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=deadline
        )


def _timed_out(server: ServerProcess, *statuses: str) -> int:
    """Calls the server ended with one of ``statuses`` (DEADLINE_EXCEEDED when none is named),
    from its request_count metric."""
    metrics = httpx.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=30).text
    total = 0
    for status in statuses or ("DEADLINE_EXCEEDED",):
        series = f':tensorflow:serving:request_count{{model_name="spin",status="{status}"}}'
        line = next((line for line in metrics.splitlines() if line.startswith(series)), None)
        total += 0 if line is None else int(float(line.rsplit(" ", 1)[1]))
    return total


def test_a_rest_call_within_the_timeout_answers(server: ServerProcess) -> None:
    reply = _rest(server, 3)
    assert (reply.status_code, reply.json()) == (200, {"outputs": [4.0]})


def test_a_rest_call_slower_than_the_timeout_gets_504(server: ServerProcess) -> None:
    before = _timed_out(server)
    reply = _rest(server, FOREVER)
    assert (reply.status_code, reply.json()) == (
        504,
        {"error": "Timed out waiting for notification"},
    )
    assert _timed_out(server) == before + 1
    assert _rest(server, 3).status_code == 200


def test_quick_calls_before_a_slow_one_leave_its_timeout_to_tensorflow(
    server: ServerProcess,
) -> None:
    """A loop may run for any time, so however quick the calls before, a slow one still runs
    where TensorFlow can cancel it, and the server answers others meanwhile."""
    for _ in range(200):
        assert _rest(server, 0).status_code == 200
    started = time.monotonic()
    reply = _rest(server, FOREVER)
    assert reply.status_code == 504
    assert time.monotonic() - started < 30


def test_a_grpc_call_is_stopped_by_the_server_at_the_clients_deadline(
    server: ServerProcess,
) -> None:
    assert list(_grpc(server, 3, deadline=30).outputs["y"].float_val) == [4.0]
    # The client cancels the call at its deadline too; when its RST_STREAM reaches the server
    # before the server's own timer fires, the server ends the call as CANCELLED.
    ended = ("DEADLINE_EXCEEDED", "CANCELLED")
    before = _timed_out(server, *ended)
    with pytest.raises(grpc.RpcError) as caught:
        _grpc(server, FOREVER, deadline=1.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 60  # a hang guard only: the server ends the call at 1.5 s
    while _timed_out(server, *ended) == before:
        assert time.monotonic() < deadline, "the server never ended the call"
        time.sleep(0.2)
    assert list(_grpc(server, 3, deadline=30).outputs["y"].float_val) == [4.0]


def test_a_grpc_call_without_a_deadline_has_no_timeout(server: ServerProcess) -> None:
    assert list(_grpc(server, 3, deadline=None).outputs["y"].float_val) == [4.0]
