"""How a prepared session call reaches TensorFlow from the event loop.

Every REST and gRPC request ends in one runner call, ``run``, awaited by its handler on the event
loop that serves both APIs; the runner must not block that loop for long. ``DirectRunner`` runs a
call on the loop when the servable's calls are short, and otherwise hands it to one of its
threads (TF releases the GIL while kernels run, so calls overlap); the batching scheduler in
``timonel.server.batching`` is the other runner, used with ``--enable_batching``.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from timonel.errors import ServingError
from timonel.server.handoff import LoopHandoff, Outcome
from timonel.server.servable import Call, Servable


class Runner(Protocol):
    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]: ...

    def drain(self) -> None:
        """The server is shutting down: run what waits without delay."""

    def close(self) -> None: ...


def shutting_down() -> ServingError:
    """What a runner answers a call that comes after ``close()``: UNAVAILABLE, which clients
    retry elsewhere."""
    return ServingError(
        "The server is shutting down and takes no new calls; send them to another replica",
        code="UNAVAILABLE",
    )


#: A call to a servable whose calls on the event loop take less than this runs there: handing it
#: to a thread and back would cost the loop more than the call itself.
SHORT_CALL_SECONDS = 100e-6
#: One call in this many made on the loop is measured.
_MEASURED_ON_LOOP = 16
#: A servable on the threads tries one call in this many on the loop, when its calls there take
#: less than ``_PROBED_BELOW`` seconds.
_PROBE_EVERY = 64
_PROBED_BELOW = 1e-3


class DirectRunner:
    """One session call per request: short ones on the loop, others on ``threads`` threads so
    the event loop goes on meanwhile.

    The loop serves every request's parsing and answer and holds the GIL for it, so it is what
    limits a small model's throughput; a thread hand-off there is a queue, two GIL switches and
    a loop wake-up, several times a small model's whole call. A servable starts on the threads;
    while its calls there are well under a millisecond, one call in ``_PROBE_EVERY`` is tried
    on the loop, and when that one is short the servable moves there; calls that turn slow
    (their moving average, or one call ten times as long) move it back. Calls are measured in
    the CPU time of their thread, as wall time counts the waits for the GIL and for a core,
    which other threads cause; on the loop, where reading that clock (a system call) costs a
    tenth of such a call, one call in ``_MEASURED_ON_LOOP`` is. The same call costs a thread
    several times its CPU on the loop (waking up, taking the GIL back), so only calls made on
    the loop decide that a servable belongs there. A call that turns out slow while on the loop
    holds every other request for its duration, so a graph with ops that may run for any time
    (``Servable.may_run_long``: loops, queues, Python) stays on the threads, where TensorFlow
    cancels a call at its timeout.

    Its own threads rather than ``loop.run_in_executor``: a finished call is handed back through
    ``LoopHandoff``, which wakes the loop once for all the calls that finished together. How many
    threads is ``timonel.server.sizing``'s choice: a call runs its ops in the thread that makes
    it, so these threads share the cores with TensorFlow's and the event loop.
    """

    def __init__(self, threads: int) -> None:
        self._calls: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._handoff = LoopHandoff()
        self._closed = False
        self._times: weakref.WeakKeyDictionary[Servable, CallTimes] = weakref.WeakKeyDictionary()
        self._counted = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"tf-run-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def times(self, servable: Servable) -> CallTimes:
        """What this runner measured of the servable's calls."""
        times = self._times.get(servable)
        if times is None:
            times = self._times[servable] = CallTimes()
        return times

    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        if self._closed:
            raise shutting_down()
        if not servable.may_run_long:
            times = self.times(servable)
            self._counted += 1
            if times.on_loop < SHORT_CALL_SECONDS:
                if self._counted % _MEASURED_ON_LOOP:
                    return servable.run(call.feeds, call.fetches, timeout_ms=timeout_ms)
                return self._measured_on_loop(servable, call, timeout_ms, times, probe=False)
            if times.on_threads < _PROBED_BELOW and not self._counted % _PROBE_EVERY:
                return self._measured_on_loop(servable, call, timeout_ms, times, probe=True)
        future: asyncio.Future[list[np.ndarray]] = asyncio.get_running_loop().create_future()
        self._calls.put(_Work(future, servable, call, timeout_ms))
        return await future

    def _measured_on_loop(
        self, servable: Servable, call: Call, timeout_ms: int, times: CallTimes, *, probe: bool
    ) -> list[np.ndarray]:
        """A call made on the loop and measured; a probe's measure replaces the one before."""
        start = time.thread_time()
        try:
            return servable.run(call.feeds, call.fetches, timeout_ms=timeout_ms)
        finally:
            seconds = time.thread_time() - start
            times.on_loop = seconds if probe else _recent(times.on_loop, seconds)

    def _work(self) -> None:
        while (work := self._calls.get()) is not None:
            if work.future.cancelled():  # its client left while it queued
                continue
            outcome: Outcome
            start = time.thread_time()
            try:
                outcome = work.servable.run(
                    work.call.feeds, work.call.fetches, timeout_ms=work.timeout_ms
                )
            except Exception as exc:  # the call's error is its caller's answer
                outcome = exc
            if (times := self._times.get(work.servable)) is not None:
                times.on_threads = _recent(times.on_threads, time.thread_time() - start)
            self._handoff.settle([(work.future, outcome)])

    def drain(self) -> None:
        pass  # nothing waits here: every call runs as it comes

    def close(self) -> None:
        """Finish the calls queued, then stop the threads."""
        self._closed = True
        for _ in self._threads:
            self._calls.put(None)
        for thread in self._threads:
            thread.join()


@dataclass
class CallTimes:
    """A servable's recent call times, in seconds of the calling thread's CPU, where made."""

    on_loop: float = math.inf
    on_threads: float = math.inf


def _recent(recent: float, seconds: float) -> float:
    """The recent time after one more call, a moving average: a call ten times the average
    moves it past the threshold at once, while the odd call a few times longer than usual (an
    interrupt, a page fault, a cold cache) does not send a servable back and forth."""
    return seconds if recent == math.inf else 0.9 * recent + 0.1 * seconds


@dataclass(frozen=True)
class _Work:
    future: asyncio.Future[list[np.ndarray]]
    servable: Servable
    call: Call
    timeout_ms: int
