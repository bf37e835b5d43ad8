"""The driver: runs a plan's phases on an InferenceService and promotes or rolls back by itself.

For each phase it records its progress beside the InferenceService (``state``, in the ConfigMap
``timonel.kube.records`` names), moves the traffic,
waits for the revisions to be ready, gathers one window of evidence from every source and lets
the gates judge it:

* shadow: the candidate is deployed at 0% (Knative keeps the stable revision at 100%, tag
  ``prev``) and the ingress mirrors ``shadow_percent`` of the live requests to it
  (``timonel.dev/mirror-revision`` in the same record, naming the candidate's revision); clients
  only ever see the stable revision's answers;
* step P: the canary takes P% (Knative's ``canaryTrafficPercent``, Standard mode's
  ``spec.canary[].trafficPercent``), through ``timonel.kube``'s ``canary``.

A failed gate rolls back at once (``timonel.kube.rollback``: the canary's share drops to 0, the
stable revision is still running). A window with too few requests is followed by another, up to
``plan.patience``; still undecided, it rolls back, since nothing showed the canary is safe. All
phases passed, the canary is promoted. Either way the recorded state and the mirror settings are
removed; an interruption leaves them, for ``--resume`` or ``--abort``.

The cluster side is the ``Traffic`` interface (``ClusterTraffic`` on a real or local cluster)
and time is a ``Clock``, so tests run whole rollouts in memory and without waiting.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from timonel.errors import RolloutFailed, SpecError
from timonel.kserve.vocabulary import TAG_ROUTING
from timonel.kube.patches import in_canary
from timonel.kube.records import MIRROR_PERCENT, MIRROR_REVISION, ROLLOUT_STATE
from timonel.kube.status import read_status
from timonel.rollouts.evidence import WindowEvidence
from timonel.rollouts.gates import Decision, Verdict, judge
from timonel.rollouts.sources import Clock, Endpoint, EvidenceSource, Pair
from timonel.rollouts.state import RolloutState

Progress = Callable[[str], None]

PROMOTED = "promoted"
ROLLED_BACK = "rolled-back"
ABORTED = "aborted"


class Traffic(Protocol):
    """The InferenceService a rollout moves: read it, split it, promote, roll back, and keep
    its record."""

    def read(self) -> dict[str, Any]: ...

    def split(self, storage_uri: str, percent: int) -> dict[str, Any]:
        """Serve ``storage_uri`` to ``percent`` of the traffic, with KServe's tag routing on
        (``serving.kserve.io/enable-tag-routing``) in the same update, so that the candidate is
        one new revision with a ``latest`` tag; return the object once ready."""

    def promote(self) -> None: ...

    def rollback(self) -> None: ...

    def record(self, annotations: Mapping[str, str] | None) -> None:
        """Make the InferenceService's record hold exactly ``annotations`` (None: delete it)."""


@dataclass(frozen=True)
class PhaseRecord:
    """One phase as it ran: the traffic it gave the canary, each window and its decision."""

    name: str
    percent: int
    mirrored: float
    windows: tuple[tuple[WindowEvidence, ...], ...]
    decisions: tuple[Decision, ...]
    started: float
    ended: float

    @property
    def decision(self) -> Decision:
        return self.decisions[-1]


