"""What KServe in Knative mode would make of one InferenceService: revisions, traffic, status.

Pure: ``reconcile(isvc, revisions, observed, now=...)`` takes the InferenceService as the API
returns it, the revisions created so far and what their processes are doing, and returns the
revisions that should exist, the ones that should be running, and the new ``status``. The
controller (``timonel.local.controller``) does the I/O around it.

It reproduces, in one function, the three controllers a cluster runs:

- **Knative Configuration**: every change of the revision template (``spec.predictor`` without
  ``canaryTrafficPercent``) creates revision ``<isvc>-predictor-0000N``; the latest created
  revision becomes the latest *ready* one once its server answers, and a revision that fails before
  it was ever ready marks ``ConfigurationsReady`` False (``RevisionFailed``).
- **Knative Route**: the traffic block KServe's ``ksvc_reconciler.go`` writes (``latestRevision``
  at ``canaryTrafficPercent`` plus the last rolled-out revision tagged ``prev``, ``latest`` tag only
  with ``serving.kserve.io/enable-tag-routing``), resolved against ready revisions; while a target
  cannot be resolved the previous traffic stays in status, as Knative leaves it.
- **KServe** ``PropagateStatus``, ``PropagateModelStatus``, ``PropagateCrossComponentStatus`` and
  the ingress reconciler, in KServe's order, on conditions managed with Knative's rules
  (``timonel.local.conditions``): rolled-out revision bookkeeping (including the fall back to the
  previous rolled-out revision, kserve/kserve#2040), ``modelStatus`` from the latest created
  revision's process, ``IngressReady`` and the URLs.

A real cluster converges over several reconciles as Knative's own status updates arrive;
``reconcile`` loops until the status stops changing, so one call gives the settled answer.

The Knative Service KServe writes is part of the outcome (``route``, its traffic block, and
``service_status``), and its generation moves as the API server moves it: only when its spec (the
revision template or the traffic block) changes. ``status.observedGeneration`` is copied from it,
as ``PropagateStatus`` does, so a change that does not reach the Knative Service (an annotation
KServe does not pass on, a canary percent before the first rollout) leaves it where it was.
The Service is written once per call, with the settled spec: where KServe would write two specs
one after the other within what is one call here, its generation moves once.

Where the local emulation adds to KServe's shape (all documented in ``timonel.local.controller``):

- A condition ``LocalCPUFallback`` (severity Info) says when a GPU request runs on the CPU here.
- ``serving.kserve.io/stop: "true"`` is handled as KServe's predictor reconciler handles it in
  Knative mode (``stopped_status``): the workload goes (here: the revisions and their processes)
  and the status keeps only ``deploymentMode``, with ``Stopped`` True and ``PredictorReady`` and
  ``IngressReady`` False. KServe writes ``Stopped`` False on every later reconcile; here it is
  written only when the InferenceService resumes from a stop.
- A spec KServe's controller cannot reconcile (an unsupported ``storageUri`` scheme, a
  ``canaryTrafficPercent`` outside 0..100) is only a Warning event ``InternalError`` in KServe; here
  the same text goes to ``PredictorReady`` and ``modelStatus.lastFailureInfo`` (``InvalidSpec``),
  because the local API keeps no events and a waiter should not wait for nothing.
"""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from timonel.kserve.vocabulary import (
    DEPLOYMENT_MODE,
    GPU_RESOURCES,
    STORAGE_SCHEMES,
    TAG_ROUTING,
    resolve_mode,
)
from timonel.kserve.vocabulary import (
    predictor_service_name as predictor_service_name,  # re-exported for the Knative modules
)
from timonel.kube.status import revision_metadata
from timonel.local.conditions import FALSE, TRUE, UNKNOWN, ConditionManager, ConditionSet
from timonel.local.model_status import set_ready_copies, update_model_state, update_transition
from timonel.local.runtimes import Chosen, NoRuntime

#: Knative's default domain, which KServe's URLs carry when nothing else is configured.
DEFAULT_DOMAIN = "example.com"

#: ``storageUri`` prefixes KServe's controller accepts (``ValidateStorageURI``).
SUPPORTED_STORAGE_PREFIXES = tuple(f"{scheme}://" for scheme in STORAGE_SCHEMES)

