"""The controller across restarts: of the API server under its watch, and of itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubernetes import client

from timonel.local.apiserver.runner import running
from timonel.local.controller import Controller
from timonel.local.supervisor import Backoff

from .kubeapi import GROUP, PLURAL, TOKEN, VERSION, api_client
from .standin_server import standin_command, write_model
from .test_controller import NAMESPACE, manifest, predict, settled, wait_for
from .test_supervisor import stalled_initializer


def make_controller(url: str, state: Path) -> Controller:
    return Controller(
        api_client(url),
        state,
        command=standin_command,
        backoff=Backoff(initial=0.1, cap=1.0),
        watch_timeout=5,
    )


def test_watch_resumes_after_the_api_server_restarts(tmp_path: Path) -> None:
    model = write_model(tmp_path / "repo" / "half")
    with running(tmp_path / "cluster", TOKEN) as first:
        port = first.port
        controller = make_controller(first.url, tmp_path / "controller")
        controller.start()
    try:
        # The server was down while the controller watched; it comes back on the same port.
        with running(tmp_path / "cluster", TOKEN, port=port) as again:
            api = client.CustomObjectsApi(api_client(again.url))
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, manifest("after", str(model))
            )
            ready = wait_for(api, "after", settled)
            assert predict(ready, "after-predictor-00001") == [1]
    finally:
        controller.stop()


def test_restarted_controller_keeps_its_revisions(tmp_path: Path) -> None:
    v1 = write_model(tmp_path / "repo" / "v1", version=1)
    v2 = write_model(tmp_path / "repo" / "v2", version=2)
    with running(tmp_path / "cluster", TOKEN) as server:
        api = client.CustomObjectsApi(api_client(server.url))
        controller = make_controller(server.url, tmp_path / "controller")
        controller.start()
        try:
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, manifest("kept", str(v1))
            )
            wait_for(api, "kept", settled)
        finally:
            controller.stop()
        assert controller.revision_pid(NAMESPACE, "kept", "kept-predictor-00001") is None

        # Changed while no controller ran: the next one numbers on from the revisions on disk.
        body: dict[str, Any] = api.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, "kept"
        )
        body["spec"]["predictor"]["model"]["storageUri"] = str(v2)
        api.replace_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "kept", body)

        successor = make_controller(server.url, tmp_path / "controller")
        successor.start()
        try:
            ready = wait_for(
                api,
                "kept",
                lambda i: (
                    settled(i)
                    and i["status"]["components"]["predictor"]["latestReadyRevision"]
                    == "kept-predictor-00002"
                ),
            )
            component = ready["status"]["components"]["predictor"]
            assert component["previousRolledoutRevision"] == "kept-predictor-00001"
            assert predict(ready, "kept-predictor-00002") == [2]
        finally:
            successor.stop()


def test_recreated_isvc_starts_over_with_new_revisions(tmp_path: Path) -> None:
    v1 = write_model(tmp_path / "repo" / "v1", version=1)
    v2 = write_model(tmp_path / "repo" / "v2", version=2)
    with running(tmp_path / "cluster", TOKEN) as server:
        api = client.CustomObjectsApi(api_client(server.url))
        controller = make_controller(server.url, tmp_path / "controller")
        controller.start()
        try:
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, manifest("again", str(v1))
            )
            wait_for(api, "again", settled)
            api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "again")
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, manifest("again", str(v2))
            )
            ready = wait_for(api, "again", settled)
            assert ready["status"]["components"]["predictor"]["traffic"][0]["revisionName"] == (
                "again-predictor-00001"
            )
            assert predict(ready, "again-predictor-00001") == [2]
        finally:
            controller.stop()


def test_stop_is_prompt_while_a_storage_copy_stalls(tmp_path: Path) -> None:
    with running(tmp_path / "cluster", TOKEN) as server:
        api = client.CustomObjectsApi(api_client(server.url))
        controller = Controller(
            api_client(server.url),
            tmp_path / "controller",
            initializer=stalled_initializer,
            command=standin_command,
            watch_timeout=5,
        )
        controller.start()
        try:
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, manifest("stalled", "gs://unreachable/m/v1")
            )
            wait_for(
                api,
                "stalled",
                lambda i: (
                    (i.get("status") or {}).get("modelStatus", {}).get("transitionStatus")
                    == "InProgress"
                ),
            )
        finally:
            started = time.monotonic()
            controller.stop()
        assert time.monotonic() - started < 3.0
