"""KServe's admission rules for InferenceServices, plus what GKE would refuse or KServe ignore.

KServe's validating webhook (``inference_service_validation.go``, ``component.go``) is Go code
that no Python package carries, so its rules are restated here from ``shared/kserve/
KSERVE_FACTS.md``, each raising a SpecError with the offending field's path and KServe's own
wording where it has one. To those this module adds the cases KServe accepts but that never
serve as written: a value KServe silently falls back from or drops (an unknown deployment mode,
``canaryTrafficPercent`` in Standard mode, scale-to-zero under HPA), one Knative or GKE rejects
later (a percent outside 0..100, a GPU type or count GKE does not sell, names too long for the
DNS labels derived from them), and a TF Serving image older than the TensorFlow that exported
the model.

``admit`` runs every rule over a raw manifest, as the local API server does on each create and
update; the small ``check_*`` functions are the same rules, shared with ``timonel.spec`` so a
ServingSpec is refused at construction for the same reasons and in the same words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from timonel.errors import SpecError
from timonel.gke import catalog, scheduling
from timonel.kserve.vocabulary import (
    AUTOSCALER_CLASS,
    AUTOSCALER_CLASSES,
    DEPLOYMENT_MODE,
    GKE_ACCELERATOR,
    GPU_RESOURCE,
    GPU_RESOURCE_TYPES,
    GPU_SUFFIX,
    HPA_CLASS,
    IMPLEMENTATIONS,
    INITIAL_SCALE,
    KNATIVE,
    KNATIVE_CLASS,
    KNATIVE_MAX_SCALE,
    KNATIVE_METRIC,
    KNATIVE_MIN_SCALE,
    KNATIVE_TARGET,
    KPA_CLASS,
    LEGACY_MODES,
    PROGRESS_DEADLINE,
    SCALE_DOWN_DELAY,
    STORAGE_SCHEMES,
    TAG_ROUTING,
    TENSORFLOW_VERSION,
    resolve_mode,
)

_CANARY_FORBIDDEN = ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling", "workerSpec")

#: Where the shared scaling rules report each value: ServingSpec attributes...
SPEC_FIELDS: Mapping[str, str] = {
    "min_replicas": "autoscaling.min_replicas",
    "max_replicas": "autoscaling.max_replicas",
    "container_concurrency": "autoscaling.container_concurrency",
    "scale_metric": "autoscaling.scale_metric",
    "scale_target": "autoscaling.scale_target",
}
#: ...and InferenceService paths.
MANIFEST_FIELDS: Mapping[str, str] = {
    "min_replicas": "spec.predictor.minReplicas",
    "max_replicas": "spec.predictor.maxReplicas",
    "container_concurrency": "spec.predictor.containerConcurrency",
    "scale_metric": "spec.predictor.scaleMetric",
    "scale_target": "spec.predictor.scaleTarget",
}

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_VERSION = re.compile(r"^(\d+)\.(\d+)")
_DNS_LABEL = 63
#: The longest text KServe and Knative wrap around an InferenceService's name in one DNS label:
#: the revision ``<name>-predictor-00001`` and the route tag ``latest-<name>-predictor``.
_KNATIVE_REVISION = len("-predictor-00001")
_KNATIVE_TAG = len("latest--predictor")
_STANDARD_SUFFIX = len("-predictor")


def _annotation(key: str) -> str:
    return f"metadata.annotations[{key}]"


# --- names and metadata -------------------------------------------------------------------------


def check_dns_label(value: str, *, field: str, what: str) -> None:
    """A DNS-1123 label: lower case alphanumerics and '-', at most 63 characters."""
    if not _NAME.match(value) or len(value) > _DNS_LABEL:
        raise SpecError(
            f"{field}: {value!r} is not valid as {what}; use at most 63 lower case letters, "
            "digits and '-', starting with a letter and ending with a letter or digit",
            field=field,
        )


def check_dns_subdomain(value: str, *, field: str, what: str) -> None:
    if not _SUBDOMAIN.match(value) or len(value) > 253:
        raise SpecError(
            f"{field}: {value!r} is not valid as {what}; use lower case letters, digits, '-' "
            "and '.', at most 253 characters",
            field=field,
        )


def check_name(
    name: Any,
    *,
    mode: str,
    canary_name: str | None = None,
    tag_routing: bool = False,
    field: str = "metadata.name",
) -> None:
    """KServe's name rule, plus the length every DNS label derived from the name needs."""
    if not isinstance(name, str) or not name:
        raise SpecError(
            f"{field}: an InferenceService needs a name; set it (lower case letters, digits, '-')",
            field=field,
        )
    if not _NAME.match(name):
        raise SpecError(
            f'{field}: the InferenceService "{name}" is invalid: a InferenceService name must '
            "consist of lower case alphanumeric characters or '-', and must start with "
            'alphabetical character. (e.g. "my-name" or "abc-123", regex used for validation '
            "is '[a-z]([-a-z0-9]*[a-z0-9])?')",
            field=field,
        )
    if mode == "Knative":
        longest = _KNATIVE_TAG if tag_routing else _KNATIVE_REVISION
        derived = f"latest-{name}-predictor" if tag_routing else f"{name}-predictor-00001"
    elif canary_name:
        longest = len(canary_name) + 1 + _STANDARD_SUFFIX
        derived = f"{name}-{canary_name}-predictor"
    else:
        longest = _STANDARD_SUFFIX
        derived = f"{name}-predictor"
    limit = _DNS_LABEL - longest
    if len(name) > limit:
        raise SpecError(
            f"{field}: {name!r} has {len(name)} characters; KServe derives {derived!r} from it, "
            f"which must fit a 63-character DNS label, so use at most {limit} characters",
            field=field,
        )


