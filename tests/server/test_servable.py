"""A loaded servable measures its calls and knows whether its graph may run for any time, which
decides where the direct runner makes them (``timonel.server.runner``)."""

from __future__ import annotations

import math
import time
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


def test_the_measure_follows_a_models_calls_down_from_its_slow_first_one(mlp: Servable) -> None:
    assert mlp.call_seconds == math.inf  # nothing measured yet: calls start on the threads
    assert not mlp.may_run_long
    took = []
    for _ in range(300):
        started = time.perf_counter()
        _predict(mlp, inputs=np.zeros((1, 64), np.float32))
        took.append(time.perf_counter() - started)
    assert mlp.call_seconds <= 2 * float(np.median(took[-50:]))


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


def test_one_slow_call_raises_the_measure_at_once(spin: Servable) -> None:
    assert spin.may_run_long  # a while loop
    for _ in range(20):
        _predict(spin, x=np.array([1.0], np.float32), spins=np.array(0, np.int64))
    quick = spin.call_seconds
    started = time.perf_counter()
    _predict(spin, x=np.array([1.0], np.float32), spins=np.array(200_000, np.int64))
    slow = time.perf_counter() - started
    assert spin.call_seconds >= 0.9 * slow > quick
