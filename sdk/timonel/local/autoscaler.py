"""Knative's KPA for ``timonel local``: how many ``timonel serve`` processes a revision needs.

Pure: every function and method takes the time (``now``, seconds on any monotonic clock) from its
caller, so tests replace the clock. The ingress feeds it (``timonel.local.ingress.activator``):
each second the time-weighted average of the revision's requests in flight (what queue-proxy
reports as ``AverageConcurrentRequests``) and its requests per second are recorded; every
``TICK_SECONDS`` the autoscaler decides; the controller runs that many processes.

Copied from ``knative/serving``:

- ``DeciderSpec`` and ``decider_spec``: ``pkg/reconciler/autoscaling/kpa/resources/decider.go``
  and ``resources/target.go`` (``ResolveMetricTarget``) over the defaults of
  ``pkg/autoscaler/config/config.go``. KServe writes ``spec.predictor.scaleMetric`` and
  ``scaleTarget`` as ``autoscaling.knative.dev/metric`` and ``/target``, ``minReplicas`` and
  ``maxReplicas`` as ``/min-scale`` and ``/max-scale`` (``SetAutoScalingAnnotations``); the
  other knobs are the InferenceService's ``autoscaling.knative.dev/*`` annotations, which KServe
  passes through to the revision.
- ``Buckets``: ``pkg/autoscaler/aggregation/bucketing.go`` (``TimedFloat64Buckets``, one-second
  buckets, ``WindowAverage`` over the buckets written so far when the window is not full yet).
- ``Autoscaler.scale``: ``pkg/autoscaler/scaling/autoscaler.go`` (``Scale``): stable and panic
  desired counts, rate limits, panic mode held for a stable window, and the scale-down delay as a
  maximum over a sliding window (``aggregation/max``).
- ``bounded``: the KPA scaler's ``applyBounds`` with min-scale and max-scale.

What is not copied: excess burst capacity (the local activator is always in the request path,
as Knative's with ``target-burst-capacity: -1``); scale to zero stays with the activator's idle
window, so the autoscaler decides between one process and max-scale.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from timonel.errors import SpecError
from timonel.kserve.vocabulary import KNATIVE_METRIC, KNATIVE_TARGET, SCALE_DOWN_DELAY
from timonel.local.ingress.routes import parse_duration

#: Knative's autoscaler decides every two seconds (``tickInterval``).
TICK_SECONDS = 2.0

CONCURRENCY = "concurrency"
RPS = "rps"

WINDOW = "autoscaling.knative.dev/window"
TARGET_UTILIZATION = "autoscaling.knative.dev/target-utilization-percentage"
PANIC_WINDOW_PERCENTAGE = "autoscaling.knative.dev/panic-window-percentage"
PANIC_THRESHOLD_PERCENTAGE = "autoscaling.knative.dev/panic-threshold-percentage"

#: ``config-autoscaler``'s defaults.
_CONCURRENCY_TARGET_DEFAULT = 100.0
_RPS_TARGET_DEFAULT = 200.0
_TARGET_UTILIZATION = 0.7
_TARGET_MIN = 0.01
_STABLE_WINDOW = 60.0
_PANIC_WINDOW_PERCENTAGE = 10.0
_PANIC_THRESHOLD_PERCENTAGE = 200.0
_MAX_SCALE_UP_RATE = 1000.0
_MAX_SCALE_DOWN_RATE = 2.0


@dataclass(frozen=True)
class DeciderSpec:
    """What the autoscaler aims for: ``target_value`` of the metric per process."""

    target_value: float
    metric: str = CONCURRENCY
    max_scale_up_rate: float = _MAX_SCALE_UP_RATE
    max_scale_down_rate: float = _MAX_SCALE_DOWN_RATE
    panic_threshold: float = _PANIC_THRESHOLD_PERCENTAGE / 100
    stable_window: float = _STABLE_WINDOW
    panic_window: float = _STABLE_WINDOW * _PANIC_WINDOW_PERCENTAGE / 100
    scale_down_delay: float = 0.0
    reachable: bool = True
    activation_scale: int = 1
    min_scale: int = 0
    max_scale: int = 0  # 0: no limit


def decider_spec(predictor: Mapping[str, Any], annotations: Mapping[str, str]) -> DeciderSpec:
    """The spec Knative's KPA would build for a revision of this predictor and annotations."""
    metric = str(predictor.get("scaleMetric") or annotations.get(KNATIVE_METRIC) or CONCURRENCY)
    total = _RPS_TARGET_DEFAULT if metric == RPS else _CONCURRENCY_TARGET_DEFAULT
    container_concurrency = float(predictor.get("containerConcurrency") or 0)
    if metric != RPS and container_concurrency:
        total = container_concurrency
    target = predictor.get("scaleTarget") or annotations.get(KNATIVE_TARGET)
    if target is not None:
        total = _number(target, KNATIVE_TARGET)
        if metric != RPS and container_concurrency:
            total = min(total, container_concurrency)
    utilization = _percent(annotations, TARGET_UTILIZATION, _TARGET_UTILIZATION * 100)
    window = annotations.get(WINDOW)
    stable = parse_duration(window, WINDOW) if window else _STABLE_WINDOW
    panic_share = _percent(annotations, PANIC_WINDOW_PERCENTAGE, _PANIC_WINDOW_PERCENTAGE)
    threshold = _percent(annotations, PANIC_THRESHOLD_PERCENTAGE, _PANIC_THRESHOLD_PERCENTAGE)
    delay = annotations.get(SCALE_DOWN_DELAY)
    return DeciderSpec(
        target_value=max(_TARGET_MIN, total * utilization),
        metric=metric,
        panic_threshold=threshold,
        stable_window=stable,
        panic_window=stable * panic_share,
        scale_down_delay=parse_duration(delay, SCALE_DOWN_DELAY) if delay else 0.0,
        min_scale=int(predictor.get("minReplicas", 1) or 0),
        max_scale=int(predictor.get("maxReplicas") or 0),
    )


