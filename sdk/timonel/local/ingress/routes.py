"""The ingress's routing table, built from InferenceService objects as the gateway would see them.

Pure: ``routing_table(isvcs)`` takes InferenceServices as the API returns them (status included)
and gives the table the router consults for every request. It copies what a cluster's gateway
does with what KServe and Knative write:

- **Hosts**: the host of ``status.url`` (``NAME.NAMESPACE.example.com``), the predictor's
  (``NAME-predictor.NAMESPACE.example.com``) and their cluster-local forms (``.svc.cluster.local``,
  the ``address``) reach the InferenceService's split. For the ``default`` namespace a request with
  any other host is routed by its TF Serving path (``/v1/models/NAME...``).
- **Knative mode**: the split is ``status.components.predictor.traffic``, each target at its
  ``percent``. Each tagged target also gets its own host, as Knative's route reconciler names it
  (``TAG-NAME-predictor.NAMESPACE.example.com``: ``prev`` always on a split, ``latest`` with
  ``serving.kserve.io/enable-tag-routing``), which reaches that revision only.
- **Standard mode**: ``spec.canary[]`` weights, applied as KServe's HTTPRoute reconciler applies
  them: only canaries ``status.canaryStatuses`` reports ready take their ``trafficPercent``; the
  stable predictor (``NAME-predictor``, or ``NAME-P-predictor`` once ``spec.predictor.name`` is
  P) takes the rest. A canary's backend is its Deployment, ``NAME-CANARY-predictor``. The host of
  ``status.url`` is KServe's raw ingress host, ``NAME-NAMESPACE.example.com``.

The mirror settings (``timonel.dev/mirror-revision`` and ``timonel.dev/mirror-percent``, read from
the InferenceService's record, the ConfigMap ``timonel.kube.records`` names) and
each revision's scale-to-zero window (Knative's ``scale-to-zero-pod-retention-period`` and
``scale-down-delay``, the larger of them and the ingress's idle window) ride along with the route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from timonel.errors import SpecError
from timonel.kserve.vocabulary import SCALE_DOWN_DELAY, predictor_service_name
from timonel.kube.records import MIRROR_PERCENT, MIRROR_REVISION
from timonel.local.reconcile import DEFAULT_DOMAIN, deployment_mode
from timonel.local.revisions import RevisionKey
from timonel.local.standard import predictor_host

#: Knative's annotation keeping the last pod of a revision after it was scaled to zero.
RETENTION_PERIOD = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"

_TF_SERVING_PATH = re.compile(r"^/v1/models/([^/:?]+)")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")


@dataclass(frozen=True)
class Target:
    backend: RevisionKey
    percent: int
    tag: str = ""


@dataclass(frozen=True)
class Mirror:
    """A copy of ``percent`` percent of the requests goes to ``backend``; its answers are only
    compared, never returned."""

    backend: RevisionKey
    percent: float


@dataclass(frozen=True)
class Route:
    """What one host (or one TF Serving path) reaches."""

    namespace: str
    isvc: str
    targets: tuple[Target, ...]
    tag: str = ""  # the tag host this route is for; "" for the InferenceService's own hosts
    mirror: Mirror | None = None
    #: seconds a revision of this InferenceService with ``minReplicas: 0`` may stay idle
    idle_seconds: float | None = None
    #: revisions whose template has ``minReplicas: 0`` (Knative's min-scale 0): they may stop
    scale_to_zero: frozenset[str] = frozenset()

    def pick(self, draw: float) -> Target | None:
        """The target a request goes to, for a uniform ``draw`` in [0, 1); None without one."""
        weighted = [target for target in self.targets if target.percent > 0]
        total = sum(target.percent for target in weighted)
        if not weighted:
            return None
        point = draw * total
        for target in weighted:
            point -= target.percent
            if point < 0:
                return target
        return weighted[-1]


@dataclass(frozen=True)
class RoutingTable:
    hosts: Mapping[str, Route] = field(default_factory=dict)
    #: routes of the ``default`` namespace by TF Serving model name
    models: Mapping[str, Route] = field(default_factory=dict)

    def lookup(self, host: str, path: str) -> Route | None:
        """The route for a request's Host (or ``:authority``) and path; None when none matches."""
        route = self.hosts.get(_bare_host(host))
        if route is not None:
            return route
        found = _TF_SERVING_PATH.match(path)
        return self.models.get(found.group(1)) if found else None

    def backends(self) -> set[RevisionKey]:
        routes = [*self.hosts.values(), *self.models.values()]
        found = {target.backend for route in routes for target in route.targets}
        found |= {route.mirror.backend for route in routes if route.mirror is not None}
        return found


