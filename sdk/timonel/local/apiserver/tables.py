"""Server-side printing: the ``Table`` that ``kubectl get`` asks for with ``Accept: ...;as=Table``.

A real API server builds an InferenceService's columns from the CRD's additionalPrinterColumns;
the registry of kinds (``timonel.kube.resources``) carries them, and the JSONPath forms they use
are the only ones evaluated here, so ``kubectl get isvc`` shows URL, READY, PREV, LATEST... as it
does on a cluster with KServe.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from timonel.kube.resources import Kind

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

_STEP = re.compile(r"\.(\w+)|\[\?\(@\.(\w+)==('([^']*)'|true|false)\)\]")


def evaluate(path: str, obj: Any) -> Any:
    """The first value a simple JSONPath (fields and ``[?(@.k==v)]`` filters) finds, or None."""
    found = [obj]
    for step in _STEP.finditer(path):
        field, key, literal, text = step.groups()
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


def _cell(kind: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if kind == "date":
        try:
            stamp = datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "<invalid>"
        return human_duration((now - stamp).total_seconds())
    if kind == "integer":
        return int(value) if isinstance(value, int | float) else None
    return value if isinstance(value, str) else str(value).lower()


def table(kind: Kind, items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of ``items`` with the kind's printer columns."""
    columns = kind.printer_columns
    now = datetime.now(UTC)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            _NAME_COLUMN,
            *(
                {"name": c.name, "type": c.type, "format": "", "description": "", "priority": 0}
                for c in columns
            ),
        ],
        "rows": [
            {
                "cells": [
                    obj["metadata"]["name"],
                    *(_cell(c.type, evaluate(c.json_path, obj), now) for c in columns),
                ],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in items
        ],
    }
