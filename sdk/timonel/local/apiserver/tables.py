"""Server-side printing: the ``Table`` that ``kubectl get`` asks for with ``Accept: ...;as=Table``.

A real API server builds an InferenceService's columns from the CRD's additionalPrinterColumns;
the registry of kinds (``timonel.kube.resources``) carries them, and the JSONPath forms they use
are the only ones evaluated here, so ``kubectl get isvc`` shows URL, READY, PREV, LATEST... as it
does on a cluster with KServe.

A Pod's row is computed, as kube-apiserver computes it in Go (``printPod`` in kubernetes'
``pkg/printers/internalversion/printers.go``), not read from a field: Ready counts ready
containers, Status is the reason of the container that holds the pod up (``CrashLoopBackOff``,
``Init:0/1``, ``Init:Error``, ``Completed``, ``Terminating``...) and Restarts says when the last
restart was. ``pod_row`` copies those rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from timonel.kube.resources import DEPLOYMENT, POD, Kind

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}

_STEP = re.compile(r"\.(\w+)|\[\?\(@\.(\w+)==('([^']*)'|true|false)\)\]|\['((?:[^'\\]|\\.)*)'\]")


def evaluate(path: str, obj: Any) -> Any:
    """The first value a simple JSONPath finds, or None: fields, ``[?(@.k==v)]`` filters and
    ``['k']`` keys with their dots escaped (``.metadata.labels['serving\\.knative\\.dev/x']``)."""
    found = [obj]
    for step in _STEP.finditer(path):
        field, key, literal, text, quoted = step.groups()
        if quoted is not None:
            field = re.sub(r"\\(.)", r"\1", quoted)
        if field:
            found = [v[field] for v in found if isinstance(v, dict) and field in v]
        else:
            wanted: Any = text if text is not None else literal == "true"
            found = [
                item
                for v in found
                if isinstance(v, list)
                for item in v
                if isinstance(item, dict) and item.get(key) == wanted
            ]
    return found[0] if found else None


def human_duration(seconds: float) -> str:
    """Kubernetes' ``duration.HumanDuration``: 45s, 5m10s, 25m, 3h2m, 12h, 2d5h, 40d, 3y10d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: how long ago, as ``kubectl get`` prints an Age."""
    if value is None:
        return "<unknown>"
    stamp = _timestamp(value)
    return "<invalid>" if stamp is None else human_duration((now - stamp).total_seconds())


def _cell(kind: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if kind == "date":
        return _since(value, now)
    if kind == "integer":
        if isinstance(value, dict | list):
            return len(value)  # a count, as ConfigMap's DATA column
        return int(value) if isinstance(value, int | float) else None
    return value if isinstance(value, str) else str(value).lower()


def _column(name: str, kind: str, description: str = "", priority: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "format": "",
        "description": description,
        "priority": priority,
    }


#: printPod's columns; the last four show with ``-o wide`` (priority 1).
POD_COLUMNS = (
    _column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", "string", "The aggregate status of the containers in this pod."),
    _column(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.",
    ),
    _column("Age", "string", "CreationTimestamp is a timestamp representing the server time."),
    _column("IP", "string", "IP address allocated to the pod.", 1),
    _column("Node", "string", "NodeName is the name of the node the pod is scheduled on.", 1),
    _column("Nominated Node", "string", "nominatedNodeName of the pod.", 1),
    _column("Readiness Gates", "string", "The pod's readiness gates.", 1),
)


#: The row condition of a pod that ended (``podSuccessConditions``, ``podFailedConditions``).
_FINISHED = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}