def check_metadata_keys(values: Mapping[str, str], *, field: str) -> None:
    """Label and annotation keys Kubernetes accepts: ``[prefix/]name``."""
    for key, value in values.items():
        prefix, _, name = key.rpartition("/")
        if (
            not name
            or len(name) > 63
            or not _QUALIFIED.match(name)
            or (prefix and not _SUBDOMAIN.match(prefix))
        ):
            raise SpecError(
                f"{field}[{key}]: {key!r} is not a valid key; expected an optional DNS prefix "
                "and '/', then at most 63 letters, digits, '-', '_' or '.'",
                field=f"{field}[{key}]",
            )
        if not isinstance(value, str):
            raise SpecError(
                f"{field}[{key}]: values must be strings, got {value!r}; quote it",
                field=f"{field}[{key}]",
            )


#: Annotations a ServingSpec writes from its own attributes, and where to set each instead.
RESERVED_ANNOTATIONS: Mapping[str, str] = {
    DEPLOYMENT_MODE: "mode",
    AUTOSCALER_CLASS: "autoscaling.autoscaler_class",
    KNATIVE_CLASS: "autoscaling.autoscaler_class",
    KNATIVE_MIN_SCALE: "autoscaling.min_replicas",
    KNATIVE_MAX_SCALE: "autoscaling.max_replicas",
    KNATIVE_METRIC: "autoscaling.scale_metric",
    KNATIVE_TARGET: "autoscaling.scale_target",
    SCALE_DOWN_DELAY: "autoscaling.scale_down_delay",
    INITIAL_SCALE: "autoscaling.initial_scale",
    PROGRESS_DEADLINE: "autoscaling.progress_deadline",
    TAG_ROUTING: "tag_routing",
    TENSORFLOW_VERSION: "model.tensorflow_version",
}


def check_reserved_annotations(values: Mapping[str, str], *, field: str) -> None:
    for key in values:
        if key in RESERVED_ANNOTATIONS:
            raise SpecError(
                f"{field}[{key}]: is written from the spec; set {RESERVED_ANNOTATIONS[key]} "
                "instead",
                field=f"{field}[{key}]",
            )


# --- values -------------------------------------------------------------------------------------


def check_quantity(value: Any, *, field: str) -> None:
    """A positive Kubernetes quantity (``500m``, ``2Gi``, ``1``)."""
    text = str(value)
    if isinstance(value, bool) or not _QUANTITY.match(text) or text.startswith("-"):
        raise SpecError(
            f"{field}: {value!r} is not a Kubernetes quantity; write e.g. 500m or 2 for CPU, "
            "512Mi or 4Gi for memory",
            field=field,
        )
    if not re.search(r"[1-9]", text.split("e")[0].split("E")[0]):
        raise SpecError(f"{field}: {value!r} is zero; give a positive amount", field=field)


