"""Which kinds the local API server serves, and the discovery documents that describe them.

The kinds themselves come from ``timonel.kube.resources`` (the one registry of kinds); this module
picks the served ones and answers ``/api``, ``/apis``, ``/apis/<group>[/<version>]`` and
``/version`` from them, so a client's RESTMapper (kubectl, the ``kubernetes`` client) finds the
same names as on a cluster with KServe installed.
"""

from __future__ import annotations

import re
from typing import Any

from timonel.kube.resources import (
    CLUSTER_SERVING_RUNTIME,
    CONFIG_MAP,
    DEPLOYMENT,
    EVENT,
    INFERENCE_SERVICE,
    KNATIVE_REVISION,
    KNATIVE_SERVICE,
    NAMESPACE,
    POD,
    REPLICA_SET,
    SELF_SUBJECT_ACCESS_REVIEW,
    SERVICE,
    SERVING_RUNTIME,
    Kind,
)

#: The Kubernetes version the server reports; the API surface is that of this minor version.
KUBERNETES_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-timonel",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

#: The served kinds. Events are always an empty list, so ``kubectl describe`` has something to
#: show; namespaces are created and deleted but not updated; a SelfSubjectAccessReview is only
#: created, and answered; serving runtimes are stored as KServe's CRDs keep them; pods are
#: written by the controller for revision processes (``timonel.local.pods``); config maps
#: hold what Timonel records beside an InferenceService (a rollout's progress); Deployments,
#: ReplicaSets and Services are written by the controller for Standard-mode predictors
#: (``timonel.local.standard``); Knative Services and Revisions are written by the controller
#: for Knative-mode ones and are read-only to everyone else (``timonel.local.knative``).
SERVED: tuple[Kind, ...] = (
    INFERENCE_SERVICE,
    KNATIVE_SERVICE,
    KNATIVE_REVISION,
    POD,
    DEPLOYMENT,
    REPLICA_SET,
    SERVICE,
    CONFIG_MAP,
    SERVING_RUNTIME,
    CLUSTER_SERVING_RUNTIME,
    NAMESPACE,
    EVENT,
    SELF_SUBJECT_ACCESS_REVIEW,
)

_VERBS = ["delete", "get", "list", "patch", "create", "update", "watch"]
#: Kinds that take fewer verbs than the rest, as kube-apiserver's discovery lists them.
_VERBS_OF = {SELF_SUBJECT_ACCESS_REVIEW: ["create"]}


def _api_resources(kind: Kind) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": kind.plural,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": _VERBS_OF.get(kind, _VERBS),
    }
    if kind.short_names:
        main["shortNames"] = list(kind.short_names)
    if kind.categories:
        main["categories"] = list(kind.categories)
    found = [main]
    if kind.status_subresource:
        found.append(
            {
                "name": f"{kind.plural}/status",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return found


def api_versions() -> dict[str, Any]:
    """``/api``: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def _priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version priority: GA before beta before alpha, higher numbers first."""
    found = _VERSION.match(version)
    if found is None:
        return (0, 0, 0)
    stage = {"alpha": 1, "beta": 2, None: 3}[found.group(2)]
    return (stage, int(found.group(1)), int(found.group(3) or 0))


def _group(group: str) -> dict[str, Any]:
    """``/apis/<group>``: its versions, the preferred (highest priority) first."""
    versions = sorted({k.version for k in SERVED if k.group == group}, key=_priority, reverse=True)
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list() -> dict[str, Any]:
    """``/apis``: every named group."""
    groups = sorted({k.group for k in SERVED if k.group})
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {k: v for k, v in _group(g).items() if k not in ("kind", "apiVersion")} for g in groups
        ],
    }


def api_group(group: str) -> dict[str, Any] | None:
    """``/apis/<group>``, or None for a group that is not served."""
    return _group(group) if any(k.group == group for k in SERVED if k.group) else None


def resource_list(group_version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/<group>/<version>``, or None when not served."""
    kinds = [k for k in SERVED if k.api_version == group_version]
    if not kinds:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [r for k in kinds for r in _api_resources(k)],
    }


def find(group: str, version: str, plural: str) -> Kind | None:
    """The served kind at ``/apis/<group>/<version>/.../<plural>`` (group "" for ``/api``)."""
    for kind in SERVED:
        if (kind.group, kind.version, kind.plural) == (group, version, plural):
            return kind
    return None
