"""The batching scheduler merges concurrent calls awaited on the event loop, splits results,
hands a batch's outcomes back in one wake-up of the loop, and enforces its limits."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from timonel.errors import ServingError
from timonel.server.batching import BatchScheduler
from timonel.server.metrics import ServerMetrics
from timonel.server.servable import Call
from timonel.tfserving import BatchingParameters


class DoublingServable:
    """Stands in for a model: doubles its one feed, and records every batch it is given."""

    name = "double"

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.hold = hold
        self.running = threading.Event()  # set once a batch has reached the model

    def run(
        self, feeds: dict[str, np.ndarray], fetches: Any, *, timeout_ms: int = 0
    ) -> list[np.ndarray]:
        self.running.set()
        if self.hold is not None:
            self.hold.wait(10)
        (value,) = feeds.values()
        self.batches.append(value.shape[0])
        return [value * 2]


def one_thread_scheduler(**params: Any) -> BatchScheduler:
    """A scheduler whose one batch thread runs batches in the order they close."""
    return BatchScheduler(BatchingParameters(**params), ServerMetrics(), threads=1)


def call(*rows: float) -> Call:
    return Call({"x:0": np.array(rows, dtype=np.float32).reshape(-1, 1)}, ("y:0",), ("y",))


def run_all(
    scheduler: BatchScheduler, servable: Any, calls: list[Call], *, timeout_ms: int = 0
) -> list[Any]:
    async def main() -> list[Any]:
        tasks = [scheduler.run(servable, c, timeout_ms) for c in calls]
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        return asyncio.run(main())
    finally:
        scheduler.close()


def test_concurrent_calls_within_the_timeout_become_one_batch() -> None:
    servable = DoublingServable()
    scheduler = one_thread_scheduler(max_batch_size=8, batch_timeout_micros=100_000)
    results = run_all(scheduler, servable, [call(i) for i in range(6)])
    assert servable.batches == [6]
    assert [r[0].ravel().tolist() for r in results] == [[2.0 * i] for i in range(6)]


def test_calls_that_fill_a_batch_run_it_at_once() -> None:
    """REST and gRPC handlers await ``run`` on one loop: six calls fill a batch of six, which
    runs without waiting out its ten-minute timeout (nor the drain that ``close`` starts)."""
    servable = DoublingServable()
    scheduler = one_thread_scheduler(max_batch_size=6, batch_timeout_micros=600_000_000)

    async def main() -> list[Any]:
        calls = [scheduler.run(servable, call(i), 0) for i in range(6)]
        return await asyncio.wait_for(asyncio.gather(*calls), 60)

    try:
        results = asyncio.run(main())
    finally:
        scheduler.close()
    assert servable.batches == [6]
    assert [r[0].ravel().tolist() for r in results] == [[2.0 * i] for i in range(6)]


def test_a_finished_batch_wakes_the_loop_once_for_all_its_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servable = DoublingServable()
    scheduler = one_thread_scheduler(max_batch_size=4, batch_timeout_micros=600_000_000)
    wakers: list[str] = []  # the thread of each hand-over to the loop

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        wake = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
            wakers.append(threading.current_thread().name)
            return wake(callback, *args, context=context)

        monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
        calls = [scheduler.run(servable, call(i), 0) for i in range(4)]
        return await asyncio.wait_for(asyncio.gather(*calls), 60)

    try:
        results = asyncio.run(main())
    finally:
        scheduler.close()
    assert servable.batches == [4]
    assert wakers == [f"{scheduler.params.thread_pool_name}-0"]
    assert [r[0].ravel().tolist() for r in results] == [[0.0], [2.0], [4.0], [6.0]]


def test_calls_that_timed_out_in_the_queue_are_not_run() -> None:
    servable = DoublingServable()
    scheduler = one_thread_scheduler(max_batch_size=8, batch_timeout_micros=50_000)
    (result,) = run_all(scheduler, servable, [call(1)], timeout_ms=1)
    assert isinstance(result, ServingError)
    assert (result.code, str(result)) == (
        "RESOURCE_EXHAUSTED",
        "Run() timeout exceeded while waiting in batching queue",
    )
    assert servable.batches == []


def test_a_full_batch_runs_without_waiting_and_the_rest_follows() -> None:
    servable = DoublingServable()
    scheduler = one_thread_scheduler(max_batch_size=4, batch_timeout_micros=50_000)
    results = run_all(scheduler, servable, [call(1, 2), call(3, 4), call(5)])
    assert servable.batches == [4, 1]
    assert results[1][0].ravel().tolist() == [6.0, 8.0]


def test_with_no_timeout_calls_batch_while_the_model_is_busy() -> None:
    hold = threading.Event()
    servable = DoublingServable(hold)
    scheduler = one_thread_scheduler(max_batch_size=16)

    async def main() -> list[Any]:
        first = asyncio.ensure_future(scheduler.run(servable, call(0), 0))
        # the first call runs alone (and is held there); the next five queue up meanwhile
        await asyncio.get_running_loop().run_in_executor(None, servable.running.wait, 30)
        rest = [asyncio.ensure_future(scheduler.run(servable, call(i), 0)) for i in range(1, 6)]
        await asyncio.sleep(0)  # each call joins the queue in its first step
        hold.set()
        return await asyncio.gather(first, *rest)

    try:
        asyncio.run(main())
    finally:
        scheduler.close()
    assert servable.batches == [1, 5]


def test_allowed_batch_sizes_pad_and_the_padding_is_dropped() -> None:
    servable = DoublingServable()
    scheduler = one_thread_scheduler(
        max_batch_size=8, batch_timeout_micros=50_000, allowed_batch_sizes=(2, 4, 8)
    )
    results = run_all(scheduler, servable, [call(1), call(2), call(3)])
    assert servable.batches == [4]
    assert [r[0].ravel().tolist() for r in results] == [[2.0], [4.0], [6.0]]


def test_a_call_larger_than_the_largest_batch_is_refused() -> None:
    scheduler = one_thread_scheduler(max_batch_size=2)
    (result,) = run_all(scheduler, DoublingServable(), [call(1, 2, 3)])
    assert isinstance(result, ServingError)
    assert (result.code, str(result)) == (
        "INVALID_ARGUMENT",
        "Task size 3 is larger than maximum input batch size 2",
    )


def test_a_full_queue_answers_unavailable() -> None:
    scheduler = one_thread_scheduler(
        max_batch_size=1, batch_timeout_micros=200_000, max_enqueued_batches=1
    )
    results = run_all(scheduler, DoublingServable(), [call(1), call(2), call(3)])
    errors = [r for r in results if isinstance(r, ServingError)]
    assert errors and all(e.code == "UNAVAILABLE" for e in errors)
    assert str(errors[0]) == "The batch scheduling queue to which this task was submitted is full"


@pytest.mark.parametrize(
    "feeds", [{"x:0": np.float32(1.0)}, {"a:0": np.zeros(2), "b:0": np.zeros(3)}]
)
def test_calls_that_cannot_batch_run_alone(feeds: dict[str, Any]) -> None:
    class Echo:
        name = "echo"

        def run(self, feeds: dict[str, Any], fetches: Any, *, timeout_ms: int = 0) -> list[Any]:
            return list(feeds.values())

    scheduler = one_thread_scheduler(max_batch_size=4)
    call_ = Call({k: np.asarray(v) for k, v in feeds.items()}, ("y:0",), ("y",))
    (result,) = run_all(scheduler, Echo(), [call_])
    assert len(result) == len(feeds)


def test_drain_runs_an_open_batch_without_waiting_for_it_to_fill() -> None:
    servable = DoublingServable()
    scheduler = one_thread_scheduler(max_batch_size=8, batch_timeout_micros=600_000_000)

    async def main() -> list[Any]:
        futures = [scheduler.submit(servable, call(i), 0) for i in range(3)]
        scheduler.drain()  # the server is stopping: the batch of three runs now
        return await asyncio.wait_for(asyncio.gather(*futures), 60)

    try:
        results = asyncio.run(main())
    finally:
        scheduler.close()
    assert servable.batches == [3]
    assert [r[0].ravel().tolist() for r in results] == [[0.0], [2.0], [4.0]]


def test_a_closed_scheduler_refuses_calls_with_unavailable() -> None:
    scheduler = one_thread_scheduler(max_batch_size=8)
    scheduler.close()
    with pytest.raises(ServingError) as info:
        asyncio.run(scheduler.run(DoublingServable(), call(1), 0))
    assert (info.value.code, str(info.value)) == (
        "UNAVAILABLE",
        "The server is shutting down and takes no new calls; send them to another replica",
    )
