"""Changing the served models while the server runs: ModelService.HandleReloadConfigRequest and a
models.config re-read every ``--model_config_file_poll_wait_seconds``.

Texts and codes are TF Serving's (../shared/tfserving/TF_SERVING_FACTS.md, section 2 and 4).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import serving
from serverproc import ServerProcess, StartServer, spawn
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from timonel.codec.tensor_proto import from_tensor_proto, to_tensor_proto
from timonel.tfserving import ModelConfig, write_models_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(model_repo: Path) -> dict[str, ModelConfig]:
    return {
        name: ModelConfig(name=name, base_path=str(model_repo / name)) for name in ("hpt", "tf1")
    }


def _write_config(path: Path, models: list[ModelConfig]) -> None:
    """Replace ``path`` in one rename, so a poll never reads half a file."""
    staged = path.with_suffix(".staged")
    write_models_config(staged, models)
    os.replace(staged, path)


@pytest.fixture(scope="module")
def server(
    models: dict[str, ModelConfig], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server started with ``hpt`` only, whose models the tests change by reloads."""
    config = tmp_path_factory.mktemp("config") / "models.config"
    _write_config(config, [models["hpt"]])
    process = spawn(tmp_path_factory.mktemp("serve"), f"--model_config_file={config}")
    try:
        process.wait_ready()
        yield process
    finally:
        assert process.terminate() == 0


def _reload(
    server: ServerProcess, models: list[ModelConfig]
) -> model_management_pb2.ReloadConfigResponse:
    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.config.extend(model.to_proto() for model in models)
    with server.channel() as channel:
        return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            request, timeout=120
        )


def _predict(server: ServerProcess, model: str) -> list[float]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(to_tensor_proto(np.array([2.0], dtype=np.float32)))
    with server.channel() as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )
    return list(from_tensor_proto(reply.outputs["y"]).tolist())


def test_a_reload_that_adds_a_model_returns_once_the_model_serves(
    server: ServerProcess, models: dict[str, ModelConfig]
) -> None:
    reply = _reload(server, [models["hpt"], models["tf1"]])
    assert (reply.status.error_code, reply.status.error_message) == (0, "")
    assert _predict(server, "tf1") == [3.0]  # no wait: the reload returned after the load
    assert _predict(server, "hpt") == [4.0]


def test_a_reload_without_a_model_unloads_it(
    server: ServerProcess, models: dict[str, ModelConfig]
) -> None:
    _reload(server, [models["hpt"], models["tf1"]])
    reply = _reload(server, [models["tf1"]])
    assert reply.status.error_code == 0
    with pytest.raises(grpc.RpcError) as caught:
        _predict(server, "hpt")
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(hpt)",
    )
    assert _predict(server, "tf1") == [3.0]


def test_a_reload_with_another_kind_of_config_is_refused(server: ServerProcess) -> None:
    request = model_management_pb2.ReloadConfigRequest()
    request.config.custom_model_config.type_url = "type.googleapis.com/example.CustomConfig"
    with server.channel() as channel, pytest.raises(grpc.RpcError) as caught:
        model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            request, timeout=30
        )
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
        "ModelConfigList is currently supported",
    )


def test_an_edited_models_config_is_picked_up_by_the_next_poll(
    models: dict[str, ModelConfig], server_factory: StartServer, tmp_path: Path
) -> None:
    config = tmp_path / "models.config"
    _write_config(config, [models["hpt"]])
    server = server_factory(
        f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1"
    )
    _write_config(config, [models["tf1"]])
    serving_tf1 = serving.answers(f"{server.rest}/v1/models/tf1", '"AVAILABLE"')
    deadline = time.monotonic() + 120  # a hang guard only: a poll comes every second
    while not serving_tf1():
        assert time.monotonic() < deadline, server.stderr.read_text()[-3000:]
        time.sleep(0.2)
    reply = httpx.post(
        f"{server.rest}/v1/models/hpt:predict", json={"instances": [1.0]}, timeout=30
    )
    assert (reply.status_code, reply.json()) == (
        404,
        {"error": "Servable not found for request: Latest(hpt)"},
    )
