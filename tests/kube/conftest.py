"""A scripted API server per test (see ``fakeapi``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from timonel.kube.client import Cluster

from .fakeapi import FakeApi, Handler


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[Callable[[Handler], tuple[FakeApi, Cluster]]]:
    """Start a fake API with a handler; returns it and a ``Cluster`` connected to it."""
    started: list[tuple[FakeApi, Cluster]] = []

    def start(handler: Handler) -> tuple[FakeApi, Cluster]:
        api = FakeApi(handler)
        cluster = api.cluster(tmp_path)
        started.append((api, cluster))
        return api, cluster

    yield start
    for api, cluster in started:
        cluster.close()
        api.close()