def _true(conditions: list[dict[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _terminated_reason(terminated: dict[str, Any], prefix: str = "") -> str:
    """A terminated container's reason, else its signal or exit code, as printPod names them."""
    if terminated.get("reason"):
        return f"{prefix}{terminated['reason']}"
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def _last_finished(status: dict[str, Any], latest: datetime | None) -> datetime | None:
    """The later of ``latest`` and when the container's last run ended."""
    ended = ((status.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
    stamp = _timestamp(ended) if ended else None
    if stamp is None or (latest is not None and latest >= stamp):
        return latest
    return stamp


def pod_row(pod: dict[str, Any], now: datetime) -> dict[str, Any]:
    """printPod: the cells (Ready, Status, Restarts, Age and the wide ones) and conditions."""
    metadata, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    conditions = status.get("conditions") or []
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions
    ):
        reason = "SchedulingGated"
    init_specs = {c["name"]: c for c in spec.get("initContainers") or []}
    restartable = {name for name, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(restartable)
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    initializing = False
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        last_restart = _last_finished(container, last_restart)
        sidecar = container.get("name") in restartable
        if sidecar:
            sidecar_restarts += int(container.get("restartCount") or 0)
            last_sidecar_restart = _last_finished(container, last_sidecar_restart)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and not terminated.get("exitCode"):
            continue
        if sidecar and container.get("started"):
            ready += 1 if container.get("ready") else 0
            continue
        if terminated is not None:  # initialization failed
            reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and waiting.get("reason") not in (None, "", "PodInitializing"):
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        running = False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            last_restart = _last_finished(container, last_restart)
            state = container.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated is not None:
                reason = _terminated_reason(terminated)
            elif container.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        # a pod whose containers completed but one still runs: Running, or NotReady
        if reason == "Completed" and running:
            reason = "Running" if _true(conditions, "Ready") else "NotReady"

    if metadata.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif metadata.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    ips = status.get("podIPs") or []
    row: dict[str, Any] = {
        "cells": [
            metadata["name"],
            f"{ready}/{total}",
            reason,
            restarts_cell,
            _since(metadata.get("creationTimestamp"), now),
            (ips[0].get("ip") if ips else None) or "<none>",
            spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>",
            _readiness_gates(spec.get("readinessGates") or [], conditions),
        ]
    }
    if phase in _FINISHED:
        row["conditions"] = [
            {"type": "Completed", "status": "True", "reason": phase, "message": _FINISHED[phase]}
        ]
    return row


def _readiness_gates(gates: list[dict[str, Any]], conditions: list[dict[str, Any]]) -> str:
    if not gates:
        return "<none>"
    passed = sum(1 for gate in gates if _true(conditions, str(gate.get("conditionType"))))
    return f"{passed}/{len(gates)}"


#: printDeployment's columns; the last three show with ``-o wide`` (priority 1).
DEPLOYMENT_COLUMNS = (
    _column("Ready", "string", "Number of the pod with ready state"),
    _column(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this "
        "deployment that have the desired template spec.",
    ),
    _column(
        "Available",
        "string",
        "Total number of available pods (ready for at least "
        "minReadySeconds) targeted by this deployment.",
    ),
    _column("Age", "string", "CreationTimestamp is a timestamp representing the server time."),
    _column("Containers", "string", "Names of each container in the template.", 1),
    _column("Images", "string", "Images referenced by each container in the template.", 1),
    _column("Selector", "string", "Label selector for pods.", 1),
)


def deployment_row(deployment: dict[str, Any], now: datetime) -> dict[str, Any]:
    """printDeployment: READY as ready/desired, UP-TO-DATE, AVAILABLE, AGE and the wide ones."""
    metadata, spec = deployment["metadata"], deployment.get("spec") or {}
    status = deployment.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "cells": [
            metadata["name"],
            f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
            int(status.get("updatedReplicas") or 0),
            int(status.get("availableReplicas") or 0),
            _since(metadata.get("creationTimestamp"), now),
            ",".join(str(c.get("name")) for c in containers),
            ",".join(str(c.get("image")) for c in containers),
            ",".join(f"{key}={value}" for key, value in sorted(selector.items())) or "<none>",
        ]
    }


def _column_row(kind: Kind) -> Callable[[dict[str, Any], datetime], dict[str, Any]]:
    """The row of a kind printed from its JSONPath columns, as for a CRD."""

    def row(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
        cells = [_cell(c.type, evaluate(c.json_path, obj), now) for c in kind.printer_columns]
        return {"cells": [obj["metadata"]["name"], *cells]}

    return row


def table(kind: Kind, items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of ``items``: a Pod's printPod columns, a Deployment's
    printDeployment columns, else the kind's printer columns."""
    now = datetime.now(UTC)
    row: Callable[[dict[str, Any], datetime], dict[str, Any]]
    if kind is POD:
        columns, row = list(POD_COLUMNS), pod_row
    elif kind is DEPLOYMENT:
        columns, row = list(DEPLOYMENT_COLUMNS), deployment_row
    else:
        columns = [_column(c.name, c.type) for c in kind.printer_columns]
        row = _column_row(kind)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [_NAME_COLUMN, *columns],
        "rows": [
            {
                **row(obj, now),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in items
        ],
    }
