"""TensorFlow Serving's ``model_servers/get_model_status_impl_test.cc``, as GetModelStatus calls to
``timonel serve``.

The server is set up as upstream's ``CreateServerCore``: ``saved_model_half_plus_two_2_versions``
(half_plus_two at versions 123 and 124) with a ``specific`` policy naming both.

Not ported: ``ModelSpecOverride`` (it calls ``GetModelStatusWithModelSpec``, a C++ entry point
that replaces the request's ModelSpec; no request over the wire can do that).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import grpc
import pytest
import upstream_testdata
from google.protobuf import text_format
from serverproc import ServerProcess, running
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

pytestmark = pytest.mark.slow

MODEL = "saved_model_half_plus_two_2_versions"
NONEXISTENT_MODEL = "nonexistent_model"
VERSION_1, VERSION_2, NONEXISTENT_VERSION = 123, 124, 125


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("status")
    base = upstream_testdata.write_half_plus_two(root / MODEL)
    shutil.copytree(base / f"{VERSION_1:08d}", base / f"{VERSION_2:08d}")
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(
        name=MODEL, base_path=str(base), model_platform="tensorflow"
    )
    model.model_version_policy.specific.versions.extend([VERSION_1, VERSION_2])
    path = root / "models.config"
    path.write_text(text_format.MessageToString(config))
    with running(tmp_path_factory.mktemp("serve"), f"--model_config_file={path}") as process:
        yield process


def get_model_status(
    server: ServerProcess, request: get_model_status_pb2.GetModelStatusRequest
) -> tuple[grpc.StatusCode, get_model_status_pb2.GetModelStatusResponse]:
    with server.channel() as channel:
        try:
            reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                request, timeout=30
            )
        except grpc.RpcError as exc:
            return exc.code(), get_model_status_pb2.GetModelStatusResponse()
    return grpc.StatusCode.OK, reply


def test_missing_or_empty_model_spec_failure(server: ServerProcess) -> None:
    code, _ = get_model_status(server, get_model_status_pb2.GetModelStatusRequest())
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_invalid_model_name_failure(server: ServerProcess) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = NONEXISTENT_MODEL
    code, response = get_model_status(server, request)
    assert (code, len(response.model_version_status)) == (grpc.StatusCode.NOT_FOUND, 0)


def test_invalid_model_version_failure(server: ServerProcess) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    request.model_spec.version.value = NONEXISTENT_VERSION
    code, response = get_model_status(server, request)
    assert (code, len(response.model_version_status)) == (grpc.StatusCode.NOT_FOUND, 0)


def test_all_versions_success(server: ServerProcess) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    code, response = get_model_status(server, request)
    assert code == grpc.StatusCode.OK
    assert {s.version for s in response.model_version_status} == {VERSION_1, VERSION_2}
    for status in response.model_version_status:
        assert (status.status.error_code, status.status.error_message) == (0, "")


def test_single_version_success(server: ServerProcess) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    request.model_spec.version.value = VERSION_1
    code, response = get_model_status(server, request)
    assert code == grpc.StatusCode.OK
    assert [s.version for s in response.model_version_status] == [VERSION_1]
    status = response.model_version_status[0].status
    assert (status.error_code, status.error_message) == (0, "")
