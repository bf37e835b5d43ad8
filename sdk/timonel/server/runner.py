"""How a prepared session call reaches TensorFlow from the event loop.

Every REST and gRPC request ends in one runner call, ``run``, awaited by its handler on the event
loop that serves both APIs; the runner must not block that loop for long. ``DirectRunner`` runs a
call on the loop when the servable's calls are short, and otherwise hands it to one of its
threads (TF releases the GIL while kernels run, so calls overlap); the batching scheduler in
``timonel.server.batching`` is the other runner, used with ``--enable_batching``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
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


#: A call to a servable whose calls take less than this (``Servable.call_seconds``) runs on the
#: event loop: handing it to a thread and back would cost the loop more than the call itself.
SHORT_CALL_SECONDS = 100e-6


class DirectRunner:
    """One session call per request: short ones on the loop, others on ``threads`` threads so
    the event loop goes on meanwhile.

    The loop serves every request's parsing and answer and holds the GIL for it, so it is what
    limits a small model's throughput; a thread hand-off there is a queue, two GIL switches and
    a loop wake-up, several times a small model's whole call. A servable starts on the threads
    and moves to the loop once its calls are measured short; one slow call moves it back. A
    call that turns out slow while on the loop holds every other request for its duration, so
    a graph with ops that may run for any time (``Servable.may_run_long``: loops, queues,
    Python) stays on the threads, where TensorFlow cancels a call at its timeout.

    Its own threads rather than ``loop.run_in_executor``: a finished call is handed back through
    ``LoopHandoff``, which wakes the loop once for all the calls that finished together. How many
    threads is ``timonel.server.sizing``'s choice: a call without a timeout runs its ops in the
    thread that makes it, so these threads share the cores with TensorFlow's and the event loop.
    """

    def __init__(self, threads: int) -> None:
        self._calls: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._handoff = LoopHandoff()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"tf-run-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        if self._closed:
            raise shutting_down()
        if servable.call_seconds < SHORT_CALL_SECONDS and not servable.may_run_long:
            return servable.run(call.feeds, call.fetches, timeout_ms=timeout_ms)
        future: asyncio.Future[list[np.ndarray]] = asyncio.get_running_loop().create_future()
        self._calls.put(_Work(future, servable, call, timeout_ms))
        return await future

    def _work(self) -> None:
        while (work := self._calls.get()) is not None:
            if work.future.cancelled():  # its client left while it queued
                continue
            outcome: Outcome
            try:
                outcome = work.servable.run(
                    work.call.feeds, work.call.fetches, timeout_ms=work.timeout_ms
                )
            except Exception as exc:  # the call's error is its caller's answer
                outcome = exc
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


@dataclass(frozen=True)
class _Work:
    future: asyncio.Future[list[np.ndarray]]
    servable: Servable
    call: Call
    timeout_ms: int
