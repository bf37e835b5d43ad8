"""A real ``timonel serve`` with half_plus_two, shared by the client's server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import serving
import tfmodels


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving.Served]:
    """``timonel serve`` with model ``half`` (half_plus_two, version 1), ready to answer."""
    base = tmp_path_factory.mktemp("models") / "half"
    tfmodels.write_half_plus_two(base / "1")
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    with serving.timonel_serve("half", base, log) as served:
        yield served


@pytest.fixture(params=["rest", "grpc"])
def url(request: pytest.FixtureRequest, served: serving.Served) -> str:
    """The same server over each protocol."""
    return served.rest if request.param == "rest" else served.grpc