def routing_table(
    isvcs: Iterable[Mapping[str, Any]],
    *,
    domain: str = DEFAULT_DOMAIN,
    templates: Mapping[RevisionKey, Mapping[str, Any]] | None = None,
    records: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
    idle_seconds: float = 60.0,
) -> RoutingTable:
    """The table for these InferenceServices; ``templates`` are revisions' predictor templates
    (their ``minReplicas`` says whether a revision may scale to zero), keyed by backend;
    ``records`` the annotations of their records, by (namespace, name)."""
    hosts: dict[str, Route] = {}
    models: dict[str, Route] = {}
    for isvc in isvcs:
        metadata = isvc.get("metadata") or {}
        name = str(metadata.get("name") or "")
        namespace = str(metadata.get("namespace") or "default")
        if not name:
            continue
        targets = _targets(isvc, namespace, name)
        if not targets:
            continue
        annotations: Mapping[str, str] = metadata.get("annotations") or {}
        idle = _idle_seconds(annotations, idle_seconds)
        may_stop = frozenset(
            backend.revision
            for backend, template in (templates or {}).items()
            if backend.namespace == namespace
            and backend.isvc == name
            and int(template.get("minReplicas", 1) or 0) == 0
        )
        route = Route(
            namespace,
            name,
            tuple(targets),
            mirror=_mirror((records or {}).get((namespace, name)) or {}, namespace, name),
            idle_seconds=idle,
            scale_to_zero=may_stop,
        )
        service = predictor_service_name(name)
        for host_name in (name, service):
            hosts[f"{host_name}.{namespace}.{domain}"] = route
            hosts[f"{host_name}.{namespace}.svc.cluster.local"] = route
            hosts[f"{host_name}.{namespace}.svc"] = route
        if deployment_mode(isvc) == "Standard":
            hosts[predictor_host(name, namespace, domain)] = route  # KServe's raw ingress host
            for target in targets:  # each predictor's Service reaches its own pods only
                alone = Route(namespace, name, (Target(target.backend, 100),), idle_seconds=idle)
                for suffix in ("svc.cluster.local", "svc"):
                    hosts[f"{target.backend.revision}.{namespace}.{suffix}"] = alone
        for target in targets:
            if target.tag:
                tagged = Route(
                    namespace,
                    name,
                    (Target(target.backend, 100, target.tag),),
                    tag=target.tag,
                    idle_seconds=idle,
                    scale_to_zero=may_stop,
                )
                hosts[f"{target.tag}-{service}.{namespace}.{domain}"] = tagged
                hosts[f"{target.tag}-{service}.{namespace}.svc.cluster.local"] = tagged
        if namespace == "default":
            models[name] = route
    return RoutingTable(hosts, models)


def _targets(isvc: Mapping[str, Any], namespace: str, name: str) -> list[Target]:
    status: Mapping[str, Any] = isvc.get("status") or {}
    if deployment_mode(isvc) == "Standard":
        return _standard_targets(isvc, namespace, name)
    component = (status.get("components") or {}).get("predictor") or {}
    return [
        Target(
            RevisionKey(namespace, name, str(entry["revisionName"])),
            int(entry.get("percent") or 0),
            str(entry.get("tag") or ""),
        )
        for entry in component.get("traffic") or []
        if entry.get("revisionName")
    ]


def _standard_targets(isvc: Mapping[str, Any], namespace: str, name: str) -> list[Target]:
    """KServe's HTTPRoute weights: ready canaries at their percent, the stable gets the rest."""
    status: Mapping[str, Any] = isvc.get("status") or {}
    canaries = (isvc.get("spec") or {}).get("canary") or []
    ready = {
        str(entry.get("name")): entry
        for entry in status.get("canaryStatuses") or []
        if entry.get("ready")
    }
    targets: list[Target] = []
    for canary in canaries:
        canary_name = str(canary.get("predictor", {}).get("name") or "")
        if canary_name not in ready:
            continue
        percent = int(canary.get("trafficPercent") or 0)
        backend = RevisionKey(namespace, name, predictor_service_name(name, canary_name))
        targets.append(Target(backend, percent))
    stable = max(0, 100 - sum(target.percent for target in targets))
    stable_name = (isvc.get("spec") or {}).get("predictor", {}).get("name")
    stable_backend = RevisionKey(namespace, name, predictor_service_name(name, stable_name))
    return [Target(stable_backend, stable), *targets]


def _mirror(record: Mapping[str, str], namespace: str, name: str) -> Mirror | None:
    revision = record.get(MIRROR_REVISION)
    if not revision:
        return None
    return Mirror(
        RevisionKey(namespace, name, revision), mirror_percent(record.get(MIRROR_PERCENT))
    )


def mirror_percent(value: str | None) -> float:
    """The share to mirror, from the annotation or header; 100 when not given."""
    if value is None or value == "":
        return 100.0
    try:
        percent = float(value)
    except ValueError:
        percent = -1.0
    if not 0.0 <= percent <= 100.0:
        raise SpecError(
            f"{MIRROR_PERCENT} is {value!r}: expected a number from 0 to 100; set it to the "
            "percentage of requests to mirror",
            field=MIRROR_PERCENT,
        )
    return percent


def _idle_seconds(annotations: Mapping[str, str], default: float) -> float:
    """Knative keeps the last pod for the larger of the idle window, the retention period and
    the scale-down delay."""
    windows = [default]
    for key in (RETENTION_PERIOD, SCALE_DOWN_DELAY):
        value = annotations.get(key)
        if value:
            windows.append(parse_duration(value, key))
    return max(windows)


def parse_duration(value: str, key: str) -> float:
    """A Go duration as Knative's annotations take it (``90s``, ``1m30s``, ``2h``), in seconds."""
    found = _DURATION.match(value.strip())
    if not value.strip() or found is None or not any(found.groups()):
        raise SpecError(
            f"{key} is {value!r}: expected a duration such as 30s, 1m30s or 2h; fix the annotation",
            field=key,
        )
    hours, minutes, seconds = (float(part) if part else 0.0 for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def _bare_host(host: str) -> str:
    """The host name without a port, in lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host
