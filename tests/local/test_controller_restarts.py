"""The controller across restarts: of the API server under its watch, and of itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client, config
from localcluster import TOKEN, controller, write_kubeconfig

from timonel.kube.client import Cluster
from timonel.local.apiserver import running
from timonel.local.controller import Controller
from timonel.local.revisions import RevisionKey, RevisionStore

from .kubeapi import GROUP, PLURAL, VERSION
from .standin_server import standin_command, write_model
from .test_controller import NAMESPACE, ingress_of, manifest, predict, settled, wait_for
from .test_supervisor import assert_ended_by_stop, stalled_initializer, stalled_pid


@contextmanager
def cluster(tmp_path: Path, port: int = 0) -> Iterator[tuple[Path, client.CustomObjectsApi]]:
    """The API server over ``tmp_path``'s state (HTTPS), its kubeconfig and a client on it."""
    with running(tmp_path / "cluster", TOKEN, port=port, tls=True) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server)
        with config.new_client_from_config(str(kubeconfig), persist_config=False) as api_client:
            yield kubeconfig, client.CustomObjectsApi(api_client)


def test_watch_resumes_after_the_api_server_restarts(tmp_path: Path) -> None:
    model = write_model(tmp_path / "repo" / "half")
    with ExitStack() as controller_running:
        with cluster(tmp_path) as (kubeconfig, _):
            started = controller_running.enter_context(
                controller(kubeconfig, tmp_path / "controller")
            )
            ingress = controller_running.enter_context(ingress_of(started))
        # The server was down while the controller watched; it comes back on the same port.
        port = urlsplit(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
        with cluster(tmp_path, port.port or 0) as (_, api):
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, manifest("after", str(model))
            )
            ready = wait_for(api, "after", settled)
            assert predict(ingress, ready, "after-predictor-00001") == [1]


def test_restarted_controller_keeps_its_revisions(tmp_path: Path) -> None:
    v1 = write_model(tmp_path / "repo" / "v1", version=1)
    v2 = write_model(tmp_path / "repo" / "v2", version=2)
    with cluster(tmp_path) as (kubeconfig, api):
        with controller(kubeconfig, tmp_path / "controller") as first:
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, manifest("kept", str(v1))
            )
            wait_for(api, "kept", settled)
        assert first.revision_pid(NAMESPACE, "kept", "kept-predictor-00001") is None

        # Changed while no controller ran: the next one numbers on from the revisions on disk.
        body: dict[str, Any] = api.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, "kept"
        )
        body["spec"]["predictor"]["model"]["storageUri"] = str(v2)
        api.replace_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "kept", body)

        with (
            controller(kubeconfig, tmp_path / "controller") as second,
            ingress_of(second) as ingress,
        ):
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
            assert predict(ingress, ready, "kept-predictor-00002") == [2]


def test_recreated_isvc_starts_over_with_new_revisions(tmp_path: Path) -> None:
    v1 = write_model(tmp_path / "repo" / "v1", version=1)
    v2 = write_model(tmp_path / "repo" / "v2", version=2)
    with (
        cluster(tmp_path) as (kubeconfig, api),
        controller(kubeconfig, tmp_path / "controller") as started,
        ingress_of(started) as ingress,
    ):
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
        assert predict(ingress, ready, "again-predictor-00001") == [2]


@pytest.mark.timeout(60)  # a stop that waited for the copy would hang for 600 s
def test_stop_ends_a_storage_copy_that_stalls(tmp_path: Path) -> None:
    state = tmp_path / "controller"
    log = RevisionStore(state).initializer_log(
        RevisionKey(NAMESPACE, "stalled", "stalled-predictor-00001")
    )
    with (
        cluster(tmp_path) as (kubeconfig, api),
        Cluster.connect(kubeconfig=kubeconfig) as kube,
    ):
        stalled = Controller(
            kube,
            state,
            initializer=stalled_initializer,
            command=standin_command,
            watch_timeout=5,
        )
        stalled.start()
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
            pid = stalled_pid(log)
        finally:
            stalled.stop()
        assert_ended_by_stop(pid, log)
