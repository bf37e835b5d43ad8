"""``timonel.rollout``: a progressive rollout on a cluster, from options to result and report.

The one function the CLI, the KFP component and Python callers share. It connects the driver to
the InferenceService through ``timonel.kube.rollout`` (``canary``, ``promote``, ``rollback``,
each waiting for readiness) and builds the evidence sources from the options: probes always
(from ``probe_data`` or the release's warmup records), the ingress's mirror records in a shadow
phase through a gateway, Prometheus when a URL is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from timonel.errors import SpecError
from timonel.kube import rollout as kube
from timonel.kube.client import Cluster
from timonel.kube.records import read_record, write_record
from timonel.kube.requests import get_object
from timonel.kube.resources import INFERENCE_SERVICE
from timonel.kube.wait import Goal, Verdict, assess, watch_until
from timonel.rollouts.driver import Progress, RolloutResult, abort, drive
from timonel.rollouts.mirror import MirrorSource
from timonel.rollouts.plan import RolloutPlan
from timonel.rollouts.probes import ProbeSource, load_probe_data, warmup_probes
from timonel.rollouts.prometheus import PrometheusSource
from timonel.rollouts.sources import Clock, EvidenceSource, SystemClock
from timonel.rollouts.state import RolloutState, read_state


@dataclasses.dataclass
class ClusterTraffic:
    """``Traffic`` on a cluster: one InferenceService through ``timonel.kube``."""

    cluster: Cluster
    name: str
    namespace: str
    timeout: float = kube.DEFAULT_TIMEOUT

    def read(self) -> dict[str, Any]:
        return self.cluster.send(get_object(INFERENCE_SERVICE, self.namespace, self.name))

    def split(self, storage_uri: str, percent: int) -> dict[str, Any]:
        kube.canary(
            self.name,
            storage_uri,
            percent,
            tag_routing=True,
            cluster=self.cluster,
            namespace=self.namespace,
            timeout=self.timeout,
        )
        if percent == 0:
            self._candidate_ready()
        return self.read()

    def _candidate_ready(self) -> None:
        """Wait for the candidate of a 0% canary (the shadow phase) to be the latest ready
        revision: ``canary``'s wait does not ask it at 0%, the shape of a rollback, and until
        then Knative's ``latestRevision`` target is still the stable revision."""
        goal = Goal(int(self.read()["metadata"].get("generation") or 1), latest_percent=0)
        watch_until(
            self.cluster,
            self.name,
            lambda isvc: Verdict(False, "it to exist") if isvc is None else assess(isvc, goal),
            namespace=self.namespace,
            timeout=self.timeout,
        )

    def promote(self) -> None:
        kube.promote(
            self.name, cluster=self.cluster, namespace=self.namespace, timeout=self.timeout
        )

    def rollback(self) -> None:
        kube.rollback(
            self.name, cluster=self.cluster, namespace=self.namespace, timeout=self.timeout
        )

    def record(self, annotations: Mapping[str, str] | None) -> None:
        write_record(self.cluster, self.read(), annotations)


def evidence_sources(
    state: RolloutState, queries: Mapping[str, str] | None
) -> list[EvidenceSource]:
    """Probes; the gateway's mirror records for a shadow phase; Prometheus when named."""
    probes = (
        load_probe_data(state.probe_data) if state.probe_data else warmup_probes(state.storage_uri)
    )
    gates = state.plan.gates
    sources: list[EvidenceSource] = [
        ProbeSource(
            probes, requests=max(50, gates.min_requests), tolerance=gates.max_relative_difference
        )
    ]
    if state.plan.shadow > 0 and state.gateway:
        sources.append(MirrorSource(state.gateway))
    if state.prometheus_url:
        sources.append(PrometheusSource(state.prometheus_url, queries=queries or {}))
    return sources


def rollout(
    name: str,
    storage_uri: str | None = None,
    *,
    plan: RolloutPlan | None = None,
    probe_data: str | Path | None = None,
    prometheus_url: str | None = None,
    queries: Mapping[str, str] | None = None,
    gateway: str | None = None,
    report_dir: str | Path | None = None,
    resume: bool = False,
    abort_only: bool = False,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    timeout: float = kube.DEFAULT_TIMEOUT,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> RolloutResult:
    """Roll ``storage_uri`` out on InferenceService ``name`` step by step, judged by ``plan``'s
    gates; promoted when every phase passes, rolled back at the first that fails.

    Returns the result either way (``result.raise_for_outcome()`` raises ``RolloutFailed`` on a
    rollback). ``resume`` continues the unfinished rollout recorded beside the InferenceService;
    ``abort_only`` rolls it back. ``gateway`` is the ingress URL to send probes to with each
    revision's tag host (``timonel local``'s ingress, or a cluster's gateway); without it the
    tag URLs are used as they are. ``report_dir`` receives ``report.json`` and ``report.html``.
    """
    from timonel.rollouts.report import write_report

    connected = Cluster.connect() if cluster is None else cluster
    try:
        namespace = namespace or connected.namespace
        traffic = ClusterTraffic(connected, name, namespace, timeout)
        recorded = read_state(read_record(connected, namespace, name))
        if resume or abort_only:
            if recorded is None:
                raise SpecError(
                    f"{namespace}/{name} has no unfinished rollout to "
                    f"{'resume' if resume else 'abort'}; start one with `timonel rollout {name} "
                    "--storage-uri URI`",
                    field="resume",
                )
            if abort_only:
                result = abort(traffic, recorded)
                if recorded.report_dir:
                    write_report(result, recorded.report_dir)
                return result
            state = recorded
        else:
            if recorded is not None:
                raise SpecError(
                    f"{namespace}/{name} has an unfinished rollout of {recorded.storage_uri} at "
                    f"{recorded.phase_name}; continue it with `timonel rollout {name} --resume` "
                    "or roll it back with `--abort` before starting another",
                    field="storage_uri",
                )
            if not storage_uri:
                raise SpecError(
                    "a rollout needs the release to roll out: give --storage-uri URI",
                    field="storage_uri",
                )
            clock = clock or SystemClock()
            state = RolloutState(
                storage_uri,
                plan or RolloutPlan(),
                started=clock.now(),
                probe_data=None if probe_data is None else str(Path(probe_data).resolve()),
                prometheus_url=prometheus_url,
                gateway=gateway,
                report_dir=None if report_dir is None else str(Path(report_dir).resolve()),
            )
        sources = evidence_sources(state, queries)
        result = drive(
            traffic,
            state,
            sources,
            clock=clock or SystemClock(),
            gateway=state.gateway,
            progress=progress,
        )
        if state.report_dir:
            write_report(result, state.report_dir)
        return result
    finally:
        if cluster is None:
            connected.close()