# KServe condition types (pkg/apis/serving/v1beta1/inference_service_status.go).
READY = "Ready"
PREDICTOR_READY = "PredictorReady"
INGRESS_READY = "IngressReady"
PREDICTOR_ROUTE_READY = "PredictorRouteReady"
PREDICTOR_CONFIGURATION_READY = "PredictorConfigurationReady"
ROUTES_READY = "RoutesReady"
LATEST_DEPLOYMENT_READY = "LatestDeploymentReady"
#: KServe's condition of a stopped InferenceService, and the reason it gives the others.
STOPPED = "Stopped"
#: The one condition type of our own: a GPU request served on the CPU.
LOCAL_CPU_FALLBACK = "LocalCPUFallback"

# Knative Service condition types.
_KSVC_READY = "Ready"
_KSVC_CONFIGURATIONS_READY = "ConfigurationsReady"
_KSVC_ROUTES_READY = "RoutesReady"

ISVC_CONDITIONS = ConditionSet(happy=READY, dependents=(PREDICTOR_READY, INGRESS_READY))
_KSVC_CONDITIONS = ConditionSet(
    happy=_KSVC_READY, dependents=(_KSVC_CONFIGURATIONS_READY, _KSVC_ROUTES_READY)
)

#: How many times ``reconcile`` re-runs on its own output before giving up on a fixpoint.
_SETTLE_ROUNDS = 6


class Phase(enum.StrEnum):
    """What a revision's process is doing, as a pod's phase and container states would say."""

    PENDING = "Pending"  # no process yet, or waiting out a restart back-off
    INITIALIZING = "Initializing"  # the storage initializer is fetching the model
    STARTING = "Starting"  # the server runs; the model is not AVAILABLE yet
    READY = "Ready"  # the server reports the model AVAILABLE
    FAILED = "Failed"  # the last attempt ended in an error (back-off before the next)
    STOPPED = "Stopped"  # no process because no traffic needs one


@dataclass(frozen=True)
class Failure:
    """How the last attempt of a revision ended (a container's ``lastTerminationState``)."""

    message: str
    exit_code: int = 1
    in_initializer: bool = False  # the storage initializer failed, not the server


@dataclass(frozen=True)
class RevisionObservation:
    """The state of one revision's process, as the controller's supervisor last saw it."""

    phase: Phase = Phase.PENDING
    has_been_ready: bool = False
    last_failure: Failure | None = None
    restarts: int = 0
    rest: str = ""  # host:port of the REST API while a process runs
    grpc: str = ""  # host:port of the gRPC API while a process runs
    ready_copies: int = 0  # how many of the revision's processes are ready


@dataclass(frozen=True)
class Revision:
    """A Knative revision: an immutable predictor template with a number.

    ``metadata``: the labels and annotations KServe copied into its template
    (``timonel.kube.status.revision_metadata``); None for a revision recorded before they were
    kept, which is then judged by its predictor alone.
    """

    name: str
    number: int
    template: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What the controller should make true: revisions, processes and status.

    ``route``: the traffic block of the Knative Service KServe writes; ``service_status``: the
    status Knative reports for that Service (None when KServe stops before writing it, as for a
    spec it cannot reconcile; the Service is then left as it was).
    """

    revisions: tuple[Revision, ...]
    running: frozenset[str]
    status: dict[str, Any]
    route: tuple[dict[str, Any], ...] = ()
    service_status: dict[str, Any] | None = None


def deployment_mode(isvc: Mapping[str, Any], default: str = "Knative") -> str:
    """``Knative`` or ``Standard`` from the annotation; unknown values fall back to the default."""
    value = (isvc.get("metadata", {}).get("annotations") or {}).get(DEPLOYMENT_MODE)
    return resolve_mode(value) or default


def revision_name(isvc_name: str, number: int) -> str:
    return f"{predictor_service_name(isvc_name)}-{number:05d}"


def revision_template(predictor: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``spec.predictor`` that makes a revision: all of it but the traffic percent."""
    return {key: value for key, value in predictor.items() if key != "canaryTrafficPercent"}


def storage_uri(predictor: Mapping[str, Any]) -> str | None:
    """The predictor's ``storageUri``, wherever the implementation keeps it."""
    for implementation in ("model", "tensorflow"):
        spec = predictor.get(implementation)
        if isinstance(spec, Mapping) and spec.get("storageUri"):
            return str(spec["storageUri"])
    return None


