"""A rollout's progress, recorded beside the InferenceService it moves, so it survives its driver.

The driver writes the annotation ``timonel.dev/rollout`` (JSON: the release being rolled out,
the plan, the phase reached, where evidence comes from) on the InferenceService's record, the
ConfigMap ``<isvc>-rollout`` (``timonel.kube.records``: not on the InferenceService, whose
annotations KServe copies into the revision template), before each phase, and deletes the record
when the rollout ends. A Ctrl-C or a killed pipeline pod leaves it in place: ``timonel rollout
NAME --resume`` continues from the recorded phase, ``--abort`` rolls back, and ``timonel status``
reads it to say that the traffic split belongs to an unfinished rollout. Reading and writing are
pure (state ⇄ the record's annotations); the driver reads and writes the ConfigMap.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from timonel.errors import SpecError
from timonel.kube.records import ROLLOUT_STATE, isvc_of_record, record_annotations
from timonel.rollouts.plan import Gates, RolloutPlan


@dataclass(frozen=True)
class RolloutState:
    """What it takes to continue a rollout: the release, the plan, the next phase to run (an
    index into ``plan.phases()``), the evidence options, and when it started."""

    storage_uri: str
    plan: RolloutPlan
    phase: int = 0
    started: float = 0.0
    probe_data: str | None = None
    prometheus_url: str | None = None
    gateway: str | None = None
    report_dir: str | None = None
    passed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def phase_name(self) -> str:
        phases = self.plan.phases()
        return phases[self.phase] if self.phase < len(phases) else "promote"

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["plan"]["steps"] = list(self.plan.steps)
        data["passed"] = list(self.passed)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def read_state(record: Mapping[str, Any] | None) -> RolloutState | None:
    """The unfinished rollout an InferenceService's record holds, if any."""
    metadata = (record or {}).get("metadata") or {}
    text = record_annotations(record).get(ROLLOUT_STATE)
    if not text:
        return None
    try:
        data = json.loads(text)
        plan = dict(data.pop("plan"))
        gates = Gates(**plan.pop("gates"))
        plan["steps"] = tuple(plan["steps"])
        data["passed"] = tuple(data.get("passed") or ())
        return RolloutState(plan=RolloutPlan(gates=gates, **plan), **data)
    except (ValueError, TypeError, KeyError) as exc:
        namespace, isvc = isvc_of_record(record or {}) or ("NAMESPACE", "NAME")
        raise SpecError(
            f"the {ROLLOUT_STATE} annotation of ConfigMap {namespace}/{metadata.get('name')} is "
            f"not a rollout state Timonel wrote ({exc}); roll back with `timonel rollback {isvc} "
            f"-n {namespace}` and clear it with `kubectl delete configmap "
            f"{metadata.get('name')} -n {namespace}`",
            field=f"metadata.annotations.{ROLLOUT_STATE}",
        ) from exc


def describe(state: RolloutState, name: str) -> str:
    """One line for ``timonel status NAME``: the traffic is split by an unfinished rollout."""
    return (
        f"unfinished rollout of {state.storage_uri} at {state.phase_name} "
        f"({len(state.passed)} of {len(state.plan.phases())} phases passed): continue with "
        f"`timonel rollout {name} --resume` or roll back with `timonel rollout {name} --abort`"
    )