def _percent(annotations: Mapping[str, str], key: str, default: float) -> float:
    """A percentage annotation as a fraction."""
    return _number(annotations.get(key, default), key) / 100


def _number(value: object, key: str) -> float:
    try:
        found = float(str(value))
    except ValueError:
        found = -1.0
    if not found > 0:
        raise SpecError(
            f"{key} is {value!r}: expected a positive number; fix the InferenceService", field=key
        )
    return found


def bounded(desired: int, spec: DeciderSpec, machine: int) -> int:
    """The KPA's ``applyBounds``: at least min-scale (and one: zero is the activator's), at most
    max-scale, and never more processes than the machine's bound."""
    low = max(1, spec.min_scale)
    high = min(spec.max_scale or machine, machine)
    return max(low, min(desired, high))


class Buckets:
    """A time window of one-second buckets, averaged as Knative's ``TimedFloat64Buckets``."""

    def __init__(self, window: float) -> None:
        self._buckets = [0.0] * max(1, math.ceil(window))
        self._window = float(len(self._buckets))
        self._total = 0.0
        self._first: int | None = None
        self._last = 0

    def record(self, now: float, value: float) -> None:
        second = math.floor(now)
        if self._first is None:
            self._first = self._last = second
        elif second != self._last:
            if second + self._window > self._last:
                if self._first > second:
                    self._first = second
            else:
                return  # older than the window
            if second > self._last:
                if second - self._last >= self._window:
                    self._first = second
                    self._buckets = [0.0] * len(self._buckets)
                    self._total = 0.0
                else:
                    for index in range(self._last + 1, second + 1):
                        slot = index % len(self._buckets)
                        self._total -= self._buckets[slot]
                        self._buckets[slot] = 0.0
                self._last = second
        self._buckets[second % len(self._buckets)] += value
        self._total += value

    def average(self, now: float) -> float:
        """The average per second over the window (over the seconds written, when fewer)."""
        if self._first is None:
            return 0.0
        second = math.floor(now)
        since = second - self._last
        if since <= 0:
            count = min(self._last - self._first + 1, len(self._buckets))
            return round(self._total / count, 6)
        if since < self._window:
            total = self._total
            for index in range(self._last + 1, second + 1):
                total -= self._buckets[index % len(self._buckets)]
            count = min(self._last - self._first + 1, len(self._buckets) - since)
            return round(total / count, 6)
        return 0.0


