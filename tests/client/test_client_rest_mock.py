"""The REST client through httpx.MockTransport: headers, retries, error mapping, timeouts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from timonel import AsyncClient, Client, Retry, ServingError, SpecError
from timonel.codec.status import code_for_http_status

FAST = Retry(attempts=3, backoff=0.001, jitter=False)
METADATA = {
    "model_spec": {"name": "half", "signature_name": "", "version": "1"},
    "metadata": {
        "signature_def": {
            "signature_def": {
                "serving_default": {
                    "inputs": {
                        "x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": []}, "name": "x:0"}
                    },
                    "outputs": {
                        "y": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": []}, "name": "y:0"}
                    },
                    "method_name": "tensorflow/serving/predict",
                }
            }
        }
    },
}


class Server:
    """Answers like TF Serving for half_plus_two; fails the first ``failures`` calls with 503."""

    def __init__(self, failures: int = 0, status: int = 503) -> None:
        self.failures = failures
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failures:
            self.failures -= 1
            return httpx.Response(self.status, json={"error": "server is draining"})
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json=METADATA)
        body = json.loads(request.content)
        values = np.asarray(body["inputs"]["x"], np.float32)
        return httpx.Response(200, json={"outputs": (values * 0.5 + 2).tolist()})


def client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Client:
    kwargs.setdefault("retry", FAST)
    return Client("http://serving.test:8501", transport=httpx.MockTransport(handler), **kwargs)


def test_predict_sends_the_host_header_and_returns_typed_arrays() -> None:
    server = Server()
    with client(server, host="half.default.example.com") as c:
        outputs = c.predict("half", [1.0, 2.0])
    assert outputs["y"].dtype == np.float32
    assert outputs["y"].tolist() == [2.5, 3.0]
    assert {r.headers["host"] for r in server.requests} == {"half.default.example.com"}
    assert [r.url.path for r in server.requests] == [
        "/v1/models/half/metadata",
        "/v1/models/half:predict",
    ]


def test_metadata_is_asked_once_per_model_version_and_label() -> None:
    server = Server()
    with client(server) as c:
        for _ in range(3):
            c.predict("half", np.ones(2))
        c.predict("half", np.ones(2), version=1)
    paths = [r.url.path for r in server.requests]
    assert paths.count("/v1/models/half/metadata") == 1
    assert paths.count("/v1/models/half/versions/1/metadata") == 1


def test_float64_input_is_cast_to_the_signature_dtype() -> None:
    server = Server()
    with client(server) as c:
        c.predict("half", {"x": np.array([0.1])})
    assert json.loads(server.requests[-1].content) == {"inputs": {"x": [0.1]}}


@pytest.mark.parametrize("status", [503, 502])
def test_unavailable_is_retried_until_it_succeeds(status: int) -> None:
    server = Server(failures=2, status=status)
    with client(server) as c:
        assert c.predict_json("half", {"inputs": {"x": [1.0]}}) == {"outputs": [2.5]}
    assert len(server.requests) == 3


def test_retries_are_bounded() -> None:
    server = Server(failures=10)
    with client(server) as c, pytest.raises(ServingError, match="server is draining") as info:
        c.predict_json("half", {"inputs": [1.0]})
    assert info.value.code == "UNAVAILABLE"
    assert len(server.requests) == FAST.attempts


def test_other_errors_are_not_retried_and_keep_the_server_message() -> None:
    requests = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(404, json={"error": "Servable not found for request: Latest(nope)"})

    with client(handler) as c, pytest.raises(ServingError) as info:
        c.model_status("nope")
    assert str(info.value) == "Servable not found for request: Latest(nope)"
    assert info.value.code == "NOT_FOUND"
    assert len(requests) == 1


def test_a_reply_without_a_tf_serving_body_says_where_it_came_from() -> None:
    reply = httpx.Response(404, text="<html>nope</html>")
    with client(lambda r: reply) as c, pytest.raises(ServingError) as info:
        c.model_status("half")
    assert str(info.value) == (
        "HTTP 404 from http://serving.test:8501/v1/models/half without a TF Serving error body "
        "(<html>nope</html>); check that the URL points at a TF-Serving-compatible REST port"
    )


def test_a_timeout_is_deadline_exceeded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with client(handler, timeout=0.5) as c, pytest.raises(ServingError) as info:
        c.model_status("half")
    assert info.value.code == "DEADLINE_EXCEEDED"
    assert str(info.value) == (
        "no reply from http://serving.test:8501/v1/models/half within 0.5 s; raise the timeout "
        "or check the server's load"
    )


def test_a_refused_connection_is_unavailable_and_retried() -> None:
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("Connection refused", request=request)

    with client(handler) as c, pytest.raises(ServingError, match="cannot reach") as info:
        c.model_status("half")
    assert info.value.code == "UNAVAILABLE"
    assert len(attempts) == FAST.attempts


def test_async_client_retries_and_sends_the_host_header() -> None:
    server = Server(failures=1)

    async def run() -> dict[str, Any]:
        async with AsyncClient(
            "http://serving.test:8501",
            host="half.ns.example.com",
            retry=FAST,
            transport=httpx.MockTransport(server),
        ) as c:
            return await c.predict("half", [1.0])

    outputs = asyncio.run(run())
    assert outputs["y"].tolist() == [2.5]
    assert {r.headers["host"] for r in server.requests} == {"half.ns.example.com"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "cannot use 'ftp://x' as a model server URL"),
        ("http://", "cannot use 'http://' as a model server URL"),
    ],
)
def test_a_bad_url_is_a_spec_error(url: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Client(url)


def test_a_signature_the_model_lacks_is_named() -> None:
    with client(Server()) as c, pytest.raises(ServingError) as info:
        c.predict("half", [1.0], signature="nope")
    assert str(info.value) == (
        'Serving signature name: "nope" not found in signature def; model half version 1 has '
        "serving_default"
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "INVALID_ARGUMENT"),
        (404, "NOT_FOUND"),
        (409, "ABORTED"),
        (413, "RESOURCE_EXHAUSTED"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (501, "UNIMPLEMENTED"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (418, "INVALID_ARGUMENT"),
        (599, "UNKNOWN"),
    ],
)
def test_http_statuses_map_back_to_canonical_codes(status: int, code: str) -> None:
    assert code_for_http_status(status) == code


@pytest.mark.parametrize(
    ("retry", "delays"),
    [
        (Retry(attempts=1), []),
        (Retry(attempts=4, backoff=0.1, jitter=False), [0.1, 0.2, 0.4]),
        (Retry(attempts=5, backoff=1, multiplier=3, max_backoff=5, jitter=False), [1, 3, 5, 5]),
    ],
)
def test_backoff_grows_and_is_capped(retry: Retry, delays: list[float]) -> None:
    assert list(retry.delays()) == pytest.approx(delays)


def test_jitter_keeps_delays_within_half_and_full() -> None:
    jittered, plain = Retry(attempts=6).delays(), Retry(attempts=6, jitter=False).delays()
    for delay, full in zip(jittered, plain, strict=True):
        assert full / 2 <= delay <= full


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), "30", True])
@pytest.mark.parametrize("make", [Client, AsyncClient])
def test_a_timeout_that_is_not_seconds_above_zero_is_a_spec_error(
    make: type[Client] | type[AsyncClient], timeout: Any
) -> None:
    with pytest.raises(SpecError) as info:
        make("http://serving.test:8501", timeout=timeout)
    assert str(info.value) == (
        "timeout must be a finite number of seconds above 0 (how long each try of a call may "
        f"take), got {timeout!r}; give e.g. 30"
    )
    assert info.value.field == "timeout"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"attempts": 0},
            "Retry.attempts must be 1 or more (the first try counts), got 0; give e.g. "
            "Retry(attempts=4), or Retry(attempts=1) for no retry",
        ),
        (
            {"attempts": 2.5},
            "Retry.attempts must be a whole number of tries, got 2.5; give e.g. "
            "Retry(attempts=4), or Retry(attempts=1) for no retry",
        ),
        (
            {"backoff": -0.1},
            "Retry.backoff must be a finite number of seconds, 0 or more, got -0.1; give e.g. "
            "Retry(backoff=0.1)",
        ),
        (
            {"max_backoff": float("inf")},
            "Retry.max_backoff must be a finite number of seconds, 0 or more, got inf; give "
            "e.g. Retry(max_backoff=2)",
        ),
        (
            {"multiplier": 0.5},
            "Retry.multiplier must be a finite number, 1 or more, got 0.5; give e.g. "
            "Retry(multiplier=2)",
        ),
    ],
)
def test_a_retry_that_cannot_be_followed_is_a_spec_error(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as info:
        Retry(**fields)
    assert str(info.value) == message
    assert info.value.field == f"retry.{next(iter(fields))}"


def test_a_value_that_is_no_tensor_names_its_input_and_is_never_sent() -> None:
    server = Server()
    with client(server) as rest, pytest.raises(SpecError) as caught:
        rest.predict("half", {"x": [1.0], "mask": {"a": 1}})
    assert str(caught.value).startswith(
        "input 'mask': a string tensor holds bytes or str, not dict ({'a': 1}); give a numpy array"
    )
    assert [request.url.path for request in server.requests] == ["/v1/models/half/metadata"]
