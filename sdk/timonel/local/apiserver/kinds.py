"""The kinds the local API server serves, and the discovery documents that describe them.

One registry (group, version, plural, kind, scope, verbs), read by the router to build URLs and by
the discovery endpoints, so a client's RESTMapper (kubectl, the ``kubernetes`` client) finds the
same names as on a cluster with KServe installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timonel.local.apiserver.statuses import Resource

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

_VERBS = ["delete", "get", "list", "patch", "create", "update", "watch"]


@dataclass(frozen=True)
class Kind:
    """A served resource type."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """The store's name for this resource: ``serving.kserve.io/inferenceservices``."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def resource(self) -> Resource:
        return Resource(self.group, self.plural, self.kind)

    def api_resources(self) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": _VERBS,
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        found = [main]
        if self.status_subresource:
            found.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return found


INFERENCE_SERVICES = Kind(
    group="serving.kserve.io",
    version="v1beta1",
    plural="inferenceservices",
    singular="inferenceservice",
    kind="InferenceService",
    namespaced=True,
    short_names=("isvc",),
    status_subresource=True,
    categories=("all",),
)

NAMESPACES = Kind(
    group="",
    version="v1",
    plural="namespaces",
    singular="namespace",
    kind="Namespace",
    namespaced=False,
    short_names=("ns",),
)

#: core/v1 events: always an empty list here, so ``kubectl describe`` has something to show.
EVENTS = Kind(
    group="",
    version="v1",
    plural="events",
    singular="event",
    kind="Event",
    namespaced=True,
    short_names=("ev",),
)

GROUP_KINDS = (INFERENCE_SERVICES,)
CORE_KINDS = (NAMESPACES, EVENTS)


def api_versions() -> dict[str, Any]:
    """``/api``: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def _group(group: str, version: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [gv],
        "preferredVersion": gv,
    }


def api_group_list() -> dict[str, Any]:
    """``/apis``: every named group."""
    groups = sorted({(k.group, k.version) for k in GROUP_KINDS})
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {k: v for k, v in _group(g, ver).items() if k not in ("kind", "apiVersion")}
            for g, ver in groups
        ],
    }


def api_group(group: str) -> dict[str, Any] | None:
    """``/apis/<group>``, or None for a group that is not served."""
    versions = sorted({k.version for k in GROUP_KINDS if k.group == group})
    return _group(group, versions[0]) if versions else None


def resource_list(group_version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/<group>/<version>``, or None when not served."""
    kinds = [k for k in (*CORE_KINDS, *GROUP_KINDS) if k.api_version == group_version]
    if not kinds:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [r for k in kinds for r in k.api_resources()],
    }


def find(group: str, version: str, plural: str) -> Kind | None:
    for kind in (*CORE_KINDS, *GROUP_KINDS):
        if (kind.group, kind.version, kind.plural) == (group, version, plural):
            return kind
    return None
