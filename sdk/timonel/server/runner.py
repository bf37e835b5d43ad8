"""How a prepared session call reaches TensorFlow, from the event loop or from a gRPC thread.

Every REST and gRPC request ends in one runner call: ``run`` from the event loop (REST), which
must not block it, or ``run_blocking`` from a thread of the gRPC server, which may. ``DirectRunner``
hands loop calls to a thread pool (TF releases the GIL while kernels run, so calls overlap) and
runs blocking calls in the caller's thread; the batching scheduler in ``timonel.server.batching``
is the other runner, used with ``--enable_batching``: both entries join its batches directly.
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

    def run_blocking(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]: ...

    def drain(self) -> None:
        """The server is shutting down: run what waits without delay."""

    def close(self) -> None: ...


class DirectRunner:
    """One session call per request: on a thread pool from the loop, in place from a thread."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tf-run")

    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        work = functools.partial(servable.run, call.feeds, call.fetches, timeout_ms=timeout_ms)
        return await loop.run_in_executor(self._executor, work)

    def run_blocking(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        return servable.run(call.feeds, call.fetches, timeout_ms=timeout_ms)

    def drain(self) -> None:
        pass  # nothing waits here: every call runs as it comes

    def close(self) -> None:
        self._executor.shutdown(wait=True)
