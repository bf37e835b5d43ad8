"""TensorFlow Serving's ``model_servers/server_core_test.cc``, through what a running
``timonel serve`` shows of its ServerCore.

Upstream creates a ServerCore from a ``ModelServerConfig`` and calls ``ReloadConfig``,
``ListAvailableServableIds`` and ``GetServableHandle``. Here the first config is the
``--model_config_file`` the server starts with (a ServerCore that fails to be created is a server
that fails to start, with the same message in its log), ``ReloadConfig`` is
``ModelService/HandleReloadConfigRequest`` (or the next poll of the file, with
``--model_config_file_poll_wait_seconds``), the servable state monitor is ``GetModelStatus`` and a
servable handle is ``GetModelMetadata``, which resolves a ModelSpec as a handle does. The model
is ``test_model``: half_plus_two at version 123, or at 123 and 124
(``SwitchToHalfPlusTwoWith2Versions``), with the ``tensorflow`` platform where upstream's fake
platform serves the same paths.

Not ported, since no flag of tensorflow_model_server reaches what they set:
- ``PreLoadHook``: a C++ callback run before each load.
- ``AbsoluteAndRelativePathsWithOptionsSucceed``, ``AbsolutePathWithEmptyPathFails``,
  ``RelativePathWithOptionsSucceeds``: ``Options::model_config_list_root_dir``.
- ``MultiplePlatforms``, ``MultiplePlatformsWithConfigChange``: platforms served by test-only
  source adapters registered in C++ (the server's platform config map names only registered ones).
- ``RequestLoggingOff``, ``RequestLoggingOn``: ``ServerCore::Log`` with mock loggers and log
  collectors passed in through C++.
- ``VersionLabelsNotAllowed`` (``Options::allow_version_labels``, always true in the server) and
  ``AssignExistingLabelToUnavailableVersionAllowed``
  (``force_allow_any_version_labels_for_unavailable_models``, which main.cc has no flag for).
- ``StoragePathPrefixOption``: ``Options::storage_path_prefix``.
``AbsolutePathSucceeds`` is ``CreateWaitsTillModelsAvailable`` here (both start from an absolute
path), and ``ErroringModel``'s injected error is a version that is not a SavedModel.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import upstream_testdata
from google.protobuf import text_format
from serverproc import ServerProcess, spawn
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.config.model_server_config_pb2 import ModelServerConfig

pytestmark = pytest.mark.slow

MODEL = "test_model"
VERSION, LARGER_VERSION, BOGUS_VERSION = 123, 124, 777
Start = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``half_plus_two`` (123) and ``half_plus_two_2_versions`` (123 and 124)."""
    root = tmp_path_factory.mktemp("testdata")
    one = upstream_testdata.write_half_plus_two(root / "half_plus_two")
    two = root / "half_plus_two_2_versions"
    shutil.copytree(one, two)
    shutil.copytree(two / f"{VERSION:08d}", two / f"{LARGER_VERSION:08d}")
    return {"one": one, "two": two}


def config_for(path: Path | str, **fields: object) -> ModelServerConfig:
    """``GetTestModelServerConfigForTensorflowPlatform`` with ``fields`` of the model changed."""
    config = ModelServerConfig()
    model = config.model_config_list.config.add(
        name=MODEL, base_path=str(path), model_platform="tensorflow"
    )
    for name, value in fields.items():
        setattr(model, name, value)
    return config


def two_versions(paths: dict[str, Path], **labels: int) -> ModelServerConfig:
    """``SwitchToHalfPlusTwoWith2Versions``: both versions aspired (the ``all`` policy)."""
    config = config_for(paths["two"])
    model = config.model_config_list.config[0]
    model.model_version_policy.all.SetInParent()
    model.version_labels.update(labels)
    return config


@pytest.fixture
def start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Start]:
    """``start(config, *flags, ready=True)``: a server on ``config`` (a proto, or the file's
    text), terminated when the test ends."""
    started: list[ServerProcess] = []

    def run(config: ModelServerConfig | str, *flags: str, ready: bool = True) -> ServerProcess:
        tmp = tmp_path_factory.mktemp("serve")
        path = tmp / "models.config"
        path.write_text(config if isinstance(config, str) else text_format.MessageToString(config))
        server = spawn(tmp, f"--model_config_file={path}", *flags)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield run
    for server in started:
        server.terminate()


def config_file(server: ServerProcess) -> Path:
    """The ``--model_config_file`` a server of ``start`` polls."""
    return server.stdout.parent / "models.config"