class _MaxWindow:
    """The largest value recorded in the last ``size`` ticks (Knative's ``max.TimeWindow``)."""

    def __init__(self, seconds: float) -> None:
        self._size = math.ceil(seconds / TICK_SECONDS)
        self._maxima: deque[tuple[int, int]] = deque()  # (tick, value), values descending

    def record(self, now: float, value: int) -> None:
        tick = int(now // TICK_SECONDS)
        while self._maxima and value >= self._maxima[-1][1]:
            self._maxima.pop()
        while self._maxima and tick - self._maxima[0][0] >= self._size:
            self._maxima.popleft()
        self._maxima.append((tick, value))

    def current(self) -> int:
        return self._maxima[0][1]


class Autoscaler:
    """One revision's autoscaler, with its panic state and scale-down delay window."""

    def __init__(self, spec: DeciderSpec, *, ready: int, now: float) -> None:
        self.spec = spec
        self._delay = _MaxWindow(spec.scale_down_delay) if spec.scale_down_delay > 0 else None
        #: Knative starts a revision that already has more than one pod in panic mode, so a
        #: restarted autoscaler does not scale it down before it has seen a stable window.
        self.panic_since: float | None = now if ready > 1 else None
        self.max_panic_pods = ready

    def scale(self, now: float, ready: int, stable: float, panic: float) -> int:
        """The desired number of processes, given the ready ones and the observed metric
        averaged over the stable and the panic windows."""
        spec = self.spec
        ready_count = max(1.0, float(ready))
        max_scale_up = math.ceil(spec.max_scale_up_rate * ready_count)
        max_scale_down = math.floor(ready_count / spec.max_scale_down_rate) if spec.reachable else 0
        stable_pods = math.ceil(stable / spec.target_value)
        panic_pods = math.ceil(panic / spec.target_value)
        desired_stable = int(min(max(stable_pods, max_scale_down), max_scale_up))
        desired_panic = int(min(max(panic_pods, max_scale_down), max_scale_up))
        if spec.activation_scale > 1:
            if stable_pods > 0 and spec.activation_scale > desired_stable:
                desired_stable = spec.activation_scale
            if panic_pods > 0 and spec.activation_scale > desired_panic:
                desired_panic = spec.activation_scale
        over_threshold = panic_pods / ready_count >= spec.panic_threshold
        if over_threshold:
            self.panic_since = now
        elif self.panic_since is not None and self.panic_since + spec.stable_window < now:
            self.panic_since = None
            self.max_panic_pods = 0
        desired = desired_stable
        if self.panic_since is not None:
            desired = max(desired, desired_panic)
            self.max_panic_pods = max(self.max_panic_pods, desired)
            desired = self.max_panic_pods
        if spec.reachable and self._delay is not None:
            self._delay.record(now, desired)
            desired = self._delay.current()
        return desired


class Meter:
    """One revision's requests in flight, integrated over time, and requests started: the
    average concurrency and the rate of each period between two ``take``s."""

    def __init__(self, now: float) -> None:
        self.in_flight = 0
        self._since = now
        self._changed = now
        self._area = 0.0
        self._started = 0

    def add(self, now: float, change: int) -> None:
        self._area += self.in_flight * (now - self._changed)
        self._changed = now
        self.in_flight += change
        if change > 0:
            self._started += change

    def take(self, now: float) -> tuple[float, float]:
        """(average concurrency, requests per second) since the last take; starts a new period."""
        self.add(now, 0)
        elapsed = now - self._since
        result = (self._area / elapsed, self._started / elapsed) if elapsed > 0 else (0.0, 0.0)
        self._since, self._area, self._started = now, 0.0, 0
        return result
