"""Outcomes settled from other threads reach their futures, waking each loop once per burst."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from timonel.server.handoff import LoopHandoff


def test_outcomes_settled_before_the_loop_runs_share_one_wake_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handoff = LoopHandoff()
    wakes = []

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        wake = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
            wakes.append(threading.current_thread().name)
            return wake(callback, *args, context=context)

        monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
        futures = [loop.create_future() for _ in range(3)]

        def settle_each() -> None:  # three separate settles, before the loop gets to run
            for i, future in enumerate(futures):
                handoff.settle([(future, [np.array([i])])])

        thread = threading.Thread(target=settle_each, name="tf-thread")
        thread.start()
        thread.join()
        return await asyncio.wait_for(asyncio.gather(*futures), 30)

    results = asyncio.run(main())
    assert [r[0].tolist() for r in results] == [[0], [1], [2]]
    assert wakes == ["tf-thread"]


def test_an_error_outcome_is_raised_to_its_awaiter() -> None:
    handoff = LoopHandoff()

    async def main() -> None:
        future = asyncio.get_running_loop().create_future()
        threading.Thread(target=handoff.settle, args=([(future, ValueError("bad"))],)).start()
        await asyncio.wait_for(future, 30)

    with pytest.raises(ValueError, match="bad"):
        asyncio.run(main())


def test_a_cancelled_future_is_skipped() -> None:
    handoff = LoopHandoff()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        gone, waiting = loop.create_future(), loop.create_future()
        gone.cancel()
        handoff.settle([(gone, [np.array([1])]), (waiting, [np.array([2])])])
        return await asyncio.wait_for(waiting, 30)

    assert asyncio.run(main())[0].tolist() == [2]


def test_settling_for_a_closed_loop_does_nothing() -> None:
    handoff = LoopHandoff()
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    loop.close()
    handoff.settle([(future, [np.array([1])])])
    assert not future.done()
    later = asyncio.new_event_loop()  # and the hand-off still serves other loops
    try:
        next_future = later.create_future()
        handoff.settle([(next_future, [np.array([3])])])
        assert later.run_until_complete(next_future)[0].tolist() == [3]
    finally:
        later.close()