def parse_duration(value: str, *, field: str) -> float:
    """A Go duration (``90s``, ``10m``, ``1h30m``) in seconds, as Knative parses annotations."""
    rest, total = value, 0.0
    while rest:
        match = _DURATION.match(rest)
        if not match:
            raise SpecError(
                f"{field}: {value!r} is not a duration; write e.g. 90s, 10m or 1h30m",
                field=field,
            )
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        rest = rest[match.end() :]
    if not value:
        raise SpecError(f"{field}: empty duration; write e.g. 90s, 10m or 1h30m", field=field)
    return total


def check_scale_down_delay(value: str, field: str) -> None:
    if parse_duration(value, field=field) > 3600:
        raise SpecError(
            f"{field}: {value} exceeds Knative's limit for scale-down-delay; use 0s to 1h",
            field=field,
        )


def check_storage_uri(uri: Any, *, field: str) -> None:
    """A storage URI KServe's storage initializer can read (``ValidateStorageURI``)."""
    if not isinstance(uri, str) or not uri:
        raise SpecError(
            f"{field}: the model needs a storage URI such as gs://bucket/model/v1", field=field
        )
    scheme, sep, _ = uri.partition("://")
    if sep and scheme not in STORAGE_SCHEMES:
        raise SpecError(
            f"{field}: StorageURI not supported: storageUri, must be one of: "
            f"[{', '.join(s + '://' for s in STORAGE_SCHEMES)}] or a path; StorageUri [{uri}] is "
            "not supported. Copy the model to a bucket KServe can read (gs:// on GKE)",
            field=field,
        )