def container_args(predictor: Mapping[str, Any]) -> tuple[str, ...]:
    """The serving container's ``args`` (KServe appends them to the runtime's own)."""
    for implementation in ("model", "tensorflow"):
        spec = predictor.get(implementation)
        if isinstance(spec, Mapping) and spec.get("args"):
            return tuple(str(arg) for arg in spec["args"])
    return ()


def gpu_limits(predictor: Mapping[str, Any]) -> dict[str, str]:
    """GPU limits of the serving container, by resource name (empty: a CPU-only predictor)."""
    containers: list[Mapping[str, Any]] = []
    for implementation in ("model", "tensorflow"):
        spec = predictor.get(implementation)
        if isinstance(spec, Mapping):
            containers.append(spec)
    containers.extend(c for c in predictor.get("containers") or [] if isinstance(c, Mapping))
    found: dict[str, str] = {}
    for container in containers:
        limits = (container.get("resources") or {}).get("limits") or {}
        for name in GPU_RESOURCES:
            if name in limits:
                found[name] = str(limits[name])
        for name, value in limits.items():
            if str(name).startswith("nvidia.com/mig-"):
                found[str(name)] = str(value)
    return found


def storage_uri_error(uri: str) -> str | None:
    """KServe's controller message for a ``storageUri`` it does not support, else None."""
    if "://" not in uri or uri.startswith(SUPPORTED_STORAGE_PREFIXES):
        return None
    return (
        "StorageURI not supported: storageUri, must be one of: "
        f"[{', '.join(SUPPORTED_STORAGE_PREFIXES)}] or match "
        "https://{}.blob.core.windows.net/{}/{} or be an absolute or relative local path. "
        f"StorageUri [{uri}] is not supported"
    )


def spec_error(predictor: Mapping[str, Any]) -> str | None:
    """Why KServe's controller (or Knative's webhook behind it) cannot reconcile this predictor."""
    uri = storage_uri(predictor)
    if uri is not None:
        problem = storage_uri_error(uri)
        if problem:
            return f"fails to reconcile component: {problem}"
    percent = predictor.get("canaryTrafficPercent")
    if percent is not None and not 0 <= int(percent) <= 100:
        return (
            "fails to reconcile component: fails to reconcile predictor: fails to reconcile "
            f"knative service: validation failed: expected 0 <= {int(percent)} <= 100: "
            "spec.traffic[0].percent"
        )
    return None


def reconcile(
    isvc: Mapping[str, Any],
    revisions: Sequence[Revision],
    observed: Mapping[str, RevisionObservation],
    *,
    now: str,
    domain: str = DEFAULT_DOMAIN,
    runtime: Chosen | NoRuntime | None = None,
    service: Mapping[str, Any] | None = None,
) -> Outcome:
    """Reconcile one Knative-mode InferenceService until its status settles.

    ``runtime``: the serving runtime ``timonel.local.runtimes.choose`` found for it (None: not
    resolved, as for a cluster without KServe's runtime CRDs). ``service``: its Knative Service
    as last written (None: there is none yet), whose generation the new one continues.
    """
    outcome = _reconcile_once(isvc, revisions, observed, now=now, domain=domain, runtime=runtime)
    for _ in range(_SETTLE_ROUNDS):
        settled = {**isvc, "status": outcome.status}
        again = _reconcile_once(
            settled, outcome.revisions, observed, now=now, domain=domain, runtime=runtime
        )
        if again.status == outcome.status and again.running == outcome.running:
            outcome = again
            break
        outcome = again
    if outcome.service_status is not None:
        generation = _service_generation(
            service, outcome.route, len(outcome.revisions) > len(revisions)
        )
        outcome.service_status["observedGeneration"] = generation
        outcome.status["observedGeneration"] = generation  # PropagateStatus copies it
    return outcome


def _service_generation(
    service: Mapping[str, Any] | None, route: Sequence[Mapping[str, Any]], new_revision: bool
) -> int:
    """The Knative Service's generation once KServe has written it: the API server moves it
    when the spec changes, that is when the template makes a new revision or the traffic block
    differs."""
    if service is None:
        return 1
    generation = int((service.get("metadata") or {}).get("generation") or 1)
    previous = list((service.get("spec") or {}).get("traffic") or [])
    return generation + 1 if new_revision or previous != list(route) else generation


