"""Prometheus metrics under TF Serving's names, plus the process metrics of prometheus_client.

prometheus_client writes every counter as ``<name>_total`` (and sorts labels, and adds
``_created`` series); TF Serving's exporter writes ``:tensorflow:serving:request_count`` as is,
and dashboards and alerts written for TF Serving query those exact names. So TF Serving's series
are kept here in plain dicts and written in the text format by hand (a few lines), followed by
prometheus_client's own ``process_*``/``python_*`` metrics. One series is the server's own:
``timonel_requests_in_flight``, read from the loaded versions when scraped (so it costs requests
nothing), which shows a drain or a queue building up.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

PREFIX = ":tensorflow:serving:"


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """TF's ``Buckets::Exponential``: upper bounds ``scale * growth**i``."""
    return tuple(scale * growth**i for i in range(count))


#: TF Serving's latency buckets in microseconds (``Buckets::Exponential(10, 1.8, 33)``).
LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
#: Batch sizes (``Buckets::Powers(2, ...)``-like: 1, 2, 4, ... 2**14).
BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 15)


class _Counter:
    def __init__(self, name: str, doc: str, labels: Sequence[str]) -> None:
        self.name, self.doc, self.labels = name, doc, tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def text(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} counter"]
        for key, value in list(self.values.items()):
            lines.append(f"{self.name}{_labels(self.labels, key)} {_number(value)}")
        return lines


class _Histogram:
    def __init__(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.doc, self.labels = name, doc, tuple(labels)
        self.bounds = list(buckets)
        self.series: dict[tuple[str, ...], list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, *labels: str) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.series.setdefault(labels, [0.0] * (len(self.bounds) + 3))
        row[bisect.bisect_left(self.bounds, value)] += 1
        row[-2] += value
        row[-1] += 1

    def text(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} histogram"]
        for key, row in list(self.series.items()):
            cumulative = 0.0
            for bound, count in zip([*self.bounds, float("inf")], row[:-2], strict=False):
                cumulative += count
                le = "+Inf" if bound == float("inf") else _number(bound)
                labels = _labels((*self.labels, "le"), (*key, le))
                lines.append(f"{self.name}_bucket{labels} {_number(cumulative)}")
            lines.append(f"{self.name}_sum{_labels(self.labels, key)} {_number(row[-2])}")
            lines.append(f"{self.name}_count{_labels(self.labels, key)} {_number(row[-1])}")
        return lines


class _Gauge:
    """A gauge whose values are read when the metrics are scraped."""

    def __init__(
        self,
        name: str,
        doc: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[tuple[str, ...], float]],
    ) -> None:
        self.name, self.doc, self.labels, self.read = name, doc, tuple(labels), read

    def text(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} gauge"]
        for key, value in sorted(self.read().items()):
            lines.append(f"{self.name}{_labels(self.labels, key)} {_number(value)}")
        return lines


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value))


class ServerMetrics:
    """The metrics one server process records; ``render()`` is the monitoring endpoint's body.

    ``in_flight`` reports the requests each loaded version is answering, by (model, version).
    """

    def __init__(self, in_flight: Callable[[], Mapping[tuple[str, ...], float]] = dict) -> None:
        self._lock = threading.Lock()
        self.request_count = _Counter(
            f"{PREFIX}request_count",
            "The total number of requests.",
            ["model_name", "status"],
        )
        self.request_latency = _Histogram(
            f"{PREFIX}request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            LATENCY_BUCKETS,
        )
        self.runtime_latency = _Histogram(
            f"{PREFIX}runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"],
            LATENCY_BUCKETS,
        )
        self.request_example_counts = _Histogram(
            f"{PREFIX}request_example_counts",
            "The number of tensorflow.Examples per request.",
            ["model"],
            BATCH_SIZE_BUCKETS,
        )
        self.request_example_count_total = _Counter(
            f"{PREFIX}request_example_count_total",
            "The total number of tensorflow.Examples.",
            ["model"],
        )
        self.model_warmup_latency = _Histogram(
            f"{PREFIX}model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            ["model_path", "status"],
            LATENCY_BUCKETS,
        )
        self.model_warmup_records_read = _Counter(
            f"{PREFIX}model_warmup_records_read",
            "The number of warmup records read.",
            ["model_path", "status"],
        )
        self.load_attempt_count = _Counter(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ["model_path", "status"],
        )
        self.load_latency = _Counter(
            ":tensorflow:cc:saved_model:load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            ["model_path"],
        )
        self.queuing_latency = _Histogram(
            f"{PREFIX}batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ["thread_pool_name"],
            LATENCY_BUCKETS,
        )
        self.input_batch_size = _Histogram(
            f"{PREFIX}batching_session:input_batch_size",
            "Tracks the batch size distribution on the inputs by model_name (if available).",
            ["model_name", "op_name"],
            BATCH_SIZE_BUCKETS,
        )
        self.processed_batch_size = _Histogram(
            f"{PREFIX}batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing by model_name (if available).",
            ["model_name", "op_name"],
            BATCH_SIZE_BUCKETS,
        )
        self.padding_size = _Histogram(
            f"{PREFIX}batching_session:padding_size",
            "Tracks the padding size distribution on batches by model_name (if available).",
            ["model_name", "execution_batch_size"],
            BATCH_SIZE_BUCKETS,
        )
        self.wrapped_run_count = _Counter(
            f"{PREFIX}batching_session:wrapped_run_count",
            "Tracks the number of batching session runs.",
            ["thread_pool_name"],
        )
        self.requests_in_flight = _Gauge(
            "timonel_requests_in_flight",
            "Predict, Classify, Regress and MultiInference requests being answered.",
            ["model_name", "version"],
            in_flight,
        )
        self._process = CollectorRegistry(auto_describe=False)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self._process.register(_Borrowed(collector))

    def record_request(
        self, model: str, api: str, entrypoint: str, status: str, latency_us: float
    ) -> None:
        """One finished request: counted always, its latency only when it succeeded."""
        with self._lock:
            self.request_count.inc(model, status)
            if status == "OK":
                self.request_latency.observe(latency_us, model, api, entrypoint)

    def record_runtime(self, model: str, api: str, latency_us: float) -> None:
        with self._lock:
            self.runtime_latency.observe(latency_us, model, api, "TF1")

    def record_examples(self, model: str, count: int) -> None:
        with self._lock:
            self.request_example_counts.observe(count, model)
            self.request_example_count_total.inc(model, amount=count)

    def record(self, metric: Any, value: float, *labels: str) -> None:
        """Any other observation (histogram) or increment (counter) under the lock."""
        with self._lock:
            if isinstance(metric, _Histogram):
                metric.observe(value, *labels)
            else:
                metric.inc(*labels, amount=value)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        with self._lock:
            lines = [
                line
                for value in vars(self).values()
                if isinstance(value, (_Counter, _Histogram, _Gauge))
                for line in value.text()
            ]
        return ("\n".join(lines) + "\n").encode() + generate_latest(self._process)


class _Borrowed(Collector):
    """A default collector re-registered in our own registry (the global one stays untouched)."""

    def __init__(self, collector: Any) -> None:
        self._collector = collector

    def collect(self) -> Iterator[Metric]:
        yield from self._collector.collect()
