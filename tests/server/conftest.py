"""Real ``timonel serve`` processes and the SavedModels they serve, for the server's tests.

Servers are module- or session-scoped: each costs a TensorFlow import and a model load.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tfmodels
from serverproc import ServerProcess, StartServer, spawn

from timonel.tfserving import MonitoringConfig, write_monitoring_config


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """``start(*flags)`` → a ready ServerProcess, terminated when the test ends."""
    started: list[ServerProcess] = []

    def start(*flags: str, ready: bool = True) -> ServerProcess:
        server = spawn(tmp_path_factory.mktemp("serve"), *flags)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.terminate()


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``hpt`` (half_plus_two TF2: version 1 offset 2, version 2 offset 3) and ``tf1`` (TF1-style
    half_plus_two with classify, regress and a string signature, version 1)."""
    repo = tmp_path_factory.mktemp("repo")
    tfmodels.write_half_plus_two(repo / "hpt" / "1", offset=2.0)
    tfmodels.write_half_plus_two(repo / "hpt" / "2", offset=3.0)
    tfmodels.write_half_plus_two_tf1(repo / "tf1" / "1")
    return repo


@pytest.fixture(scope="session")
def monitoring_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("monitoring") / "monitoring.config"
    write_monitoring_config(path, MonitoringConfig())
    return path
