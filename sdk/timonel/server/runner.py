"""How a prepared session call reaches TensorFlow from the event loop.

Every REST and gRPC request ends in one runner call, ``run``, awaited by its handler on the event
loop that serves both APIs; the runner must not block that loop. ``DirectRunner`` hands each
call to a thread pool (TF releases the GIL while kernels run, so calls overlap); the batching
scheduler in ``timonel.server.batching`` is the other runner, used with ``--enable_batching``.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from timonel.server.servable import Call, Servable


class Runner(Protocol):
    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]: ...

    def drain(self) -> None:
        """The server is shutting down: run what waits without delay."""

    def close(self) -> None: ...


class DirectRunner:
    """One session call per request, on a thread pool so the event loop goes on meanwhile."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tf-run")

    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        work = functools.partial(servable.run, call.feeds, call.fetches, timeout_ms=timeout_ms)
        return await loop.run_in_executor(self._executor, work)

    def drain(self) -> None:
        pass  # nothing waits here: every call runs as it comes

    def close(self) -> None:
        self._executor.shutdown(wait=True)
