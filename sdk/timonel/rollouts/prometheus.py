"""Evidence from Prometheus: the queue-proxy's request metrics of each revision.

Knative's queue-proxy, in front of every revision's model server, records each request's duration
in the histogram ``kn.serving.invocation.duration`` (seconds; ``pkg/queue/request_metric.go``)
with the response's ``http.response.status_code`` and the pod's ``kn.revision.name``. Exported
to Prometheus these become ``kn_serving_invocation_duration_seconds_{bucket,count}`` with labels
``http_response_status_code`` and ``kn_revision_name``. Requests, errors (5xx) and percentiles
per revision come from the ``increase`` over the window.

The queries are templates (``{revision}``, ``{window}`` in seconds, ``{quantile}``; PromQL's own
braces stay as written) and may be replaced, for clusters that relabel or still run Knative's
older OpenCensus metrics (``revision_request_count``, ``revision_request_latencies``).
Each query run is kept in the evidence so the report shows it. ``increase`` extrapolates to the
window's edges, so counts are rounded to whole requests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from timonel.errors import EvidenceUnreachable, SpecError
from timonel.rollouts.evidence import RevisionEvidence, WindowEvidence
from timonel.rollouts.sources import Clock, Pair, wait_until

#: The default queries; latency queries answer in seconds.
DEFAULT_QUERIES: Mapping[str, str] = {
    "requests": (
        'sum(increase(kn_serving_invocation_duration_seconds_count{kn_revision_name="{revision}"}'
        "[{window}s]))"
    ),
    "errors": (
        'sum(increase(kn_serving_invocation_duration_seconds_count{kn_revision_name="{revision}",'
        'http_response_status_code=~"5.."}[{window}s]))'
    ),
    "latency": (
        "histogram_quantile({quantile}, sum by (le) (increase("
        'kn_serving_invocation_duration_seconds_bucket{kn_revision_name="{revision}"}'
        "[{window}s])))"
    ),
}


def fill(template: str, **values: object) -> str:
    """A query from its template: ``{name}`` placeholders replaced, PromQL's own braces kept."""
    for name, value in values.items():
        template = template.replace(f"{{{name}}}", str(value))
    return template


@dataclass
class PrometheusSource:
    """Queries ``url`` (Prometheus's HTTP API) once the window, plus ``lag`` seconds for the
    last scrape to land, has passed."""

    url: str
    queries: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_QUERIES))
    lag: float = 0.0
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = None
    name: str = "prometheus"

    def __post_init__(self) -> None:
        missing = {"requests", "errors", "latency"} - set(self.queries)
        if missing:
            raise SpecError(
                f"Prometheus queries lack {', '.join(sorted(missing))}; give a query for each "
                "of requests, errors and latency (templates with {revision} and {window})",
                field="queries",
            )
        self.queries = {**DEFAULT_QUERIES, **self.queries}

    def _query(self, client: httpx.Client, promql: str, at: float) -> float | None:
        try:
            response = client.get("/api/v1/query", params={"query": promql, "time": f"{at:.3f}"})
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EvidenceUnreachable(
                f"cannot query Prometheus at {self.url} ({exc}); check --prometheus-url and that "
                "Prometheus answers on /api/v1/query"
            ) from exc
        if body.get("status") != "success":
            raise SpecError(
                f"Prometheus refused the query {promql!r}: {body.get('error', response.text)}; "
                "fix the query template",
                field="queries",
            )
        results = body["data"]["result"]
        if not results:
            return None
        value = float(results[0]["value"][1])
        return None if math.isnan(value) else value

    def _revision(
        self, client: httpx.Client, revision: str, window: int, at: float, shown: dict[str, str]
    ) -> RevisionEvidence:
        values: dict[str, float | None] = {}
        for name, template in self.queries.items():
            if name == "latency":
                continue
            promql = fill(template, revision=revision, window=window)
            shown[f"{revision} {name}"] = promql
            values[name] = self._query(client, promql, at)
        percentiles: list[float | None] = []
        for quantile in (0.5, 0.9, 0.99):
            promql = fill(
                self.queries["latency"], revision=revision, window=window, quantile=quantile
            )
            shown[f"{revision} p{round(quantile * 100)}"] = promql
            seconds = self._query(client, promql, at)
            percentiles.append(None if seconds is None else seconds * 1000.0)
        requests = round(values.get("requests") or 0.0)
        errors = min(requests, round(values.get("errors") or 0.0))
        return RevisionEvidence(revision, requests, errors, *percentiles)

    def gather(self, pair: Pair, start: float, end: float, clock: Clock) -> WindowEvidence:
        wait_until(clock, end + self.lag)
        at = clock.now()
        window = max(1, math.ceil(at - start))
        shown: dict[str, str] = {}
        with httpx.Client(
            base_url=self.url, timeout=self.timeout, transport=self.transport
        ) as client:
            stable = self._revision(client, pair.stable.revision, window, at, shown)
            canary = self._revision(client, pair.canary.revision, window, at, shown)
        return WindowEvidence(self.name, stable, canary, None, shown)
