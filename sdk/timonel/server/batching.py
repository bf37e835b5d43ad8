"""Server-side batching (``--enable_batching``), with the semantics of TF's SharedBatchScheduler.

Concurrent calls to the same session call (same servable, feeds and fetches, and the same shape
apart from dimension 0) join one open batch; the batch is run as one session call and its outputs
are split back along dimension 0. A batch closes when it reaches ``max_batch_size`` or when
``batch_timeout_micros`` has passed since its first call; with a timeout of 0 it runs as soon as
one of ``num_batch_threads`` is free, so batches grow exactly while the model is busy.
``allowed_batch_sizes`` pads a batch up (with copies of its first row) to the next allowed size;
more than ``max_enqueued_batches`` waiting batches per queue refuse new calls with UNAVAILABLE.
A batch runs with the latest deadline of its calls (none if one has none), as TF Serving's
BatchingSession; a batch whose every call timed out while queued is not run.

REST and gRPC handlers both await ``run`` on the event loop, so calls from either API share
batches. ``submit`` takes the scheduler's lock just long enough to add the call to its queue and
returns an asyncio future; ``num_batch_threads`` batch threads wait on that lock's condition for
a batch that is full or due, run it, and settle its calls: a finished batch wakes the loop once
for all its calls, not once per call. So a call is handed over once each way.

Calls that cannot be merged (an input of rank 0, inputs disagreeing on dimension 0, or differing
trailing shapes, which form their own queues) run on their own; ``pad_variable_length_inputs`` is
read but shapes are never padded, so such calls simply batch separately.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from timonel.errors import ServingError
from timonel.server.handoff import LoopHandoff, Outcome
from timonel.server.metrics import ServerMetrics
from timonel.server.runner import shutting_down
from timonel.server.servable import Call, Servable
from timonel.tfserving import BatchingParameters

log = logging.getLogger("timonel.server")


@dataclass(eq=False)
class _Task:
    call: Call
    size: int
    timeout_ms: int
    enqueued: float
    #: settled from a batch thread, through the loop it belongs to
    future: asyncio.Future[list[np.ndarray]]

    @property
    def deadline(self) -> float:
        return self.enqueued + self.timeout_ms / 1e3 if self.timeout_ms > 0 else math.inf


@dataclass(eq=False)
class _Batch:
    servable: Servable
    fetches: tuple[str, ...]
    opened: float
    #: when the batch runs even if not full (``opened + batch_timeout_micros``)
    due: float
    #: False for a call that cannot be merged: it runs alone, as it came
    merged: bool = True
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0


@dataclass(eq=False)
class _Queue:
    open: _Batch | None = None
    ready: deque[_Batch] = field(default_factory=deque)


class BatchScheduler:
    """A ``Runner`` that merges concurrent calls into batches, run by its own batch threads."""

    def __init__(self, params: BatchingParameters, metrics: ServerMetrics, *, threads: int) -> None:
        self.params = params
        self.metrics = metrics
        self.threads = threads
        self._timeout = params.batch_timeout_micros / 1e6
        self._lock = threading.Condition(threading.Lock())
        self._handoff = LoopHandoff()
        self._queues: dict[tuple[Any, ...], _Queue] = {}
        self._alone = _Queue()  # calls that cannot be merged, in arrival order
        self._draining = False  # open batches run at once, without waiting to fill
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"{params.thread_pool_name}-{n}", daemon=True)
            for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    # ---- joining a batch -----------------------------------------------------------------

    async def run(self, servable: Servable, call: Call, timeout_ms: int) -> list[np.ndarray]:
        """Join a batch; the loop goes on while the batch forms and runs."""
        return await self.submit(servable, call, timeout_ms)

    def submit(
        self, servable: Servable, call: Call, timeout_ms: int
    ) -> asyncio.Future[list[np.ndarray]]:
        """Add a call to its queue; returns the future of its outputs, on the running event
        loop. Never blocks."""
        size = _batch_dim(call)
        limit = self.params.max_batch_size
        if size is not None and size > limit:
            raise ServingError(
                f"Task size {size} is larger than maximum input batch size {limit}",
                code="INVALID_ARGUMENT",
            )
        now = time.perf_counter()
        future: asyncio.Future[list[np.ndarray]] = asyncio.get_running_loop().create_future()
        task = _Task(call, size or 0, timeout_ms, now, future)
        with self._lock:
            if self._closed:
                raise shutting_down()
            if size is None:
                alone = _Batch(servable, call.fetches, now, now, merged=False, tasks=[task])
                self._alone.ready.append(alone)
                self._lock.notify()
                return future
            key = (
                id(servable),
                tuple(call.feeds),
                call.fetches,
                tuple((v.shape[1:], v.dtype.str) for v in call.feeds.values()),
            )
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue()
            batch = queue.open
            wake = False
            if batch is not None and batch.size + size > limit:
                self._close(queue)
                batch = None
            if batch is None:
                if len(queue.ready) >= self.params.max_enqueued_batches:
                    raise ServingError(
                        "The batch scheduling queue to which this task was submitted is full",
                        code="UNAVAILABLE",
                    )
                batch = queue.open = _Batch(servable, call.fetches, now, now + self._timeout)
                wake = True  # a batch thread runs it (no timeout) or learns when it is due
            batch.tasks.append(task)
            batch.size += size
            if batch.size >= limit:
                self._close(queue)
                wake = True
            if wake:
                self._lock.notify()
        return future

    # ---- batch threads -------------------------------------------------------------------

    def _close(self, queue: _Queue) -> None:
        if queue.open is not None:
            queue.ready.append(queue.open)
            queue.open = None

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            self._execute(batch)

    def _take(self) -> _Batch | None:
        """The next batch to run, waiting for one; None once closed and nothing is left."""
        with self._lock:
            while True:
                batch, due = self._next_batch(time.perf_counter())
                if batch is not None:
                    return batch
                if self._closed:
                    return None
                self._lock.wait(due)

    def _next_batch(self, now: float) -> tuple[_Batch | None, float | None]:
        """The closed batch that waited longest, else an open batch that is due (with no
        timeout, or while draining, any is). Otherwise (None, seconds until one is due)."""
        queues = [self._alone, *self._queues.values()]
        ready = [queue for queue in queues if queue.ready]
        if ready:
            return min(ready, key=lambda q: q.ready[0].opened).ready.popleft(), None
        waiting = [queue for queue in queues if queue.open is not None]
        if not waiting:
            return None, None
        queue = min(waiting, key=lambda q: q.open.due if q.open else math.inf)
        batch = queue.open
        assert batch is not None
        if batch.due <= now or self._draining:
            queue.open = None
            return batch, None
        return None, batch.due - now

    def _execute(self, batch: _Batch) -> None:
        started = time.perf_counter()
        for task in batch.tasks:
            self.metrics.record(
                self.metrics.queuing_latency,
                (started - task.enqueued) * 1e6,
                self.params.thread_pool_name,
            )
        outcomes: list[Outcome]
        try:
            timeout_ms = _run_timeout_ms(batch.tasks, started)
            if not batch.merged:
                (task,) = batch.tasks
                values = batch.servable.run(task.call.feeds, batch.fetches, timeout_ms=timeout_ms)
                outcomes = [values]
            else:
                feeds, padding = self._merge(batch)
                values = batch.servable.run(feeds, batch.fetches, timeout_ms=timeout_ms)
                outcomes = list(_split(batch, values, padding))
        except ServingError as exc:
            outcomes = [exc] * len(batch.tasks)
        except Exception as exc:  # a bug must still answer every caller, and be logged
            log.exception("batch of %s failed", batch.servable.name)
            outcomes = [exc] * len(batch.tasks)
        self._handoff.settle(
            (task.future, outcome) for task, outcome in zip(batch.tasks, outcomes, strict=True)
        )

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
        for feed in batch.tasks[0].call.feeds:
            parts = [task.call.feeds[feed] for task in batch.tasks]
            if padding:
                parts.append(np.repeat(parts[0][:1], padding, axis=0))
            feeds[feed] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return feeds, padding

    def drain(self) -> None:
        """From now on run every batch at once, full or not: the server is shutting down, and
        its in-flight calls should not wait out ``batch_timeout_micros`` (TF's scheduler
        likewise runs its open batches when it is torn down)."""
        with self._lock:
            self._draining = True
            self._lock.notify_all()

    def close(self) -> None:
        """Run what is queued (open batches at once), then stop the batch threads."""
        with self._lock:
            self._draining = self._closed = True
            self._lock.notify_all()
        for worker in self._workers:
            worker.join()


def _run_timeout_ms(tasks: list[_Task], now: float) -> int:
    """The batch's run timeout: until the latest deadline of its calls (0: one has none)."""
    latest = max(task.deadline for task in tasks)
    if latest == math.inf:
        return 0
    if latest <= now:
        raise ServingError(
            "Run() timeout exceeded while waiting in batching queue", code="RESOURCE_EXHAUSTED"
        )
    return max(1, math.ceil((latest - now) * 1e3))


def _split(batch: _Batch, values: list[np.ndarray], padding: int) -> list[list[np.ndarray]]:
    total = batch.size + padding
    for value in values:
        if value.ndim == 0 or value.shape[0] != total:
            raise ServingError(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                "dimension sizes of the input tensors",
                code="FAILED_PRECONDITION",
            )
    outputs = []
    offset = 0
    for task in batch.tasks:
        end = offset + task.size
        outputs.append([value[offset:end] for value in values])
        offset = end
    return outputs


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
