"""Which serving runtime serves an InferenceService, chosen as KServe's predictor reconciler does.

Pure: the controller lists the namespace's ServingRuntimes and the ClusterServingRuntimes and
hands them in. The rules are KServe's (``reconcileModel`` in
``pkg/controller/v1beta1/inferenceservice/components/predictor.go``, ``GetSupportingRuntimes``
and ``RuntimeSupportsModel`` in ``pkg/apis/serving/v1beta1/predictor_model.go``):

* A runtime named in ``spec.predictor.model.runtime`` is looked up in the namespace, then in the
  cluster; it must exist, be enabled, speak the protocol and list the model's format (with its
  ``autoSelect`` not required).
* Otherwise every enabled runtime whose ``autoSelect`` formats carry the model's label
  (``mt:<name>`` or ``mt:<name>:<version>``: a version must match exactly) and that speaks the
  protocol (``v1`` when none is asked) is a candidate. Namespaced runtimes come before cluster
  ones; within each, by their lowest protocol, newest first, then name, then (stably) by the
  format's ``priority``, highest first. The first wins.

Failures carry KServe's ``modelStatus.lastFailureInfo`` reason and message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: KServe's ``GetProtocolVersionInt`` order; anything else sorts last.
_PROTOCOL_ORDER = {"v1": 0, "v2": 1, "grpc-v1": 2, "grpc-v2": 3}


@dataclass(frozen=True)
class Chosen:
    """The runtime that serves the model; ``cluster``: a ClusterServingRuntime."""

    name: str
    cluster: bool


@dataclass(frozen=True)
class NoRuntime:
    """No runtime can serve it: KServe's failure reason and message."""

    reason: str
    message: str


def model_of(predictor: Mapping[str, Any]) -> dict[str, Any]:
    """``spec.predictor.model``, with ``tensorflow`` read as KServe's defaulter rewrites it."""
    if "model" in predictor:
        return dict(predictor["model"])
    if "tensorflow" in predictor:
        return {**predictor["tensorflow"], "modelFormat": {"name": "tensorflow"}}
    return {}


def _label(model: Mapping[str, Any]) -> str:
    model_format = model.get("modelFormat") or {}
    version = model_format.get("version")
    return f"mt:{model_format.get('name', '')}" + (f":{version}" if version else "")


def _labels(spec: Mapping[str, Any], *, named: bool) -> set[str]:
    labels = set()
    for supported in spec.get("supportedModelFormats") or []:
        if named or supported.get("autoSelect"):
            labels.add(f"mt:{supported.get('name', '')}")
            if supported.get("version"):
                labels.add(f"mt:{supported['name']}:{supported['version']}")
    return labels


def _protocol(model: Mapping[str, Any]) -> str:
    return str(model.get("protocolVersion") or "v1")


def _speaks(spec: Mapping[str, Any], protocol: str) -> bool:
    # KServe's IsProtocolVersionSupported: a runtime listing no protocol speaks any.
    protocols = spec.get("protocolVersions") or []
    return not protocols or protocol in protocols


def _supports(spec: Mapping[str, Any], model: Mapping[str, Any], *, named: bool) -> bool:
    return _label(model) in _labels(spec, named=named)


def _ordered(runtimes: Sequence[Mapping[str, Any]], format_name: str) -> list[Mapping[str, Any]]:
    def created(runtime: Mapping[str, Any]) -> float:
        stamp = (runtime.get("metadata") or {}).get("creationTimestamp") or ""
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0

    def lowest_protocol(runtime: Mapping[str, Any]) -> int:
        protocols = runtime.get("spec", {}).get("protocolVersions") or []
        return min((_PROTOCOL_ORDER.get(p, len(_PROTOCOL_ORDER)) for p in protocols), default=9)

    by_age = sorted(
        runtimes,
        key=lambda r: (lowest_protocol(r), -created(r), str(r["metadata"]["name"])),
    )

    def priority(runtime: Mapping[str, Any]) -> float:
        for supported in runtime.get("spec", {}).get("supportedModelFormats") or []:
            if supported.get("name") == format_name and supported.get("priority") is not None:
                return -float(supported["priority"])
        return float("inf")  # a runtime without a priority comes after those with one

    return sorted(by_age, key=priority)


def choose(
    predictor: Mapping[str, Any],
    namespaced: Sequence[Mapping[str, Any]],
    cluster: Sequence[Mapping[str, Any]],
) -> Chosen | NoRuntime:
    """The runtime KServe would pick for ``spec.predictor``; see the module docstring."""
    model = model_of(predictor)
    protocol = _protocol(model)
    named = model.get("runtime")
    if named:
        found = [(r, False) for r in namespaced if r["metadata"]["name"] == named]
        found += [(r, True) for r in cluster if r["metadata"]["name"] == named]
        if not found:
            return NoRuntime("RuntimeNotRecognized", "Waiting for runtime to become available")
        runtime, is_cluster = found[0]
        spec = runtime.get("spec") or {}
        if spec.get("disabled"):
            return NoRuntime("RuntimeDisabled", "Specified runtime is disabled")
        if model.get("protocolVersion") and not _speaks(spec, protocol):
            return NoRuntime(
                "NoSupportingRuntime",
                "Specified runtime does not support specified protocol version",
            )
        if not _supports(spec, model, named=True):
            return NoRuntime(
                "NoSupportingRuntime",
                "Specified runtime does not support specified framework/version",
            )
        return Chosen(str(named), is_cluster)
    format_name = str((model.get("modelFormat") or {}).get("name", ""))
    for runtimes, is_cluster in ((namespaced, False), (cluster, True)):
        for runtime in _ordered(runtimes, format_name):
            spec = runtime.get("spec") or {}
            if (
                not spec.get("disabled")
                and not spec.get("multiModel")
                and _supports(spec, model, named=False)
                and _speaks(spec, protocol)
            ):
                return Chosen(str(runtime["metadata"]["name"]), is_cluster)
    return NoRuntime(
        "NoSupportingRuntime", "No runtime found to support specified framework/version"
    )