@dataclass(frozen=True)
class RolloutResult:
    """How a rollout ended (``promoted``, ``rolled-back`` or ``aborted``) and why, phase by
    phase. ``passed_before`` names phases passed before an interruption this run resumed."""

    name: str
    namespace: str
    storage_uri: str
    outcome: str
    reason: str
    phases: tuple[PhaseRecord, ...] = ()
    passed_before: tuple[str, ...] = ()
    state: RolloutState | None = None

    @property
    def promoted(self) -> bool:
        return self.outcome == PROMOTED

    @property
    def failed_phase(self) -> PhaseRecord | None:
        failed = [p for p in self.phases if p.decision.verdict != Verdict.PASS]
        return failed[0] if failed else None

    def raise_for_outcome(self) -> RolloutResult:
        """``RolloutFailed`` unless the canary was promoted (as httpx's ``raise_for_status``)."""
        if self.outcome == ROLLED_BACK:
            raise RolloutFailed(
                f"{self.namespace}/{self.name}: rolled back {self.storage_uri}: {self.reason}; "
                "all traffic is on the stable release: fix the model, or loosen the gate if "
                "the difference is expected"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        plan = dataclasses.asdict(self.state.plan) if self.state else None
        return {
            "name": self.name,
            "namespace": self.namespace,
            "storage_uri": self.storage_uri,
            "outcome": self.outcome,
            "reason": self.reason,
            "plan": plan,
            "passed_before": list(self.passed_before),
            "phases": [
                {
                    "name": phase.name,
                    "percent": phase.percent,
                    "mirrored": phase.mirrored,
                    "started": phase.started,
                    "ended": phase.ended,
                    "verdict": phase.decision.verdict.value,
                    "reason": phase.decision.reason,
                    "windows": [
                        {
                            "verdict": decision.verdict.value,
                            "reason": decision.reason,
                            "gates": [
                                dataclasses.asdict(r) | {"verdict": r.verdict.value}
                                for r in decision.results
                            ],
                            "evidence": [evidence.to_dict() for evidence in window],
                        }
                        for window, decision in zip(phase.windows, phase.decisions, strict=True)
                    ],
                }
                for phase in self.phases
            ],
        }


def pair_of(isvc: dict[str, Any], gateway: str | None = None) -> Pair:
    """The stable and canary revisions of an InferenceService in a split, each reachable alone.

    Knative: the targets tagged ``prev`` (the stable revision) and the latest one (its ``latest``
    tag exists with ``serving.kserve.io/enable-tag-routing``). Standard mode: the stable and
    canary Deployments' Services. With a ``gateway`` URL requests go there with the tag host as
    ``Host``, as through a cluster's ingress gateway; without, to the tag URLs themselves.
    """
    status = read_status(isvc)
    model = status.name
    if status.mode == "Standard":
        hosts = [f"{t.revision}.{status.namespace}.svc.cluster.local" for t in status.traffic]
        urls = [f"http://{host}" for host in hosts]
        revisions = [t.revision for t in status.traffic]
        if len(revisions) < 2:
            raise SpecError(f"{model} has no canary deployment to measure; expected a split")
        found = list(zip(revisions, urls, strict=True))
        stable, canary = found[0], found[-1]
    else:
        prev = [t for t in status.traffic if t.tag == "prev"]
        latest = [t for t in status.traffic if t.latest]
        if not prev or not latest or not (prev[0].url and latest[0].url):
            raise SpecError(
                f"{status.namespace}/{model} has no tagged route for each revision (traffic: "
                f"{[(t.revision, t.tag, t.percent) for t in status.traffic]}); a rollout needs "
                f'the `prev` and `latest` tags, which KServe adds with {TAG_ROUTING}: "true"',
                field="status.components.predictor.traffic",
            )
        stable = (prev[0].revision, prev[0].url)
        canary = (latest[0].revision, latest[0].url)

    def endpoint(revision: str, url: str) -> Endpoint:
        if gateway is None:
            return Endpoint(revision, url)
        return Endpoint(revision, gateway, urllib.parse.urlsplit(url).hostname)

    return Pair(model, endpoint(*stable), endpoint(*canary), status.namespace)


@dataclass
class _Run:
    traffic: Traffic
    state: RolloutState
    sources: Sequence[EvidenceSource]
    clock: Clock
    gateway: str | None
    progress: Progress
    records: list[PhaseRecord] = field(default_factory=list)

    def record(self, state: RolloutState | None, mirror: tuple[str, float] | None = None) -> None:
        if state is None:
            self.traffic.record(None)
            return
        annotations = {ROLLOUT_STATE: state.to_json()}
        if mirror is not None:
            annotations.update({MIRROR_REVISION: mirror[0], MIRROR_PERCENT: f"{mirror[1]:g}"})
        self.traffic.record(annotations)

    def phase(self, name: str) -> PhaseRecord:
        plan = self.state.plan
        shadow = name == "shadow"
        percent = 0 if shadow else int(name.removeprefix("step-"))
        self.progress(
            f"{name}: {'mirroring to the candidate' if shadow else f'canary at {percent}%'}"
        )
        isvc = self.traffic.split(self.state.storage_uri, percent)
        mirrored = plan.shadow_percent if shadow else 0.0
        pair = dataclasses.replace(pair_of(isvc, self.gateway), mirrored=mirrored)
        self.record(self.state, (pair.canary.revision, mirrored) if shadow else None)
        duration = plan.shadow if shadow else plan.interval
        started = self.clock.now()
        windows: list[tuple[WindowEvidence, ...]] = []
        decisions: list[Decision] = []
        for _ in range(plan.patience):
            start = self.clock.now()
            gathered = (s.gather(pair, start, start + duration, self.clock) for s in self.sources)
            window = tuple(evidence for evidence in gathered if evidence is not None)
            decision = judge(plan.gates, window)
            windows.append(window)
            decisions.append(decision)
            self.progress(f"{name}: {decision.verdict.value}: {decision.reason}")
            if decision.verdict != Verdict.WAIT:
                break
        return PhaseRecord(
            name, percent, mirrored, tuple(windows), tuple(decisions), started, self.clock.now()
        )

    def run(self) -> tuple[str, str]:
        phases = self.state.plan.phases()
        self.record(self.state)
        for index in range(self.state.phase, len(phases)):
            self.state = dataclasses.replace(self.state, phase=index)
            self.record(self.state)
            record = self.phase(phases[index])
            self.records.append(record)
            if record.decision.verdict != Verdict.PASS:
                self.traffic.rollback()
                self.record(None)
                why = record.decision.reason
                if record.decision.verdict == Verdict.WAIT:
                    why = f"undecided after {len(record.decisions)} windows: {why}"
                return ROLLED_BACK, f"{record.name} failed: {why}"
            self.state = dataclasses.replace(self.state, passed=(*self.state.passed, record.name))
        self.traffic.promote()
        self.record(None)
        return PROMOTED, f"every phase passed ({', '.join(self.state.passed)})"


def drive(
    traffic: Traffic,
    state: RolloutState,
    sources: Sequence[EvidenceSource],
    *,
    clock: Clock,
    gateway: str | None = None,
    progress: Progress | None = None,
) -> RolloutResult:
    """Run the rollout from ``state.phase`` to promotion or rollback."""
    metadata = traffic.read()["metadata"]
    run = _Run(traffic, state, sources, clock, gateway, progress or (lambda _: None))
    passed_before = state.passed
    outcome, reason = run.run()
    return RolloutResult(
        metadata["name"],
        metadata.get("namespace", ""),
        state.storage_uri,
        outcome,
        reason,
        tuple(run.records),
        passed_before,
        run.state,
    )


def abort(traffic: Traffic, state: RolloutState) -> RolloutResult:
    """Roll an unfinished rollout back and clear its record (one interrupted after promoting
    is left promoted: rolling back then would redeploy the release before it)."""
    if in_canary(traffic.read()):
        traffic.rollback()
    traffic.record(None)
    metadata = traffic.read()["metadata"]
    return RolloutResult(
        metadata["name"],
        metadata.get("namespace", ""),
        state.storage_uri,
        ABORTED,
        f"aborted at {state.phase_name}; all traffic is back on the stable release",
        passed_before=state.passed,
        state=state,
    )
