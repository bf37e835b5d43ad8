"""A loaded servable knows whether its graph may run for any time, which decides where its calls
run and how their timeouts are kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tfmodels

from timonel.errors import ServingError
from timonel.server.servable import Servable, load_servable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("models")
    tfmodels.write_mlp(base / "mlp")
    tfmodels.write_spin(base / "spin")
    return base


def _loaded(path: Path) -> Iterator[Servable]:
    servable = load_servable(path.name, 1, str(path))
    try:
        yield servable
    finally:
        servable.close()


@pytest.fixture
def mlp(models: Path) -> Iterator[Servable]:
    yield from _loaded(models / "mlp")


@pytest.fixture
def spin(models: Path) -> Iterator[Servable]:
    yield from _loaded(models / "spin")


def _predict(servable: Servable, **inputs: np.ndarray) -> list[np.ndarray]:
    call = servable.prepare_predict(servable.signatures["serving_default"], inputs)
    return servable.run(call.feeds, call.fetches)


def test_a_graph_with_a_loop_may_run_long_and_a_plain_one_not(
    mlp: Servable, spin: Servable
) -> None:
    assert not mlp.may_run_long
    assert spin.may_run_long  # a tf.while_loop


def test_a_call_past_its_timeout_is_answered_deadline_exceeded_when_it_returns(
    mlp: Servable,
) -> None:
    """A graph without loops runs in the caller's thread, where TensorFlow watches no timeout:
    the timeout is checked at the end, with TensorFlow's answer to a call it cancelled."""
    batch = np.ones((20_000, 64), np.float32)  # tens of milliseconds of matmuls
    assert _predict(mlp, inputs=batch)[0].shape == (20_000, 10)
    call = mlp.prepare_predict(mlp.signatures["serving_default"], {"inputs": batch})
    with pytest.raises(ServingError) as caught:
        mlp.run(call.feeds, call.fetches, timeout_ms=1)
    assert (caught.value.code, str(caught.value)) == (
        "DEADLINE_EXCEEDED",
        "Timed out waiting for notification",
    )
    assert mlp.run(call.feeds, call.fetches, timeout_ms=60_000)[0].shape == (20_000, 10)
