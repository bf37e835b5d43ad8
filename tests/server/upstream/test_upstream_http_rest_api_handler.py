"""TensorFlow Serving's ``model_servers/http_rest_api_handler_test.cc``, as HTTP requests against
``timonel serve``.

Upstream calls ``HttpRestApiHandler::ProcessRequest`` with a method, a path and a body and checks
the status code and a substring of its message; here the same requests cross the REST port, the
code is read from the HTTP status TF Serving maps it to (``http_server.cc``, ``ToHTTPStatusCode``)
and the message from the JSON ``error``. The server is set up as upstream's ``CreateServerCore``:
half_plus_two at version 123 (``specific`` policy) with the label ``Version_Label`` on it.

``saved_model_half_plus_two_2_versions_metadata.json`` is upstream's file; the model it describes
is TensorFlow's half_plus_two (with ``classify_x2_to_y3``), as built here.

Not ported: ``kPathRegex`` (a check of the handler's regular expression, not of an answer).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import upstream_testdata
from google.protobuf import text_format
from serverproc import ServerProcess, spawn
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

pytestmark = pytest.mark.slow

MODEL = "saved_model_half_plus_two_2_versions"
VERSION = 123
LABEL = "Version_Label"
MISSING_LABEL = "Version_Nonexistent"
HERE = Path(__file__).parent
HTTP_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 412: "FAILED_PRECONDITION"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Started without labels, then reloaded with them, as upstream: a label in the first
    config would name a version not loaded yet, which ServerCore refuses."""
    root = tmp_path_factory.mktemp("handler")
    base = upstream_testdata.write_half_plus_two(root / "half_plus_two", tensorflow_testdata=True)
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(
        name=MODEL, base_path=str(base), model_platform="tensorflow"
    )
    model.model_version_policy.specific.versions.append(VERSION)
    path = root / "models.config"
    path.write_text(text_format.MessageToString(config))
    process = spawn(tmp_path_factory.mktemp("serve"), f"--model_config_file={path}")
    try:
        process.wait_ready()
        model.version_labels[LABEL] = VERSION
        with process.channel() as channel:
            reply = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                model_management_pb2.ReloadConfigRequest(config=config), timeout=30
            )
        assert reply.status.error_code == 0, reply.status.error_message
        yield process
    finally:
        process.terminate()


def process_request(server: ServerProcess, method: str, path: str, body: str = "") -> Any:
    """``ProcessRequest``: (code, message or parsed output, headers)."""
    reply = httpx.request(method, server.rest + path, content=body.encode(), timeout=30)
    output = json.loads(reply.content) if reply.content else {}
    if reply.status_code == 200:
        return "OK", output, reply.headers
    return HTTP_CODES.get(reply.status_code, str(reply.status_code)), output["error"], reply.headers


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/v1/foo", "Malformed request"),
        ("POST", "/v1/foo", "Malformed request"),
        ("GET", "/v1/models", "Missing model name"),
        ("GET", "/v1/models/debug/model_name", "Malformed request"),
        ("POST", "/v1/models", "Malformed request"),
        ("GET", "/v1/models/foo:predict", "Malformed request"),
        ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
        ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
        ("POST", f"/v1/models/foo/versions/{2**64 - 1}:regress", "Failed to convert version"),
        ("POST", "/v1/models/foo/metadata", "Malformed request"),
        ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
    ],
)
def test_unsupported_api_calls(server: ServerProcess, method: str, path: str, message: str) -> None:
    code, error, _ = process_request(server, method, path)
    assert code == "INVALID_ARGUMENT"
    assert message in error


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/foo:predict",
        "/v1/models/foo/versions/50:predict",
        f"/v1/models/{MODEL}99:predict",  # upstream's path, without a slash before 99
    ],
)
def test_predict_model_name_version_errors(server: ServerProcess, path: str) -> None:
    code, _, _ = process_request(server, "POST", path, '{ "instances": [1] }')
    assert code == "NOT_FOUND"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (f"/v1/models/{MODEL}:predict", "", "JSON Parse error: The document is empty"),
        (f"/v1/models/{MODEL}:predict", "instances = [1, 2]", "JSON Parse error: Invalid value"),
        (f"/v1/models/{MODEL}:predict", '{ "instances": ["x", "y"] }',
         "not of expected type: float"),
        (f"/v1/models/{MODEL}/labels/{MISSING_LABEL}:predict", '{ "instances": ["x", "y"] }',
         "Unrecognized servable version label"),
        (f"/v1/models/{MODEL}:predict", '{ "signature_name": 100 }',
         "'signature_name' key must be a string value."),
    ],
)  # fmt: skip
def test_predict_request_errors(server: ServerProcess, path: str, body: str, message: str) -> None:
    code, error, _ = process_request(server, "POST", path, body)
    assert code == "INVALID_ARGUMENT"
    assert message in error


