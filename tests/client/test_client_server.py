"""The client against a real ``timonel serve``: REST and gRPC, sync and async, alike."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from timonel import AsyncClient, Client, ModelVersionStatus, Retry, ServingError, SpecError

pytestmark = pytest.mark.slow

NO_RETRY = Retry(attempts=1)


def test_predict_returns_typed_arrays(url: str) -> None:
    with Client(url) as client:
        outputs = client.predict("half", np.array([1.0, 2.0, 5.0]))
    assert outputs["y"].dtype == np.float32
    assert outputs["y"].tolist() == [2.5, 3.0, 4.5]


def test_version_selection(url: str) -> None:
    with Client(url) as client:
        assert client.predict("half", {"x": [0.0]}, version=1)["y"].tolist() == [2.0]


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        ({"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
        ({"inputs": {"x": [1.0, 2.0]}}, {"outputs": [2.5, 3.0]}),
        ({"signature_name": "serving_default", "inputs": [4]}, {"outputs": [4.0]}),
    ],
)
def test_rest_json_gets_the_same_answer_over_both_protocols(
    url: str, body: dict[str, Any], reply: dict[str, Any]
) -> None:
    with Client(url) as client:
        assert client.predict_json("half", body) == reply


def test_model_status_and_metadata(url: str) -> None:
    with Client(url) as client:
        assert client.model_status("half") == [ModelVersionStatus(1, "AVAILABLE")]
        metadata = client.metadata("half")
    assert (metadata.name, metadata.version) == ("half", 1)
    signature = metadata.signatures["serving_default"]
    assert signature.inputs["x"].dtype == "DT_FLOAT"
    assert signature.outputs["y"].dtype == "DT_FLOAT"


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (
            lambda c: c.predict("nope", [1.0]),
            "NOT_FOUND",
            "Servable not found for request: Latest(nope)",
        ),
        (
            lambda c: c.predict("half", [1.0], version=9),
            "NOT_FOUND",
            "Servable not found for request: Specific(half, 9)",
        ),
        (
            lambda c: c.model_status("half", version=9),
            "NOT_FOUND",
            "Could not find version 9 of model half",
        ),
        (
            lambda c: c.predict_json("half", {"instances": ["x"]}),
            "INVALID_ARGUMENT",
            'JSON Value: "x" Type: String is not of expected type: float',
        ),
    ],
)
def test_errors_carry_the_same_code_and_message_over_both_protocols(
    url: str, call: Any, code: str, message: str
) -> None:
    with Client(url, retry=NO_RETRY) as client, pytest.raises(ServingError) as info:
        call(client)
    assert info.value.code == code
    assert message in str(info.value)


def test_async_client(url: str) -> None:
    async def run() -> list[Any]:
        async with AsyncClient(url) as client:
            return await asyncio.gather(
                client.predict("half", [1.0]),
                client.predict_json("half", {"instances": [2.0]}),
                client.model_status("half"),
            )

    outputs, reply, status = asyncio.run(run())
    assert outputs["y"].tolist() == [2.5]
    assert reply == {"predictions": [3.0]}
    assert status == [ModelVersionStatus(1, "AVAILABLE")]


NOT_A_TENSOR = (
    "give a numpy array, a number, a string, or a rectangular (nested) list of numbers, strings "
    "or bytes"
)


@pytest.mark.parametrize(
    ("inputs", "why"),
    [
        (object(), "a string tensor holds bytes or str, not object"),
        ({"x": {1.0, 2.0}}, "a string tensor holds bytes or str, not set"),
        ([[1.0, 2.0], [3.0]], "inhomogeneous shape"),
    ],
    ids=["object", "set", "ragged"],
)
def test_a_value_that_is_no_tensor_is_a_spec_error_naming_the_input(
    url: str, inputs: Any, why: str
) -> None:
    async def predict_async() -> None:
        async with AsyncClient(url) as client:
            await client.predict("half", inputs)

    with Client(url) as client, pytest.raises(SpecError) as blocking:
        client.predict("half", inputs)
    with pytest.raises(SpecError) as awaited:
        asyncio.run(predict_async())
    for caught in (blocking, awaited):
        message = str(caught.value)
        assert message.startswith("input 'x': ") and why in message, message
        assert message.endswith(NOT_A_TENSOR)
        assert caught.value.field == "inputs.x"


def test_host_header_does_not_change_the_answer(url: str) -> None:
    with Client(url, host="half.default.example.com") as client:
        assert client.predict("half", [0.0])["y"].tolist() == [2.0]


def test_a_closed_port_is_unavailable_after_bounded_retries() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}", f"grpc://127.0.0.1:{port}"):
        client = Client(url, retry=Retry(attempts=2, backoff=0.01), timeout=5)
        with client, pytest.raises(ServingError) as info:
            client.model_status("half")
        assert info.value.code == "UNAVAILABLE"
        assert f"127.0.0.1:{port}" in str(info.value)
