"""Server-side batching (``--enable_batching``), with the semantics of TF's SharedBatchScheduler.

Concurrent calls to the same session call (same servable, feeds and fetches, and the same shape
apart from dimension 0) join one open batch; the batch is run as one session call and its outputs
are split back along dimension 0. A batch closes when it reaches ``max_batch_size`` or when
``batch_timeout_micros`` has passed since its first call; with a timeout of 0 it runs as soon as
one of ``num_batch_threads`` is free, so batches grow exactly while the model is busy.
``allowed_batch_sizes`` pads a batch up (with copies of its first row) to the next allowed size;
more than ``max_enqueued_batches`` waiting batches per queue refuse new calls with UNAVAILABLE.

Calls that cannot be merged (an input of rank 0, inputs disagreeing on dimension 0, or differing
trailing shapes, which form their own queues) run on their own; ``pad_variable_length_inputs`` is
read but shapes are never padded, so such calls simply batch separately.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from timonel.errors import ServingError
from timonel.server.metrics import ServerMetrics
from timonel.server.servable import Call, Servable
from timonel.tfserving import BatchingParameters


@dataclass
class _Task:
    call: Call
    size: int
    future: asyncio.Future[list[np.ndarray]]
    enqueued: float


@dataclass
class _Batch:
    servable: Servable
    feeds: tuple[str, ...]
    fetches: tuple[str, ...]
    timeout_ms: int
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0
    opened: float = 0.0


@dataclass
class _Queue:
    open: _Batch | None = None
    ready: deque[_Batch] = field(default_factory=deque)
    timer: asyncio.TimerHandle | None = None


class BatchScheduler:
    """A ``Runner`` that merges concurrent calls into batches."""

    def __init__(self, params: BatchingParameters, metrics: ServerMetrics) -> None:
        self.params = params
        self.metrics = metrics
        self.threads = params.num_batch_threads or (os.cpu_count() or 1)
        self._executor = ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix=params.thread_pool_name
        )
        self._queues: dict[tuple[Any, ...], _Queue] = {}
        self._busy = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run_blocking(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        """``run`` from another thread: the call joins the loop's batches and this thread waits."""
        if self._loop is None:
            raise ServingError("The batch scheduler is not running yet", code="UNAVAILABLE")
        future = asyncio.run_coroutine_threadsafe(self.run(servable, call, timeout_ms), self._loop)
        return future.result()

    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        size = _batch_dim(call)
        loop = asyncio.get_running_loop()
        if size is None:
            return await loop.run_in_executor(
                self._executor,
                lambda: servable.run(call.feeds, call.fetches, timeout_ms=timeout_ms),
            )
        limit = self.params.max_batch_size
        if size > limit:
            raise ServingError(
                f"Task size {size} is larger than maximum input batch size {limit}",
                code="INVALID_ARGUMENT",
            )
        key = (
            id(servable),
            tuple(call.feeds),
            call.fetches,
            tuple((v.shape[1:], v.dtype.str) for v in call.feeds.values()),
        )
        queue = self._queues.setdefault(key, _Queue())
        now = time.perf_counter()
        task = _Task(call, size, loop.create_future(), now)
        batch = queue.open
        if batch is not None and batch.size + size > limit:
            self._close(queue)
            batch = None
        if batch is None:
            if len(queue.ready) >= self.params.max_enqueued_batches:
                raise ServingError(
                    "The batch scheduling queue to which this task was submitted is full",
                    code="UNAVAILABLE",
                )
            batch = _Batch(servable, tuple(call.feeds), call.fetches, timeout_ms, opened=now)
            queue.open = batch
            if self.params.batch_timeout_micros > 0:
                queue.timer = loop.call_later(
                    self.params.batch_timeout_micros / 1e6, self._expire, queue, batch
                )
        batch.tasks.append(task)
        batch.size += size
        if batch.size >= limit:
            self._close(queue)
        self._dispatch()
        return await task.future

    def _close(self, queue: _Queue) -> None:
        if queue.open is not None:
            queue.ready.append(queue.open)
            queue.open = None
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None

    def _expire(self, queue: _Queue, batch: _Batch) -> None:
        if queue.open is batch:
            queue.timer = None
            self._close(queue)
            self._dispatch()

    def _dispatch(self) -> None:
        """Start batches while batch threads are free: closed ones first, oldest first."""
        while self._busy < self.threads:
            batch = self._next_batch()
            if batch is None:
                return
            self._busy += 1
            asyncio.get_running_loop().create_task(self._execute(batch))

    def _next_batch(self) -> _Batch | None:
        ready = [q for q in self._queues.values() if q.ready]
        if ready:
            queue = min(ready, key=lambda q: q.ready[0].opened)
            return queue.ready.popleft()
        if self.params.batch_timeout_micros > 0:
            return None
        waiting = [q for q in self._queues.values() if q.open is not None]
        if not waiting:
            return None
        queue = min(waiting, key=lambda q: q.open.opened if q.open else 0.0)
        batch = queue.open
        queue.open = None
        return batch

    async def _execute(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        for task in batch.tasks:
            self.metrics.record(
                self.metrics.queuing_latency,
                (started - task.enqueued) * 1e6,
                self.params.thread_pool_name,
            )
        try:
            feeds, padded = self._merge(batch)
            values = await loop.run_in_executor(
                self._executor,
                lambda: batch.servable.run(feeds, batch.fetches, timeout_ms=batch.timeout_ms),
            )
            self._split(batch, values, padded)
        except ServingError as exc:
            for task in batch.tasks:
                if not task.future.done():
                    task.future.set_exception(exc)
        finally:
            self._busy -= 1
            self._dispatch()

    def _merge(self, batch: _Batch) -> tuple[dict[str, np.ndarray], int]:
        name = batch.servable.name
        self.metrics.record(self.metrics.wrapped_run_count, 1, self.params.thread_pool_name)
        for task in batch.tasks:
            self.metrics.record(self.metrics.input_batch_size, task.size, name, "BatchingSession")
        target = _padded_size(batch.size, self.params.allowed_batch_sizes)
        padding = target - batch.size
        self.metrics.record(self.metrics.processed_batch_size, target, name, "BatchingSession")
        self.metrics.record(self.metrics.padding_size, padding, name, str(target))
        feeds = {}
        for feed in batch.feeds:
            parts = [task.call.feeds[feed] for task in batch.tasks]
            if padding:
                first = parts[0][:1]
                parts.append(np.repeat(first, padding, axis=0))
            feeds[feed] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return feeds, padding

    def _split(self, batch: _Batch, values: list[np.ndarray], padding: int) -> None:
        total = batch.size + padding
        for value in values:
            if value.ndim == 0 or value.shape[0] != total:
                raise ServingError(
                    "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                    "dimension sizes of the input tensors",
                    code="FAILED_PRECONDITION",
                )
        offset = 0
        for task in batch.tasks:
            end = offset + task.size
            if not task.future.done():
                task.future.set_result([value[offset:end] for value in values])
            offset = end

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _batch_dim(call: Call) -> int | None:
    """Dimension 0 shared by every feed, or None when the call cannot join a batch."""
    sizes = {value.shape[0] if value.ndim else None for value in call.feeds.values()}
    if len(sizes) != 1:
        return None
    (size,) = sizes
    return size


def _padded_size(size: int, allowed: tuple[int, ...]) -> int:
    if not allowed:
        return size
    index = bisect.bisect_left(allowed, size)
    return allowed[min(index, len(allowed) - 1)]
