"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import emulators
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
