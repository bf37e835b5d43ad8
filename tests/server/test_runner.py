"""The direct runner makes one session call per request: on its threads, off the event loop, or on
the loop for a servable whose calls are measured short."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from timonel.errors import ServingError
from timonel.server.runner import SHORT_CALL_SECONDS, DirectRunner
from timonel.server.servable import Call


class RecordingServable:
    """Stands in for a model: doubles its feed, noting the thread and timeout of each call;
    a call with feed -1 fails as TensorFlow would, and ``hold`` keeps calls waiting."""

    name = "double"

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.may_run_long = False
        #: CPU seconds each call spins for
        self.cpu_seconds = 0.0
        self.threads: set[str] = set()
        self.where: list[str] = []
        self.timeouts: list[int] = []
        self.hold = hold
        self.calls = 0

    def run(self, feeds: dict[str, np.ndarray], fetches: Any, *, timeout_ms: int = 0) -> Any:
        self.threads.add(threading.current_thread().name)
        self.where.append(threading.current_thread().name)
        self.timeouts.append(timeout_ms)
        started = time.thread_time()
        while time.thread_time() - started < self.cpu_seconds:
            pass
        if self.hold is not None:
            self.hold.wait(10)
        (value,) = feeds.values()
        if value[0] == -1:
            raise ServingError("the model failed", code="INVALID_ARGUMENT")
        self.calls += 1
        return [value * 2]


def call(value: float) -> Call:
    return Call({"x:0": np.array([value], dtype=np.float32)}, ("y:0",), ("y",))


def test_calls_run_on_the_runners_threads_with_their_timeouts() -> None:
    servable = RecordingServable()
    runner = DirectRunner(threads=4)

    async def main() -> list[Any]:
        return await asyncio.gather(*(runner.run(servable, call(i), 100 * i) for i in range(8)))

    try:
        results = asyncio.run(main())
    finally:
        runner.close()
    assert [r[0].tolist() for r in results] == [[2.0 * i] for i in range(8)]
    assert sorted(servable.timeouts) == [100 * i for i in range(8)]
    assert servable.threads <= {f"tf-run-{n}" for n in range(4)}


def test_a_failing_call_raises_its_error_and_others_go_on() -> None:
    servable = RecordingServable()
    runner = DirectRunner(threads=2)

    async def main() -> list[Any]:
        calls = [runner.run(servable, call(v), 0) for v in (1, -1, 2)]
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        ok, failed, also_ok = asyncio.run(main())
    finally:
        runner.close()
    assert isinstance(failed, ServingError) and str(failed) == "the model failed"
    assert (ok[0].tolist(), also_ok[0].tolist()) == ([2.0], [4.0])


def test_a_call_whose_client_left_while_queued_is_not_run() -> None:
    hold = threading.Event()
    servable = RecordingServable(hold)
    runner = DirectRunner(threads=1)

    async def main() -> Any:
        first = asyncio.ensure_future(runner.run(servable, call(1), 0))
        left = asyncio.ensure_future(runner.run(servable, call(2), 0))
        await asyncio.sleep(0)  # both are queued; the one thread holds the first
        left.cancel()
        hold.set()
        return await asyncio.wait_for(first, 30)

    try:
        assert asyncio.run(main())[0].tolist() == [2.0]
    finally:
        runner.close()
    assert servable.calls == 1


def test_a_closed_runner_refuses_new_calls() -> None:
    runner = DirectRunner(threads=1)
    runner.close()
    with pytest.raises(ServingError) as caught:
        asyncio.run(runner.run(RecordingServable(), call(1), 0))
    assert caught.value.code == "UNAVAILABLE"
    assert "shutting down" in str(caught.value)


def calls(runner: DirectRunner, servable: RecordingServable, count: int) -> None:
    async def main() -> None:
        for n in range(count):
            await runner.run(servable, call(n), 0)

    asyncio.run(main())


LOOP = threading.current_thread().name


@pytest.fixture
def runner() -> Iterator[DirectRunner]:
    made = DirectRunner(threads=1)
    yield made
    made.close()


def test_calls_to_a_servable_measured_short_on_the_loop_run_there(runner: DirectRunner) -> None:
    servable = RecordingServable()
    runner.times(servable).on_loop = SHORT_CALL_SECONDS / 2  # type: ignore[arg-type]  # a stand-in
    calls(runner, servable, 8)
    assert servable.threads == {LOOP}


def test_a_servable_on_the_threads_tries_the_loop_and_stays_there_when_its_call_is_short(
    runner: DirectRunner,
) -> None:
    servable = RecordingServable()
    calls(runner, servable, 200)
    assert servable.where[0] == "tf-run-0"  # nothing measured yet
    assert set(servable.where[-100:]) == {LOOP}


def on_the_loop(runner: DirectRunner) -> RecordingServable:
    """A servable whose quick calls the runner has moved to the loop."""
    servable = RecordingServable()
    calls(runner, servable, 200)
    assert servable.where[-1] == LOOP
    return servable


def test_a_servable_whose_calls_turn_slow_on_the_loop_goes_back_to_the_threads(
    runner: DirectRunner,
) -> None:
    servable = on_the_loop(runner)
    servable.cpu_seconds = 3 * SHORT_CALL_SECONDS
    calls(runner, servable, 100)
    assert set(servable.where[-20:]) == {"tf-run-0"}


def test_a_servable_on_the_loop_stays_there_through_an_odd_slow_call(
    runner: DirectRunner,
) -> None:
    servable = on_the_loop(runner)
    servable.cpu_seconds = 3 * SHORT_CALL_SECONDS
    calls(runner, servable, 16)  # one of any 16 calls on the loop is measured
    servable.cpu_seconds = 0.0
    calls(runner, servable, 60)
    assert set(servable.where[-76:]) == {LOOP}


def test_a_servable_whose_calls_take_a_millisecond_is_never_tried_on_the_loop(
    runner: DirectRunner,
) -> None:
    servable = RecordingServable()
    servable.cpu_seconds = 0.002
    calls(runner, servable, 140)
    assert servable.threads == {"tf-run-0"}


def test_a_graph_that_may_run_long_stays_on_the_threads_however_short_its_calls(
    runner: DirectRunner,
) -> None:
    servable = RecordingServable()
    servable.may_run_long = True
    calls(runner, servable, 200)
    assert servable.threads == {"tf-run-0"}
