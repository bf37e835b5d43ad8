"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import emulators
import localcluster
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference data beside the checkout (KServe CRDs, TF Serving and GKE facts)."""
    if not (SHARED / "kserve").is_dir():
        pytest.fail(
            f"the reference folder {SHARED} is missing: clone the project beside `shared/` "
            "(it holds the KServe CRDs the tests validate against)"
        )
    return SHARED


@pytest.fixture(scope="session")
def e2e_kubeconfig() -> Path:
    """The kubeconfig of a real cluster with KServe, for the opt-in ``-m cluster`` suite."""
    value = os.environ.get("TIMONEL_E2E_KUBECONFIG")
    if not value:
        pytest.skip("set TIMONEL_E2E_KUBECONFIG to a kubeconfig with KServe to run this suite")
    path = Path(value).expanduser()
    if not path.is_file():
        pytest.fail(f"TIMONEL_E2E_KUBECONFIG={value} is not a file")
    return path


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.BucketEmulator]:
    """fake-gcs-server on 127.0.0.1 with one bucket; build URIs with ``.fresh_uri()``."""
    with emulators.gcs_emulator(tmp_path_factory.mktemp("gcs")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.BucketEmulator]:
    """moto's S3 server on 127.0.0.1 with one bucket; build URIs with ``.fresh_uri()``."""
    with emulators.s3_emulator(tmp_path_factory.mktemp("s3")) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``timonel local``'s API server, over HTTPS with a bearer token as ``local up`` runs it."""
    from timonel.local.apiserver import running

    with running(tmp_path_factory.mktemp("cluster"), localcluster.TOKEN, tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def local_kubeconfig(local_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kubeconfig ``timonel local up`` would write for ``local_api`` (context timonel-local)."""
    from timonel.local import kubeconfig

    path = tmp_path_factory.mktemp("kube") / "config"
    return kubeconfig.write(path, local_api.url, local_api.token, ca_pem=local_api.ca.read_bytes())


@pytest.fixture(scope="module")
def kube_client(local_kubeconfig: Path) -> Iterator[Any]:
    """The ``kubernetes`` client's ApiClient on ``local_kubeconfig``."""
    from kubernetes import config

    with config.new_client_from_config(str(local_kubeconfig), persist_config=False) as client:
        yield client


@pytest.fixture(scope="module")
def local_controller(local_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The controller on ``local_api``, running stand-in revision servers (no TensorFlow)."""
    with localcluster.controller(local_kubeconfig, tmp_path_factory.mktemp("state")) as running:
        yield running


@pytest.fixture(scope="module")
def serving_controller(local_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The controller on ``local_api``, running the real ``timonel serve`` per revision."""
    state = tmp_path_factory.mktemp("state")
    with localcluster.controller(local_kubeconfig, state, serve=True) as running:
        yield running