def stopped_status(isvc: Mapping[str, Any], *, now: str) -> dict[str, Any]:
    """The status of a stopped InferenceService, as KServe writes it in Knative mode.

    Everything but ``deploymentMode`` is cleared; ``PredictorReady`` is False, ``Stopped`` True,
    and ``IngressReady`` (so ``Ready``) False with reason Stopped. Once stopped, the conditions
    stay as they are (KServe returns early). KServe clears the rest of the status, so there is
    no ``observedGeneration``: the Knative Service it came from is deleted.
    """
    previous: Mapping[str, Any] = isvc.get("status") or {}
    was_stopped = any(
        c.get("type") == STOPPED and c.get("status") == TRUE
        for c in previous.get("conditions") or []
    )
    status: dict[str, Any] = {"deploymentMode": previous.get("deploymentMode") or "Knative"}
    status["conditions"] = copy.deepcopy(list(previous["conditions"])) if was_stopped else []
    conditions = ISVC_CONDITIONS.manage(status["conditions"], now)
    if not was_stopped:
        conditions.initialize()
        conditions.mark_false(PREDICTOR_READY, "")
        conditions.mark_info(STOPPED, TRUE, "", "")
        conditions.mark_false(INGRESS_READY, STOPPED)
    return status


# --- one pass -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Names:
    isvc: str
    namespace: str
    ksvc: str
    domain: str

    def external_host(self, name: str) -> str:
        return f"{name}.{self.namespace}.{self.domain}"

    def internal_host(self, name: str) -> str:
        return f"{name}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class _RevisionState:
    """A revision seen the way Knative's revision reconciler sees it."""

    revision: Revision
    observation: RevisionObservation

    @property
    def ready(self) -> bool:
        return self.observation.has_been_ready

    @property
    def failed(self) -> bool:
        return not self.ready and self.observation.last_failure is not None

    @property
    def failure_message(self) -> str:
        failure = self.observation.last_failure
        return f"Container failed with: {failure.message}" if failure else ""


def _reconcile_once(
    isvc: Mapping[str, Any],
    revisions: Sequence[Revision],
    observed: Mapping[str, RevisionObservation],
    *,
    now: str,
    domain: str,
    runtime: Chosen | NoRuntime | None,
) -> Outcome:
    metadata = isvc.get("metadata") or {}
    spec = isvc.get("spec") or {}
    predictor: Mapping[str, Any] = spec.get("predictor") or {}
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    names = _Names(
        isvc=str(metadata["name"]),
        namespace=str(metadata.get("namespace") or "default"),
        ksvc=predictor_service_name(str(metadata["name"])),
        domain=domain,
    )
    status: dict[str, Any] = copy.deepcopy(dict(isvc.get("status") or {}))
    conditions = ISVC_CONDITIONS.manage(status.setdefault("conditions", []), now)
    conditions.initialize()
    if conditions.get(STOPPED) is not None:
        conditions.mark_info(STOPPED, FALSE, "", "")  # resumed after a stop
    status["deploymentMode"] = "Knative"
    _note_gpu(conditions, predictor, names)

    known = tuple(sorted(revisions, key=lambda revision: revision.number))
    problem = spec_error(predictor)
    if problem is not None:
        # KServe stops before touching the Knative Service: the old revisions keep serving.
        conditions.mark_false(PREDICTOR_READY, "InternalError", problem)
        update_transition(
            status, "InvalidSpec", {"reason": "InvalidPredictorSpec", "message": problem}
        )
        return Outcome(known, _running(known, status), status)
    if isinstance(runtime, NoRuntime):
        # KServe stops before the Knative Service too, with the reason in modelStatus only.
        update_transition(
            status, "InvalidSpec", {"reason": runtime.reason, "message": runtime.message}
        )
        return Outcome(known, _running(known, status), status)
    if isinstance(runtime, Chosen):
        runtime_key = "clusterServingRuntimeName" if runtime.cluster else "servingRuntimeName"
        status.pop("servingRuntimeName", None)
        status.pop("clusterServingRuntimeName", None)
        status[runtime_key] = runtime.name

    template = revision_template(predictor)
    passed_on = revision_metadata(isvc)
    if not known or _new_revision(known[-1], template, passed_on):
        number = known[-1].number + 1 if known else 1
        name = revision_name(names.isvc, number)
        known = (*known, Revision(name, number, template, passed_on))
    states = {
        revision.name: _RevisionState(revision, observed.get(revision.name, RevisionObservation()))
        for revision in known
    }
    component: dict[str, Any] = status.setdefault("components", {}).setdefault("predictor", {})
    latest_created = states[known[-1].name]
    latest_ready = _latest_ready(latest_created, component, states)

    # The Knative Service KServe writes, and what Knative makes of it.
    route_spec = _route_spec(predictor, component, annotations)
    ksvc_conditions: list[dict[str, Any]] = []
    ksvc = _KSVC_CONDITIONS.manage(ksvc_conditions, now)
    ksvc.initialize()
    _mark_configuration(ksvc, latest_created, names)
    resolved = _resolve_traffic(ksvc, route_spec, latest_ready, latest_created, states, names)
    traffic = resolved if resolved is not None else list(component.get("traffic") or [])

    _propagate_status(
        status, conditions, ksvc, component, traffic, latest_created, latest_ready, names
    )
    _propagate_model_status(status, conditions, ksvc, component, latest_created)
    _propagate_cross_component(conditions, ROUTES_READY, PREDICTOR_ROUTE_READY)
    _propagate_cross_component(conditions, LATEST_DEPLOYMENT_READY, PREDICTOR_CONFIGURATION_READY)
    _reconcile_ingress(status, conditions, component, names)

    service_status: dict[str, Any] = {
        "conditions": ksvc_conditions,
        "latestCreatedRevisionName": latest_created.revision.name,
        "url": f"http://{names.external_host(names.ksvc)}",
        "address": {"url": f"http://{names.internal_host(names.ksvc)}"},
    }
    _set_or_drop(service_status, "latestReadyRevisionName", component.get("latestReadyRevision"))
    _set_or_drop(service_status, "traffic", traffic)
    route = tuple(route_spec)
    return Outcome(known, _running(known, status), status, route, service_status)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _new_revision(
    latest: Revision, template: Mapping[str, Any], metadata: Mapping[str, Any]
) -> bool:
    """Whether the Knative Service KServe writes has another revision template than the latest
    revision's: a new predictor, or labels and annotations KServe passes on."""
    if _canonical(latest.template) != _canonical(template):
        return True
    return latest.metadata is not None and _canonical(latest.metadata) != _canonical(metadata)


