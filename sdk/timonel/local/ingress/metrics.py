"""Per-revision request metrics under the names Knative's queue-proxy exports.

queue-proxy (``knative/serving`` ``pkg/queue/request_metric.go``) records every request's duration
in the OpenTelemetry histogram ``kn.serving.invocation.duration`` (seconds, buckets
``latencyBounds``) with the attribute ``http.response.status_code``, and the requests in flight in
the gauge ``kn.serving.queue.depth``; the route tag (``kn.route.tag``, ``pkg/metrics/key.go``) is
added by its route-tag handler. OpenTelemetry's Prometheus exporter writes dots as underscores and
appends the unit, so a cluster's Prometheus has ``kn_serving_invocation_duration_seconds_bucket``,
``_sum`` and ``_count`` (the request count) and ``kn_serving_queue_depth``.

On a cluster the revision's identity comes from the pod's resource attributes; the local ingress
serves every revision from one process, so it writes them as labels (``k8s_namespace_name``,
``kn_service_name``, ``kn_configuration_name``, ``kn_revision_name``), the names a cluster's
Prometheus gets when it promotes those attributes. Every REST request and every gRPC call (an
HTTP/2 stream, ``timonel.local.ingress.grpc_proxy``) is one request here, as in queue-proxy.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from timonel.local.revisions import RevisionKey

#: queue-proxy's ``latencyBounds``, in seconds.
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_LABELS = (
    "k8s_namespace_name",
    "kn_service_name",
    "kn_configuration_name",
    "kn_revision_name",
)


class RequestMetrics:
    """The ingress's Prometheus registry: request durations by status code, requests in flight."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._duration = Histogram(
            "kn_serving_invocation_duration_seconds",
            "The duration of task execution",
            (*_LABELS, "kn_route_tag", "http_response_status_code"),
            buckets=LATENCY_BOUNDS,
            registry=self.registry,
        )
        self._depth = Gauge(
            "kn_serving_queue_depth",
            "Number of current requests in the queue",
            _LABELS,
            registry=self.registry,
        )

        # Each request counts twice: the labelled children are looked up once, then kept.
        self._depths: dict[RevisionKey, Gauge] = {}
        self._durations: dict[tuple[RevisionKey, str, int], Histogram] = {}

    def started(self, backend: RevisionKey) -> None:
        depth = self._depths.get(backend)
        if depth is None:
            depth = self._depths[backend] = self._depth.labels(*_identity(backend))
        depth.inc()

    def finished(self, backend: RevisionKey, tag: str, status: int, seconds: float) -> None:
        self._depths[backend].dec()
        key = (backend, tag, status)
        duration = self._durations.get(key)
        if duration is None:
            labels = (*_identity(backend), tag or "kn:default", str(status))
            duration = self._durations[key] = self._duration.labels(*labels)
        duration.observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric in the registry."""
        return generate_latest(self.registry)


def _identity(backend: RevisionKey) -> tuple[str, str, str, str]:
    """Namespace, Knative Service, Configuration (both ``<isvc>-predictor``) and revision."""
    service = f"{backend.isvc}-predictor"
    return backend.namespace, service, service, backend.revision
