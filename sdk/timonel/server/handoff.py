"""Outcomes of TensorFlow threads handed back to the event loop, one wake-up per burst.

Waking a loop from another thread is a system call and a GIL hand-off; under load a wake-up per
finished call is most of what an unbatched small-model request costs on two cores. So a thread
that settles a future only wakes the loop when nothing is queued for it yet, and the loop then
settles everything that finished meanwhile in one go (bench/README.md has the measurement).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

#: what a call gets back: its outputs, or the error that ended it
Outcome = list[np.ndarray] | BaseException


class LoopHandoff:
    """Settles asyncio futures from any thread; each future's own loop runs the settling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]]
        self._queued = {}

    def settle(self, settled: Iterable[tuple[asyncio.Future[Any], Outcome]]) -> None:
        """Queue outcomes for their futures, waking only the loops with nothing queued yet."""
        to_wake = []
        with self._lock:
            for future, outcome in settled:
                loop = future.get_loop()
                queue = self._queued.get(loop)
                if queue is None:
                    queue = self._queued[loop] = []
                    to_wake.append(loop)
                queue.append((future, outcome))
        for loop in to_wake:
            try:
                loop.call_soon_threadsafe(self._settle_queued, loop)
            except RuntimeError:  # a closed loop: nobody awaits these calls any more
                with self._lock:
                    self._queued.pop(loop, None)

    def _settle_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            queue = self._queued.pop(loop, [])
        for future, outcome in queue:
            if future.done():  # the request was cancelled (its client went away)
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