def _latest_ready(
    latest_created: _RevisionState,
    component: Mapping[str, Any],
    states: Mapping[str, _RevisionState],
) -> _RevisionState | None:
    """Knative moves the latest ready revision forward only to the latest created one."""
    if latest_created.ready:
        return latest_created
    previous = states.get(str(component.get("latestReadyRevision") or ""))
    return previous if previous is not None and previous.ready else None


def _route_spec(
    predictor: Mapping[str, Any],
    component: Mapping[str, Any],
    annotations: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The traffic block of KServe's ``createKnativeService``."""
    percent = predictor.get("canaryTrafficPercent")
    last_rolled_out = str(component.get("latestRolledoutRevision") or "")
    tag_latest = annotations.get(TAG_ROUTING) == "true"
    latest: dict[str, Any] = {"latestRevision": True, "percent": 100}
    if tag_latest:
        latest["tag"] = "latest"
    if percent is None or not last_rolled_out:
        return [latest]
    latest["percent"] = int(percent)
    targets = [latest]
    if int(percent) < 100:
        targets.append(
            {
                "tag": "prev",
                "revisionName": last_rolled_out,
                "latestRevision": False,
                "percent": 100 - int(percent),
            }
        )
    return targets


def _mark_configuration(
    ksvc: ConditionManager, latest_created: _RevisionState, names: _Names
) -> None:
    """The Knative Service's ``ConfigurationsReady``, from its latest created revision."""
    if latest_created.ready:
        ksvc.mark_true(_KSVC_CONFIGURATIONS_READY)
    elif latest_created.failed:
        ksvc.mark_false(
            _KSVC_CONFIGURATIONS_READY,
            "RevisionFailed",
            f"Revision {json.dumps(latest_created.revision.name)} failed with message: "
            f"{latest_created.failure_message}.",
        )
    else:
        ksvc.mark_unknown(_KSVC_CONFIGURATIONS_READY, "", "")


def _resolve_traffic(
    ksvc: ConditionManager,
    route_spec: Sequence[Mapping[str, Any]],
    latest_ready: _RevisionState | None,
    latest_created: _RevisionState,
    states: Mapping[str, _RevisionState],
    names: _Names,
) -> list[dict[str, Any]] | None:
    """Knative's route: status traffic when every target resolves, else None (status unchanged)."""
    resolved: list[dict[str, Any]] = []
    for target in route_spec:
        if target.get("latestRevision"):
            if latest_ready is None:
                config = json.dumps(names.ksvc)
                if latest_created.failed:
                    ksvc.mark_false(
                        _KSVC_ROUTES_READY,
                        "RevisionMissing",
                        f"Configuration {config} does not have any ready Revision.",
                    )
                else:
                    ksvc.mark_unknown(
                        _KSVC_ROUTES_READY,
                        "RevisionMissing",
                        f"Configuration {config} is waiting for a Revision to become ready.",
                    )
                return None
            name = latest_ready.revision.name
        else:
            name = str(target["revisionName"])
            state = states.get(name)
            quoted = json.dumps(name)
            if state is None:
                ksvc.mark_false(
                    _KSVC_ROUTES_READY,
                    "RevisionMissing",
                    f"Revision {quoted} referenced in traffic not found.",
                )
                return None
            if not state.ready:
                if state.failed:
                    ksvc.mark_false(
                        _KSVC_ROUTES_READY,
                        "RevisionMissing",
                        f"Revision {quoted} failed to become ready.",
                    )
                else:
                    ksvc.mark_unknown(
                        _KSVC_ROUTES_READY,
                        "RevisionMissing",
                        f"Revision {quoted} is not yet ready.",
                    )
                return None
        entry: dict[str, Any] = {}
        if target.get("tag"):
            entry["tag"] = target["tag"]
        entry["revisionName"] = name
        entry["latestRevision"] = bool(target.get("latestRevision"))
        entry["percent"] = int(target["percent"])
        if target.get("tag"):
            tagged_host = names.external_host(f"{target['tag']}-{names.ksvc}")
            entry["url"] = f"http://{tagged_host}"
        resolved.append(entry)
    ksvc.mark_true(_KSVC_ROUTES_READY)
    return resolved


def _propagate_status(
    status: dict[str, Any],
    conditions: ConditionManager,
    ksvc: ConditionManager,
    component: dict[str, Any],
    traffic: list[dict[str, Any]],
    latest_created: _RevisionState,
    latest_ready: _RevisionState | None,
    names: _Names,
) -> None:
    """KServe's ``PropagateStatus`` for the predictor."""
    component["latestCreatedRevision"] = latest_created.revision.name
    ready_name = latest_ready.revision.name if latest_ready else ""
    per_revision: dict[str, int] = {}
    for target in traffic:
        if "percent" in target:
            name = str(target.get("revisionName", ""))
            per_revision[name] = per_revision.get(name, 0) + int(target["percent"])
    for target in traffic:
        if target.get("revisionName") != ready_name or not target.get("latestRevision"):
            continue
        percent = target.get("percent")
        if component.get("latestRolledoutRevision") != ready_name:
            if percent == 100:
                _set_or_drop(
                    component, "previousRolledoutRevision", component.get("latestRolledoutRevision")
                )
                component["latestRolledoutRevision"] = ready_name
        elif (
            ready_name == latest_created.revision.name
            and percent is not None
            and percent < 100
            and per_revision.get(ready_name) == 100
            and component.get("previousRolledoutRevision")
        ):
            component["latestRolledoutRevision"] = component["previousRolledoutRevision"]
    _set_or_drop(component, "latestReadyRevision", ready_name)
    ready = ksvc.get(_KSVC_READY) or {}
    if ready.get("status") == TRUE:
        component["address"] = {"url": f"http://{names.internal_host(names.ksvc)}"}
        component["url"] = f"http://{names.external_host(names.ksvc)}"
    for isvc_type, ksvc_type in (
        (PREDICTOR_READY, _KSVC_READY),
        (PREDICTOR_ROUTE_READY, _KSVC_ROUTES_READY),
        (PREDICTOR_CONFIGURATION_READY, _KSVC_CONFIGURATIONS_READY),
    ):
        source = ksvc.get(ksvc_type) or {}
        conditions.mark(
            isvc_type,
            str(source.get("status", UNKNOWN)),
            str(source.get("reason", "")),
            str(source.get("message", "")),
        )
    _set_or_drop(component, "traffic", traffic)


def _propagate_model_status(
    status: dict[str, Any],
    conditions: ConditionManager,
    ksvc: ConditionManager,
    component: Mapping[str, Any],
    latest_created: _RevisionState,
) -> None:
    """KServe's ``PropagateModelStatus``: the latest created revision's process decides."""
    observation = latest_created.observation
    set_ready_copies(status, observation.ready_copies)
    failure = observation.last_failure
    failure_info = (
        {"reason": "ModelLoadFailed", "message": failure.message, "exitCode": failure.exit_code}
        if failure
        else None
    )
    if observation.phase in (Phase.PENDING, Phase.STOPPED) and failure is None:
        any_false = any(
            ksvc.status_of(kind) == FALSE
            for kind in (_KSVC_READY, _KSVC_CONFIGURATIONS_READY, _KSVC_ROUTES_READY)
        )
        update_model_state(status, "FailedToLoad" if any_false else "Pending", None)
        return
    if observation.phase is Phase.INITIALIZING:
        # A storage initializer running again after it failed: KServe waits for the outcome.
        if failure is None or not failure.in_initializer:
            update_model_state(status, "Loading", None)
        return
    if (
        failure is not None
        and failure.in_initializer
        and observation.phase in (Phase.FAILED, Phase.PENDING)
    ):
        update_model_state(status, "FailedToLoad", failure_info)
        return
    if conditions.is_happy() and component.get("latestCreatedRevision") == component.get(
        "latestReadyRevision"
    ):
        update_model_state(status, "Loaded", None)
        return
    if observation.phase in (Phase.FAILED, Phase.PENDING) and failure is not None:
        update_model_state(status, "FailedToLoad", failure_info)
        return
    update_model_state(status, "Pending", None)


def _propagate_cross_component(
    conditions: ConditionManager, kind: str, component_kind: str
) -> None:
    """KServe's ``PropagateCrossComponentStatus`` for the predictor alone."""
    state = conditions.status_of(component_kind)
    if state == TRUE:
        conditions.mark_true(kind)
    elif state == UNKNOWN:
        conditions.mark_unknown(kind, f"{component_kind} not ready")
    else:
        conditions.mark_false(kind, f"{component_kind} not ready")


def _reconcile_ingress(
    status: dict[str, Any],
    conditions: ConditionManager,
    component: Mapping[str, Any],
    names: _Names,
) -> None:
    """KServe's Istio ingress reconciler: URLs once the predictor had one, ``IngressReady``."""
    predictor_state = conditions.status_of(PREDICTOR_READY)
    if predictor_state != TRUE:
        reason = "Predictor ingress not created"
        if predictor_state == UNKNOWN:
            conditions.mark_unknown(INGRESS_READY, reason)
        else:
            conditions.mark_false(INGRESS_READY, reason)
    url = component.get("url")
    if not url:
        return
    status["url"] = str(url).replace("-predictor", "", 1)
    status["address"] = {"url": f"http://{names.internal_host(names.isvc)}"}
    conditions.mark_true(INGRESS_READY)


def _note_gpu(conditions: ConditionManager, predictor: Mapping[str, Any], names: _Names) -> None:
    limits = gpu_limits(predictor)
    if not limits:
        conditions.remove(LOCAL_CPU_FALLBACK)
        return
    requested = ", ".join(f"{name}: {value}" for name, value in sorted(limits.items()))
    conditions.mark_info(
        LOCAL_CPU_FALLBACK,
        TRUE,
        "GPURequestedOnCPU",
        f"the predictor requests GPUs ({requested}) but timonel local has none: "
        f"{names.isvc} runs TF Serving on the CPU here, and on a GKE cluster it gets "
        "the GPU node its spec asks for",
    )


def _running(revisions: Sequence[Revision], status: Mapping[str, Any]) -> frozenset[str]:
    """Revisions that need a process: traffic targets, and the latest created until it is ready.

    A revision keeps running while it is referenced by traffic, even at 0 percent (Knative keeps
    its minimum scale); the latest created revision runs while it deploys. Everything else stops.
    """
    if not revisions:
        return frozenset()
    component = (status.get("components") or {}).get("predictor") or {}
    wanted = {str(target["revisionName"]) for target in component.get("traffic") or []}
    known = {revision.name for revision in revisions}
    wanted.add(revisions[-1].name)
    return frozenset(wanted & known)


def _set_or_drop(target: dict[str, Any], key: str, value: Any) -> None:
    """Go's ``omitempty``: an empty value removes the key."""
    if value in (None, "", [], {}, 0):
        target.pop(key, None)
    else:
        target[key] = value