def failed_start(server: ServerProcess) -> str:
    """The log of a server that must exit at start-up (a hang fails the test)."""
    assert server.process.wait(120) != 0, "the server started"
    return server.stderr.read_text()


def reload(server: ServerProcess, config: ModelServerConfig) -> tuple[grpc.StatusCode, str]:
    request = model_management_pb2.ReloadConfigRequest(config=config)
    with server.channel() as channel:
        try:
            model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                request, timeout=120
            )
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def states(server: ServerProcess) -> dict[int, str]:
    """The servable state monitor's versions of ``test_model`` and their states."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    with server.channel() as channel:
        try:
            reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                request, timeout=30
            )
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND, exc.details()
            return {}
    return {
        s.version: get_model_status_pb2.ModelVersionStatus.State.Name(s.state)
        for s in reply.model_version_status
    }


def available(server: ServerProcess) -> list[int]:
    """``ListAvailableServableIds`` of ``test_model``."""
    return sorted(v for v, state in states(server).items() if state == "AVAILABLE")


def wait_for(server: ServerProcess, condition: Callable[[], bool]) -> None:
    """What upstream waits for after a reload that does not block on it (bounded)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, server.stderr.read_text()[-3000:]
        time.sleep(0.1)


def handle(
    server: ServerProcess, *, version: int | None = None, label: str | None = None
) -> tuple[grpc.StatusCode, str, int]:
    """``GetServableHandle``: the version a ModelSpec resolves to, or the error."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    with server.channel() as channel:
        try:
            reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
                request, timeout=30
            )
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or "", 0
    return grpc.StatusCode.OK, "", reply.model_spec.version.value


@pytest.mark.parametrize("uri", [False, True], ids=["path", "file_uri"])  # PrefixPathsWithURIScheme
def test_create_waits_till_models_available(
    start: Start, paths: dict[str, Path], uri: bool
) -> None:
    server = start(config_for(f"file://{paths['one']}" if uri else paths["one"]))
    assert states(server) == {VERSION: "AVAILABLE"}
    assert handle(server, version=VERSION) == (grpc.StatusCode.OK, "", VERSION)


def test_reload_config_waits_till_models_available(start: Start, paths: dict[str, Path]) -> None:
    server = start("")  # a server with no models, initially
    assert reload(server, config_for(paths["one"])) == (grpc.StatusCode.OK, "")
    assert available(server) == [VERSION]


def test_reload_config_unloads_models(start: Start, paths: dict[str, Path]) -> None:
    server = start(config_for(paths["one"]))
    assert available(server) == [VERSION]
    empty = ModelServerConfig()
    empty.model_config_list.SetInParent()
    assert reload(server, empty) == (grpc.StatusCode.OK, "")
    wait_for(server, lambda: states(server) == {VERSION: "END"})


def test_reload_config_handles_loading_a_previously_unloaded_model(
    start: Start, paths: dict[str, Path]
) -> None:
    nonempty = config_for(paths["one"])
    empty = ModelServerConfig()
    empty.model_config_list.SetInParent()
    server = start(nonempty)
    assert reload(server, empty) == (grpc.StatusCode.OK, "")
    wait_for(server, lambda: states(server) == {VERSION: "END"})
    assert reload(server, nonempty) == (grpc.StatusCode.OK, "")
    assert available(server) == [VERSION]


def test_reload_config_change_model_base_path(start: Start, paths: dict[str, Path]) -> None:
    one_version = config_for(paths["one"])
    server = start(one_version)
    assert available(server) == [VERSION]
    assert reload(server, two_versions(paths)) == (grpc.StatusCode.OK, "")
    wait_for(server, lambda: LARGER_VERSION in available(server))
    assert reload(server, one_version) == (grpc.StatusCode.OK, "")
    wait_for(server, lambda: available(server) == [VERSION])


def test_relative_path_fails(start: Start, paths: dict[str, Path]) -> None:
    server = start(config_for("half_plus_two", name=f"{MODEL}_relative"), ready=False)
    assert (
        f"Expected model {MODEL}_relative to have an absolute path or URI; "
        "got base_path()=half_plus_two"
    ) in failed_start(server)


def test_mixed_absolute_relative_fails(start: Start, paths: dict[str, Path]) -> None:
    mixed = config_for(paths["one"])
    mixed.model_config_list.config.add(
        name=f"{MODEL}_relative", base_path="half_plus_two", model_platform="tensorflow"
    )
    server = start(mixed, ready=False)
    assert "to have an absolute path or URI" in failed_start(server)


def test_erroring_model(start: Start, tmp_path: Path) -> None:
    version = tmp_path / "broken" / str(VERSION)
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"not a SavedModel")
    server = start(config_for(tmp_path / "broken"), "--max_num_load_retries=0", ready=False)
    assert "1 servable(s) did not become available" in failed_start(server)


def test_illegal_reconfiguration_to_custom_config(start: Start, paths: dict[str, Path]) -> None:
    server = start(config_for(paths["one"]), "--model_config_file_poll_wait_seconds=1")
    config_file(server).write_text("custom_model_config { }\n")
    wait_for(server, lambda: "Cannot transition to requested config" in server.stderr.read_text())
    assert available(server) == [VERSION]


def test_illegal_reconfiguration_from_custom_config(start: Start) -> None:
    server = start("custom_model_config { }\n", ready=False)
    assert "ModelServer does not yet support custom model config." in failed_start(server)


def test_illegal_config_model_type_and_platform_set(start: Start, paths: dict[str, Path]) -> None:
    config = config_for(paths["one"], model_type=model_server_config_pb2.TENSORFLOW)
    assert "Illegal setting both" in failed_start(start(config, ready=False))


def test_deprecated_model_type_config(start: Start, paths: dict[str, Path]) -> None:
    config = config_for(
        paths["one"], model_platform="", model_type=model_server_config_pb2.TENSORFLOW
    )
    server = start(config)
    assert available(server) == [VERSION]


def test_duplicate_model_name_in_config(start: Start, paths: dict[str, Path]) -> None:
    config = config_for(paths["one"])
    config.model_config_list.config.add().CopyFrom(config.model_config_list.config[0])
    assert f"Illegal to list model {MODEL} multiple times in config list" in failed_start(
        start(config, ready=False)
    )


def test_unknown_model_platform(start: Start, paths: dict[str, Path]) -> None:
    config = config_for(paths["one"], model_platform="not_a_known_platform")
    assert f"Model {MODEL} requests unsupported platform not_a_known_platform" in failed_start(
        start(config, ready=False)
    )


def test_illegal_to_change_model_platform(start: Start, paths: dict[str, Path]) -> None:
    server = start(config_for(paths["one"]))
    code, message = reload(server, config_for(paths["one"], model_platform="platform_1"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Illegal to change a model's platform" in message
    assert available(server) == [VERSION]


def test_model_spec_multiple_versions_available(start: Start, paths: dict[str, Path]) -> None:
    server = start(two_versions(paths))
    wait_for(server, lambda: available(server) == [VERSION, LARGER_VERSION])
    ok = grpc.StatusCode.OK
    assert handle(server) == (ok, "", LARGER_VERSION)  # no version: the latest
    assert handle(server, version=VERSION) == (ok, "", VERSION)
    assert reload(server, two_versions(paths, A=VERSION, B=LARGER_VERSION)) == (ok, "")
    assert handle(server, label="A") == (ok, "", VERSION)
    assert handle(server, label="B") == (ok, "", LARGER_VERSION)
    code, message, _ = handle(server, label="nonexistent label")
    assert code != ok
    assert "Unrecognized servable version label" in message


def test_assign_label_to_unavailable_version(start: Start, paths: dict[str, Path]) -> None:
    server = start(two_versions(paths))
    wait_for(server, lambda: available(server) == [VERSION, LARGER_VERSION])
    code, message = reload(server, two_versions(paths, **{"nice try": BOGUS_VERSION}))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "not currently available for inference" in message


def test_assign_label_to_unavailable_version_allowed(start: Start, paths: dict[str, Path]) -> None:
    server = start(two_versions(paths), "--allow_version_labels_for_unavailable_models=true")
    wait_for(server, lambda: available(server) == [VERSION, LARGER_VERSION])
    config = two_versions(paths, **{"nice try": BOGUS_VERSION})
    assert reload(server, config) == (grpc.StatusCode.OK, "")


def test_assign_existing_label_to_unavailable_version_disallowed(
    start: Start, paths: dict[str, Path]
) -> None:
    server = start(two_versions(paths), "--allow_version_labels_for_unavailable_models=true")
    wait_for(server, lambda: available(server) == [VERSION, LARGER_VERSION])
    labelled = two_versions(paths, A=VERSION, B=LARGER_VERSION)
    assert reload(server, labelled) == (grpc.StatusCode.OK, "")
    code, message = reload(server, two_versions(paths, A=BOGUS_VERSION, B=LARGER_VERSION))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "not currently available for inference" in message