def _major_minor(version: str) -> tuple[int, int] | None:
    match = _VERSION.match(version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_runtime_version(runtime_version: str, tensorflow_version: str, *, field: str) -> None:
    """The TF Serving image must be at least as new as the TensorFlow that exported the model."""
    runtime = _major_minor(runtime_version.removesuffix(GPU_SUFFIX))
    exported = _major_minor(tensorflow_version)
    if runtime is None or exported is None or runtime >= exported:
        return
    wanted = f"{exported[0]}.{exported[1]}.0"
    raise SpecError(
        f"{field}: TF Serving {runtime_version} is older than TensorFlow {tensorflow_version}, "
        'which exported the model, and may fail to load it with "Op type not registered"; '
        f"use runtime version {wanted} or newer",
        field=field,
    )


# --- scaling ------------------------------------------------------------------------------------


def check_replicas(
    min_replicas: int | None,
    max_replicas: int | None,
    container_concurrency: int | None,
    *,
    fields: Mapping[str, str],
) -> None:
    """KServe's ``validateReplicas`` and the concurrency check, in KServe's words."""
    if min_replicas is not None and min_replicas < 0:
        raise SpecError(
            f"{fields['min_replicas']}: 'MinReplicas' cannot be less than 0 (got "
            f"{min_replicas}); use 0 to scale to zero or 1 or more",
            field=fields["min_replicas"],
        )
    if max_replicas is not None and max_replicas < 0:
        raise SpecError(
            f"{fields['max_replicas']}: 'MaxReplicas' cannot be less than 0 (got "
            f"{max_replicas}); use 0 or leave it out for no upper bound",
            field=fields["max_replicas"],
        )
    if min_replicas is not None and max_replicas and min_replicas > max_replicas:
        raise SpecError(
            f"{fields['min_replicas']}: 'MinReplicas' cannot be greater than MaxReplicas "
            f"({min_replicas} > {max_replicas}); lower the minimum or raise the maximum",
            field=fields["min_replicas"],
        )
    if container_concurrency is not None and container_concurrency < 0:
        raise SpecError(
            f"{fields['container_concurrency']}: parallelism cannot be less than 0 (got "
            f"{container_concurrency}); use 0 for no limit",
            field=fields["container_concurrency"],
        )


def check_autoscaler_class(value: str, mode: str, *, field: str) -> None:
    """Which autoscaler classes a mode has: KPA or Knative's HPA, or KServe's Standard classes."""
    allowed = ("kpa", "hpa") if mode == "Knative" else AUTOSCALER_CLASSES
    if value not in allowed:
        raise SpecError(
            f"{field}: [{value}] is not a supported autoscaler class type in {mode} mode; "
            f"use one of {', '.join(allowed)}",
            field=field,
        )


def check_scaling(
    *,
    mode: str,
    autoscaler_class: str | None,
    min_replicas: int | None,
    scale_metric: str | None,
    scale_target: int | None,
    fields: Mapping[str, str],
) -> None:
    """The metric and target rules of ``validateAutoScalingCompExtension``, plus scale-to-zero.

    ``autoscaler_class`` is ``kpa``/``hpa`` in Knative mode and KServe's annotation value (or
    None when it is missing) in Standard mode.
    """
    metric_field, target_field, min_field = (
        fields["scale_metric"],
        fields["scale_target"],
        fields["min_replicas"],
    )
    if mode == "Knative" and autoscaler_class != "hpa":
        metric = scale_metric or "concurrency"
        if metric not in ("concurrency", "rps"):
            raise SpecError(
                f"{metric_field}: [{metric}] is not a supported metric; Knative's autoscaler "
                "scales on concurrency or rps (cpu and memory need Standard mode)",
                field=metric_field,
            )
        if scale_target is not None and scale_target < 1:
            raise SpecError(
                f"{target_field}: the target for {metric} should be greater than 1 (got "
                f"{scale_target}); set requests per second or in-flight requests per replica",
                field=target_field,
            )
        return
    if mode == "Knative" or autoscaler_class == "hpa" or autoscaler_class is None:
        hpa = "Knative's HPA class" if mode == "Knative" else "the HPA autoscaler"
        metric = scale_metric or "cpu"
        if metric not in ("cpu", "memory"):
            why = (
                "KServe skips its checks without serving.kserve.io/autoscalerClass and the HPA "
                "gets no metric"
                if autoscaler_class is None
                else f"{hpa} scales on cpu or memory"
            )
            raise SpecError(
                f"{metric_field}: [{metric}] is not a supported metric; {why}; use cpu or "
                "memory, or Knative mode for concurrency and rps",
                field=metric_field,
            )
        if scale_target is not None and (
            scale_target > 100 or (metric == "cpu" and scale_target < 1)
        ):
            raise SpecError(
                f"{target_field}: the target utilization percentage should be a [1-100] integer "
                f"(got {scale_target})",
                field=target_field,
            )
        if scale_target is not None and metric == "memory" and scale_target < 1:
            raise SpecError(
                f"{target_field}: the target memory should be greater than 1 MiB (got "
                f"{scale_target})",
                field=target_field,
            )
        if min_replicas == 0:
            raise SpecError(
                f"{min_field}: {hpa} cannot scale to zero and KServe would silently run 1 "
                "replica; use Knative mode (KPA) or autoscaler class keda for scale-to-zero, or "
                "set 1 or more",
                field=min_field,
            )
        return
    if autoscaler_class == "keda":
        if scale_metric is not None:
            raise SpecError(
                f"{metric_field}: ScaleMetric is not supported for KEDA; leave it out (KEDA takes "
                "its metrics from spec.predictor.autoScaling)",
                field=metric_field,
            )
        return
    for value, where in ((scale_metric, metric_field), (scale_target, target_field)):
        if value is not None:
            raise SpecError(
                f"{where}: autoscaler class {autoscaler_class} runs no autoscaler, so KServe "
                "ignores it; drop it or use autoscaler class hpa",
                field=where,
            )


# --- the raw manifest ---------------------------------------------------------------------------


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def deployment_mode(annotations: Mapping[str, Any]) -> str:
    """The mode KServe resolves from the annotation; Knative (the shipped default) when absent."""
    value = annotations.get(DEPLOYMENT_MODE)
    if value is None:
        return KNATIVE
    mode = resolve_mode(value)
    if mode is None:
        raise SpecError(
            f"{_annotation(DEPLOYMENT_MODE)}: [{annotations[DEPLOYMENT_MODE]}] is not a deployment "
            "mode Timonel serves with, and KServe would silently fall back to its default; use "
            "Knative or Standard",
            field=_annotation(DEPLOYMENT_MODE),
        )
    return mode


def _implementation(predictor: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The one implementation KServe would run: ``(key, container spec)``."""
    found = [key for key in IMPLEMENTATIONS if isinstance(predictor.get(key), dict)]
    containers = predictor.get("containers")
    custom = [
        c
        for c in (containers if isinstance(containers, list) else [])
        if isinstance(c, dict) and c.get("name") == "kserve-container"
    ]
    if len(found) + (1 if custom else 0) != 1:
        names = ", ".join(found + (["containers[kserve-container]"] if custom else []))
        raise SpecError(
            "spec.predictor: exactly one of [model, tensorflow, sklearn, xgboost, pytorch, "
            "triton, onnx, huggingface, pmml, lightgbm, paddle, a container named "
            f"kserve-container] must be specified in PredictorSpec (found: {names or 'none'}); "
            "serve TensorFlow with spec.predictor.model and modelFormat tensorflow",
            field="spec.predictor",
        )
    if custom:
        return None
    return found[0], predictor[found[0]]


def _check_env(predictor: Mapping[str, Any], impl: tuple[str, dict[str, Any]] | None) -> None:
    groups: list[tuple[str, Any]] = [
        ("spec.predictor.containers", predictor.get("containers")),
        ("spec.predictor.initContainers", predictor.get("initContainers")),
    ]
    if impl is not None:
        groups.append((f"spec.predictor.{impl[0]}", [impl[1]]))
    for where, containers in groups:
        for i, container in enumerate(containers if isinstance(containers, list) else []):
            container = _map(container)
            for j, env in enumerate(container.get("env") or []):
                if _map(env).get("name") == "PYTHONPATH":
                    path = where if where.endswith((".model", ".tensorflow")) else f"{where}[{i}]"
                    field = f"{path}.env[{j}]"
                    name = container.get("name") or (impl[0] if impl else "")
                    raise SpecError(
                        f'{field}: setting PYTHONPATH in container "{name}" is not allowed for '
                        "security reasons; remove it",
                        field=field,
                    )


def _gpu_count(resources: Mapping[str, Any], where: str) -> int:
    """The ``nvidia.com/gpu`` limit, after the checks Kubernetes makes on extended resources."""
    limits, requests = _map(resources.get("limits")), _map(resources.get("requests"))
    limit, request = limits.get(GPU_RESOURCE), requests.get(GPU_RESOURCE)
    if request is not None and limit is None:
        field = f"{where}.resources.requests[{GPU_RESOURCE}]"
        raise SpecError(
            f"{field}: a GPU must be in limits (Kubernetes refuses extended resources only in "
            "requests); move it to resources.limits",
            field=field,
        )
    if limit is None:
        return 0
    field = f"{where}.resources.limits[{GPU_RESOURCE}]"
    try:
        count = int(str(limit))
    except ValueError:
        raise SpecError(
            f"{field}: {limit!r} is not a whole number of GPUs; GPUs cannot be split by "
            "quantity (use GPU sharing or MIG for a fraction)",
            field=field,
        ) from None
    if request is not None and str(request) != str(limit):
        raise SpecError(
            f"{field}: GPU requests ({request}) must equal limits ({limit}); Kubernetes refuses "
            "the pod otherwise. Set both to the same count or leave requests out",
            field=field,
        )
    return count


def _gpu_enabled(resources: Mapping[str, Any]) -> bool:
    """KServe's ``IsGPUEnabled``: an nvidia.com/gpu or nvidia.com/mig-* entry in limits."""
    return any(
        key == GPU_RESOURCE or key.startswith("nvidia.com/mig-")
        for key in _map(resources.get("limits"))
    )


def _check_gpu(
    annotations: Mapping[str, Any],
    predictor: Mapping[str, Any],
    impl: tuple[str, dict[str, Any]],
) -> None:
    key, container = impl
    where = f"spec.predictor.{key}"
    resources = _map(container.get("resources"))
    count = _gpu_count(resources, where)
    runtime = container.get("runtimeVersion")
    is_tensorflow = key == "tensorflow" or _map(container.get("modelFormat")).get("name") == (
        "tensorflow"
    )
    if isinstance(runtime, str) and is_tensorflow:
        field = f"{where}.runtimeVersion"
        gpu = _gpu_enabled(resources)
        if gpu and not runtime.endswith(GPU_SUFFIX):
            raise SpecError(
                f"{field}: Tensorflow RuntimeVersion is not GPU enabled but GPU resources are "
                f"requested; KServe uses the tag as written, so use {runtime}{GPU_SUFFIX}",
                field=field,
            )
        if not gpu and runtime.endswith(GPU_SUFFIX):
            raise SpecError(
                f"{field}: Tensorflow RuntimeVersion is GPU enabled but GPU resources are not "
                f"requested; use {runtime.removesuffix(GPU_SUFFIX)} or request nvidia.com/gpu",
                field=field,
            )
        exported = annotations.get(TENSORFLOW_VERSION)
        if isinstance(exported, str):
            check_runtime_version(runtime, exported, field=field)
    selector = _map(predictor.get("nodeSelector"))
    accelerator = selector.get(scheduling.ACCELERATOR_LABEL)
    via_annotation = annotations.get(GKE_ACCELERATOR)
    if accelerator is None and via_annotation is not None:
        accelerator = via_annotation
        type_field = _annotation(GKE_ACCELERATOR)
    else:
        type_field = f"spec.predictor.nodeSelector[{scheduling.ACCELERATOR_LABEL}]"
    if accelerator is None:
        return
    if count == 0:
        raise SpecError(
            f"{type_field}: selects {accelerator} nodes but the model requests no nvidia.com/gpu, "
            "so GKE's GPU taint keeps the pod pending; add a GPU limit or drop the selector",
            field=type_field,
        )

    def label(name: str) -> str:
        return f"spec.predictor.nodeSelector[{name}]"

    clients = selector.get(scheduling.MAX_SHARED_CLIENTS_LABEL)
    try:
        shared = int(clients) if clients is not None else None
    except ValueError:
        raise SpecError(
            f"{label(scheduling.MAX_SHARED_CLIENTS_LABEL)}: {clients!r} is not a number of clients",
            field=label(scheduling.MAX_SHARED_CLIENTS_LABEL),
        ) from None
    catalog.check_gpu_request(
        str(accelerator),
        count,
        sharing=selector.get(scheduling.SHARING_STRATEGY_LABEL),
        max_shared_clients=shared,
        mig_partition=selector.get(scheduling.PARTITION_SIZE_LABEL),
        fields={
            "type": type_field,
            "count": f"{where}.resources.limits[{GPU_RESOURCE}]",
            "sharing": label(scheduling.SHARING_STRATEGY_LABEL),
            "max_shared_clients": label(scheduling.MAX_SHARED_CLIENTS_LABEL),
            "mig_partition": label(scheduling.PARTITION_SIZE_LABEL),
        },
    )
    autopilot_count = selector.get(scheduling.ACCELERATOR_COUNT_LABEL)
    if autopilot_count is not None and str(autopilot_count) != str(count):
        field = label(scheduling.ACCELERATOR_COUNT_LABEL)
        raise SpecError(
            f"{field}: selects nodes with {autopilot_count} GPUs but the model requests {count}; "
            "Autopilot needs the two to match",
            field=field,
        )


def _check_knative_annotations(annotations: Mapping[str, Any], mode: str) -> None:
    for key, instead in ((KNATIVE_MIN_SCALE, "minReplicas"), (KNATIVE_MAX_SCALE, "maxReplicas")):
        if key in annotations:
            raise SpecError(
                f"{_annotation(key)}: KServe drops this annotation; set spec.predictor.{instead} "
                "instead",
                field=_annotation(key),
            )
    knative = (SCALE_DOWN_DELAY, INITIAL_SCALE, PROGRESS_DEADLINE, TAG_ROUTING, KNATIVE_CLASS)
    if mode == "Standard":
        for key in knative:
            if key in annotations:
                raise SpecError(
                    f"{_annotation(key)}: is a Knative setting that KServe's Standard mode "
                    "ignores; drop it or use the Knative deployment mode",
                    field=_annotation(key),
                )
        return
    for key in (SCALE_DOWN_DELAY, PROGRESS_DEADLINE):
        if key in annotations:
            parse_duration(str(annotations[key]), field=_annotation(key))
    if SCALE_DOWN_DELAY in annotations:
        check_scale_down_delay(str(annotations[SCALE_DOWN_DELAY]), _annotation(SCALE_DOWN_DELAY))
    klass = annotations.get(KNATIVE_CLASS)
    if klass is not None and klass not in (KPA_CLASS, HPA_CLASS):
        raise SpecError(
            f"{_annotation(KNATIVE_CLASS)}: [{klass}] is not a Knative autoscaler class; use "
            f"{KPA_CLASS} or {HPA_CLASS}",
            field=_annotation(KNATIVE_CLASS),
        )
    tags = annotations.get(TAG_ROUTING)
    if tags is not None and tags not in ("true", "false"):
        raise SpecError(
            f'{_annotation(TAG_ROUTING)}: {tags!r} is not a boolean; use "true" or "false"',
            field=_annotation(TAG_ROUTING),
        )


def _check_canaries(
    spec: Mapping[str, Any], predictor: Mapping[str, Any], mode: str, isvc_name: Any
) -> None:
    canaries = spec.get("canary")
    if not canaries:
        return
    if mode != "Standard":
        raise SpecError(
            "spec.canary: canary is only supported in Standard deployment mode; write "
            f"{DEPLOYMENT_MODE}: Standard, or use spec.predictor.canaryTrafficPercent in Knative "
            "mode",
            field="spec.canary",
        )
    if not isinstance(predictor.get("model"), dict):
        raise SpecError(
            "spec.canary: canary requires a stable predictor with a model (multi-model serving "
            "is not supported with canary); use spec.predictor.model",
            field="spec.canary",
        )
    stable = predictor.get("name")
    stable_min = _int(predictor.get("minReplicas"))
    stable_min = 1 if stable_min is None else stable_min
    seen: set[str] = set()
    total = 0
    for i, entry in enumerate(canaries):
        entry = _map(entry)
        canary = _map(entry.get("predictor"))
        name = canary.get("name")
        where = f"spec.canary[{i}]"
        if not name:
            raise SpecError(
                f"{where}.predictor.name: canary[{i}] predictor.name is required; name the canary",
                field=f"{where}.predictor.name",
            )
        if name == stable or name in seen:
            raise SpecError(
                f"{where}.predictor.name: canary name {name!r} is already used by "
                f"{'the stable predictor' if name == stable else 'another canary'}; pick another",
                field=f"{where}.predictor.name",
            )
        seen.add(name)
        percent = _int(entry.get("trafficPercent"))
        if percent is None or not 0 <= percent <= 100:
            raise SpecError(
                f'{where}.trafficPercent: canary "{name}" trafficPercent must be between 0 and '
                f"100, got {entry.get('trafficPercent')}",
                field=f"{where}.trafficPercent",
            )
        total += percent
        for key in _CANARY_FORBIDDEN:
            if key in canary:
                field = f"{where}.predictor.{key}"
                raise SpecError(
                    f'{field}: canary "{name}" must not set {key} (canary uses fixed replicas); '
                    "drop it",
                    field=field,
                )
        canary_min = _int(canary.get("minReplicas"))
        if canary_min is not None and canary_min > stable_min:
            field = f"{where}.predictor.minReplicas"
            raise SpecError(
                f'{field}: canary "{name}" minReplicas ({canary_min}) must not exceed stable '
                f"predictor minReplicas ({stable_min})",
                field=field,
            )
        model = _map(canary.get("model"))
        if "storageUri" in model:
            check_storage_uri(model["storageUri"], field=f"{where}.predictor.model.storageUri")
        check_name(isvc_name, mode=mode, canary_name=str(name), field="metadata.name")
    if total > 100:
        raise SpecError(
            f"spec.canary: sum of canary trafficPercent values ({total}) must be <= 100",
            field="spec.canary",
        )


def admit(manifest: Mapping[str, Any], *, old: Mapping[str, Any] | None = None) -> None:
    """Refuse an InferenceService KServe's webhook would deny, or that would not serve as written.

    ``old`` is the stored object on an update: then the update-only rules run too (the deployment
    mode cannot change; a renamed predictor needs a new model). Raises a SpecError whose ``field``
    is the path of the offending field.
    """
    if not isinstance(manifest, Mapping):
        raise SpecError("manifest: expected an InferenceService object", field="")
    metadata = _map(manifest.get("metadata"))
    annotations = _map(metadata.get("annotations"))
    spec = _map(manifest.get("spec"))
    mode = deployment_mode(annotations)
    tag_routing = annotations.get(TAG_ROUTING) == "true"
    check_name(metadata.get("name"), mode=mode, tag_routing=tag_routing, field="metadata.name")
    klass = annotations.get(AUTOSCALER_CLASS)
    if klass is not None and klass not in AUTOSCALER_CLASSES:
        raise SpecError(
            f"{_annotation(AUTOSCALER_CLASS)}: [{klass}] is not a supported autoscaler class "
            f"type; use one of {', '.join(AUTOSCALER_CLASSES)}",
            field=_annotation(AUTOSCALER_CLASS),
        )
    gpu_types = annotations.get(GPU_RESOURCE_TYPES)
    if gpu_types is not None:
        try:
            parsed = json.loads(gpu_types)
            if not isinstance(parsed, list):
                raise ValueError(gpu_types)
        except ValueError:
            raise SpecError(
                f"{_annotation(GPU_RESOURCE_TYPES)}: invalid GPU format({gpu_types}): must be a "
                "valid JSON array, e.g. '[\"example.com/gpu\"]'",
                field=_annotation(GPU_RESOURCE_TYPES),
            ) from None
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        raise SpecError(
            "spec.predictor: an InferenceService needs a predictor; add spec.predictor.model",
            field="spec.predictor",
        )
    _check_knative_annotations(annotations, mode)
    impl = _implementation(predictor)
    _check_env(predictor, impl)
    if impl is not None:
        key, container = impl
        if key in ("model", "tensorflow") and container.get("name"):
            field = f"spec.predictor.{key}.name"
            raise SpecError(
                f"{field}: the 'name' field is not allowed in standard predictor; remove it (the "
                "model's name is the InferenceService's name)",
                field=field,
            )
        if "storageUri" in container and predictor.get("storageUris") is not None:
            raise SpecError(
                "spec.predictor.storageUris: Setting both StorageURI and StorageURIs is not "
                "supported.",
                field="spec.predictor.storageUris",
            )
        if "storageUri" in container:
            check_storage_uri(container["storageUri"], field=f"spec.predictor.{key}.storageUri")
        _check_gpu(annotations, predictor, impl)
    check_replicas(
        _int(predictor.get("minReplicas")),
        _int(predictor.get("maxReplicas")),
        _int(predictor.get("containerConcurrency")),
        fields=MANIFEST_FIELDS,
    )
    if mode == "Knative":
        scaler: str | None = "hpa" if annotations.get(KNATIVE_CLASS) == HPA_CLASS else "kpa"
        if scaler == "kpa" and predictor.get("deploymentStrategy") is not None:
            raise SpecError(
                "spec.predictor.deploymentStrategy: customizing deploymentStrategy is only "
                "supported for raw deployment mode; drop it or use Standard mode",
                field="spec.predictor.deploymentStrategy",
            )
    else:
        scaler = klass
    check_scaling(
        mode=mode,
        autoscaler_class=scaler,
        min_replicas=_int(predictor.get("minReplicas")),
        scale_metric=predictor.get("scaleMetric"),
        scale_target=_int(predictor.get("scaleTarget")),
        fields=MANIFEST_FIELDS,
    )
    percent = predictor.get("canaryTrafficPercent")
    if percent is not None:
        field = "spec.predictor.canaryTrafficPercent"
        if mode == "Standard":
            raise SpecError(
                f"{field}: KServe ignores canaryTrafficPercent in Standard mode; use spec.canary[] "
                "or the Knative deployment mode",
                field=field,
            )
        if _int(percent) is None or not 0 <= percent <= 100:
            raise SpecError(
                f"{field}: {percent} is out of range; Knative refuses traffic outside 0..100, so "
                "give the new model's share from 0 to 100",
                field=field,
            )
    _check_canaries(spec, predictor, mode, metadata.get("name"))
    if old is not None:
        _admit_update(manifest, old, mode)


def _admit_update(manifest: Mapping[str, Any], old: Mapping[str, Any], mode: str) -> None:
    new_annotations = _map(_map(manifest.get("metadata")).get("annotations"))
    old_mode = _map(old.get("status")).get("deploymentMode")
    if not old_mode:
        old_mode = _map(_map(old.get("metadata")).get("annotations")).get(DEPLOYMENT_MODE)
    old_mode = LEGACY_MODES.get(old_mode, old_mode) if isinstance(old_mode, str) else None
    if old_mode and DEPLOYMENT_MODE in new_annotations and old_mode != mode:
        raise SpecError(
            f"{_annotation(DEPLOYMENT_MODE)}: update rejected: deploymentMode cannot be changed "
            f"from '{old_mode}' to '{mode}'; delete and recreate the InferenceService to switch",
            field=_annotation(DEPLOYMENT_MODE),
        )
    new_predictor = _map(_map(manifest.get("spec")).get("predictor"))
    old_predictor = _map(_map(old.get("spec")).get("predictor"))
    old_name, new_name = old_predictor.get("name"), new_predictor.get("name")
    if old_name and new_name != old_name:
        old_uri = _map(old_predictor.get("model")).get("storageUri")
        new_uri = _map(new_predictor.get("model")).get("storageUri")
        if old_uri == new_uri:
            raise SpecError(
                "spec.predictor.name: predictor.name change requires a model change (e.g. "
                "storageUri); change the model together with the name",
                field="spec.predictor.name",
            )