def _only_json_content_type(headers: httpx.Headers) -> None:
    assert [k for k in headers if k.lower().startswith(("content-type", "access-control"))] == [
        "content-type"
    ]
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (f"/v1/models/{MODEL}:predict", '{"instances": [[1.0, 2.0], [3.0, 4.0]]}',
         {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
        (f"/v1/models/{MODEL}/versions/{VERSION}:predict", '{"instances": [1.0, 2.0]}',
         {"predictions": [2.5, 3.0]}),
        (f"/v1/models/{MODEL}/labels/{LABEL}:predict", '{"instances": [1.0, 2.0]}',
         {"predictions": [2.5, 3.0]}),
        (f"/v1/models/{MODEL}/versions/{VERSION}:predict",
         '{"signature_name": "serving_default", "instances": [3.0, 4.0]}',
         {"predictions": [3.5, 4.0]}),
        (f"/v1/models/{MODEL}/versions/{VERSION}:predict",
         '{"signature_name": "serving_default", "inputs": [3.0, 4.0]}', {"outputs": [3.5, 4.0]}),
    ],
)  # fmt: skip
def test_predict(server: ServerProcess, path: str, body: str, expected: Any) -> None:
    code, output, headers = process_request(server, "POST", path, body)
    assert (code, output) == ("OK", expected)
    _only_json_content_type(headers)


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/models/{MODEL}:regress",
        f"/v1/models/{MODEL}/versions/{VERSION}:regress",
        f"/v1/models/{MODEL}/labels/{LABEL}:regress",
    ],
)
def test_regress(server: ServerProcess, path: str) -> None:
    body = '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }'
    code, output, headers = process_request(server, "POST", path, body)
    assert (code, output) == ("OK", {"results": [42]})
    _only_json_content_type(headers)


@pytest.mark.parametrize(
    ("path", "x", "score"),
    [
        (f"/v1/models/{MODEL}:classify", 20.0, 12),
        (f"/v1/models/{MODEL}/labels/{LABEL}:classify", 10.0, 7),
    ],
)
def test_classify(server: ServerProcess, path: str, x: float, score: float) -> None:
    body = f'{{"signature_name": "classify_x_to_y", "examples": [ {{ "x": {x} }} ] }}'
    code, output, headers = process_request(server, "POST", path, body)
    assert (code, output) == ("OK", {"results": [[["", score]]]})
    _only_json_content_type(headers)


@pytest.mark.parametrize(
    "path",
    [f"/v1/models/{MODEL}", f"/v1/models/{MODEL}/versions/{VERSION}",
     f"/v1/models/{MODEL}/labels/{LABEL}"],
)  # fmt: skip
def test_get_status(server: ServerProcess, path: str) -> None:
    code, output, headers = process_request(server, "GET", path)
    assert (code, output) == (
        "OK",
        {
            "model_version_status": [
                {
                    "version": "123",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        },
    )
    _only_json_content_type(headers)


def test_get_model_metadata(server: ServerProcess) -> None:
    code, output, headers = process_request(server, "GET", f"/v1/models/{MODEL}/metadata")
    assert (code, headers["content-type"]) == ("OK", "application/json")
    expected = HERE / "saved_model_half_plus_two_2_versions_metadata.json"
    assert output == json.loads(expected.read_text())
