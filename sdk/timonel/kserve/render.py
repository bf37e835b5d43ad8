"""ServingSpec ⇄ KServe InferenceService (serving.kserve.io/v1beta1), as plain dicts.

``render`` writes the manifest a real KServe on GKE runs as intended, and runs KServe's
admission rules over it (``timonel.kserve.admission``) so a rendered manifest is never one the
webhook denies or KServe silently ignores. ``from_manifest`` reads one back, from YAML or from a
cluster, and is exact: ``from_manifest(render(spec)) == spec``. A manifest with fields a
ServingSpec does not describe is refused with the field's path, rather than silently dropping
what the cluster runs.

The kserve SDK's model classes are not used: importing ``kserve`` pulls in its whole model
server, and they serialize the container ``name: ""`` that the webhook refuses.
Checking a manifest against KServe's CRD schema is ``timonel.kserve.crd``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from timonel.errors import SpecError
from timonel.gke import scheduling
from timonel.kserve import admission, vocabulary
from timonel.kserve.vocabulary import API_VERSION, CONTAINER_NAME, KIND, MODEL_FORMAT
from timonel.spec import (
    Accelerator,
    AutoscalerClass,
    Autoscaling,
    Canary,
    Mode,
    Model,
    Protocol,
    Resources,
    ServingSpec,
    Tuning,
)

#: TF Serving's gRPC port in KServe's runtime; Knative routes HTTP/2 to a port named h2c.
GRPC_PORT = {"containerPort": 9000, "name": "h2c", "protocol": "TCP"}
_PROTOCOLS = {"rest": "v1", "grpc": "grpc-v1"}
_SYSTEM_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "finalizers",
    "ownerReferences",
    "selfLink",
    "generateName",
)


def _args(spec: ServingSpec) -> list[str]:
    tuning = spec.tuning
    args = []
    if tuning.batching:
        args.append("--enable_batching=true")
    if tuning.batching_parameters_file is not None:
        args.append(f"--batching_parameters_file={tuning.batching_parameters_file}")
    if tuning.rest_api_timeout_ms is not None:
        args.append(f"--rest_api_timeout_in_ms={tuning.rest_api_timeout_ms}")
    if tuning.gpu_memory_fraction is not None:
        args.append(f"--per_process_gpu_memory_fraction={tuning.gpu_memory_fraction!r}")
    if not tuning.warmup:
        args.append("--enable_model_warmup=false")
    return args


def _container(spec: ServingSpec) -> dict[str, Any]:
    model = spec.model
    assert model.runtime_version is not None
    runtime = model.runtime_version
    quantities: dict[str, Any] = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    if spec.accelerator is not None:
        runtime += vocabulary.GPU_SUFFIX
        quantities[vocabulary.GPU_RESOURCE] = str(spec.accelerator.count)
    container: dict[str, Any] = {
        "modelFormat": {"name": MODEL_FORMAT},
        "protocolVersion": _PROTOCOLS[model.protocol],
        "runtimeVersion": runtime,
        "storageUri": model.storage_uri,
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
    }
    args = _args(spec)
    if args:
        container["args"] = args
    if model.protocol == "grpc":
        container["ports"] = [dict(GRPC_PORT)]
    return container


def _annotations(spec: ServingSpec) -> dict[str, str]:
    scaling = spec.autoscaling
    out = {vocabulary.DEPLOYMENT_MODE: vocabulary.MODES[spec.mode]}
    if spec.mode == "standard":
        assert scaling.autoscaler_class is not None
        out[vocabulary.AUTOSCALER_CLASS] = scaling.autoscaler_class
    else:
        kpa = scaling.autoscaler_class == "kpa"
        out[vocabulary.KNATIVE_CLASS] = vocabulary.KPA_CLASS if kpa else vocabulary.HPA_CLASS
    if scaling.scale_down_delay is not None:
        out[vocabulary.SCALE_DOWN_DELAY] = scaling.scale_down_delay
    if scaling.initial_scale is not None:
        out[vocabulary.INITIAL_SCALE] = str(scaling.initial_scale)
    if scaling.progress_deadline is not None:
        out[vocabulary.PROGRESS_DEADLINE] = scaling.progress_deadline
    if spec.tag_routing:
        out[vocabulary.TAG_ROUTING] = "true"
    if spec.model.tensorflow_version is not None:
        out[vocabulary.TENSORFLOW_VERSION] = spec.model.tensorflow_version
    out.update(spec.annotations)
    return out


def render(spec: ServingSpec) -> dict[str, Any]:
    """The InferenceService that serves ``spec``, checked against KServe's admission rules."""
    scaling = spec.autoscaling
    predictor: dict[str, Any] = {}
    if spec.predictor_name is not None:
        predictor["name"] = spec.predictor_name
    predictor["minReplicas"] = scaling.min_replicas
    for key, value in (
        ("maxReplicas", scaling.max_replicas),
        ("scaleMetric", scaling.scale_metric),
        ("scaleTarget", scaling.scale_target),
        ("containerConcurrency", scaling.container_concurrency),
        ("serviceAccountName", spec.service_account),
    ):
        if value is not None:
            predictor[key] = value
    if spec.canary is not None and spec.mode == "knative":
        predictor["canaryTrafficPercent"] = spec.canary.traffic_percent
    selector = dict(spec.node_selector)
    tolerations = [dict(t) for t in spec.tolerations]
    if spec.accelerator is not None:
        selector = {**scheduling.node_selector(spec.accelerator), **selector}
        gpu_tolerations = scheduling.tolerations(spec.accelerator)
        tolerations = gpu_tolerations + [t for t in tolerations if t not in gpu_tolerations]
    if selector:
        predictor["nodeSelector"] = selector
    if tolerations:
        predictor["tolerations"] = tolerations
    predictor["model"] = _container(spec)
    metadata: dict[str, Any] = {"name": spec.name, "namespace": spec.namespace}
    if spec.labels:
        metadata["labels"] = dict(spec.labels)
    metadata["annotations"] = _annotations(spec)
    body: dict[str, Any] = {"predictor": predictor}
    if spec.canary is not None and spec.mode == "standard":
        body["canary"] = [_standard_canary(spec.canary)]
    manifest = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": body}
    admission.admit(manifest)
    return manifest


def _standard_canary(canary: Canary) -> dict[str, Any]:
    """One ``spec.canary[]`` entry: KServe merges it over the stable predictor.

    The CRD requires the canary model's container ``name`` (the stable predictor's model may not
    set it); KServe names the serving container ``kserve-container``.
    """
    predictor: dict[str, Any] = {
        "name": canary.name,
        "model": {
            "name": CONTAINER_NAME,
            "modelFormat": {"name": MODEL_FORMAT},
            "storageUri": canary.storage_uri,
        },
    }
    if canary.min_replicas is not None:
        predictor["minReplicas"] = canary.min_replicas
    return {"predictor": predictor, "trafficPercent": canary.traffic_percent}


def to_yaml(manifest: Mapping[str, Any]) -> str:
    """Block-style YAML in the manifest's own key order, as kubectl users expect to read it."""
    return yaml.safe_dump(_plain(manifest), sort_keys=False, default_flow_style=False)


def to_json(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- reading back -------------------------------------------------------------------------------


def _unsupported(field: str, what: str = "") -> SpecError:
    detail = f" ({what})" if what else ""
    return SpecError(
        f"{field}: a ServingSpec does not describe this field{detail}; remove it, or manage this "
        "InferenceService without Timonel",
        field=field,
    )


def _only(mapping: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise _unsupported(f"{where}.{key}")


def _map(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{field}: expected a mapping, got {type(value).__name__}", field=field)
    return value


def _resources(container: Mapping[str, Any], where: str) -> tuple[Resources, int]:
    resources = _map(container.get("resources"), f"{where}.resources")
    _only(resources, {"requests", "limits"}, f"{where}.resources")
    limits = dict(_map(resources.get("limits"), f"{where}.resources.limits"))
    requests = dict(_map(resources.get("requests"), f"{where}.resources.requests"))
    if requests and limits and requests != limits:
        raise SpecError(
            f"{where}.resources.requests: differ from limits ({requests} vs {limits}); a "
            "ServingSpec gives the model server guaranteed resources, so set requests equal to "
            "limits",
            field=f"{where}.resources.requests",
        )
    quantities = limits or requests
    gpus = quantities.pop(vocabulary.GPU_RESOURCE, None)
    _only(quantities, {"cpu", "memory"}, f"{where}.resources.limits")
    parts = {k: str(v) for k, v in quantities.items()}
    return Resources(**parts), int(str(gpus)) if gpus is not None else 0


def _tuning(args: Any, where: str) -> Tuning:
    if args is None:
        return Tuning()
    if not isinstance(args, list):
        raise SpecError(f"{where}.args: expected a list of flags", field=f"{where}.args")
    values: dict[str, Any] = {}
    flags: dict[str, tuple[str, Callable[[str], Any]]] = {
        "--enable_batching": ("batching", lambda v: v in ("", "true")),
        "--batching_parameters_file": ("batching_parameters_file", str),
        "--rest_api_timeout_in_ms": ("rest_api_timeout_ms", int),
        "--per_process_gpu_memory_fraction": ("gpu_memory_fraction", float),
        "--enable_model_warmup": ("warmup", lambda v: v in ("", "true")),
    }
    for i, arg in enumerate(args):
        flag, _, value = str(arg).partition("=")
        if flag not in flags:
            raise _unsupported(f"{where}.args[{i}]", f"TF Serving flag {arg!r}")
        name, parse = flags[flag]
        try:
            values[name] = parse(value)
        except ValueError:
            raise SpecError(
                f"{where}.args[{i}]: {arg!r} has no valid value", field=f"{where}.args[{i}]"
            ) from None
    return Tuning(**values)


def _placement(
    predictor: Mapping[str, Any], gpus: int
) -> tuple[Accelerator | None, dict[str, str], list[dict[str, Any]]]:
    """The accelerator, and the node selector labels and tolerations it does not write."""
    selector = dict(_map(predictor.get("nodeSelector"), "spec.predictor.nodeSelector"))
    tolerations = list(predictor.get("tolerations") or [])
    if gpus == 0:
        return None, selector, tolerations
    options = scheduling.accelerator_options(selector, field="spec.predictor.nodeSelector")
    if not options:
        raise SpecError(
            f"spec.predictor.nodeSelector: the model requests a GPU but selects no "
            f"{scheduling.ACCELERATOR_LABEL}; a ServingSpec names the GPU type, so add the "
            "selector",
            field="spec.predictor.nodeSelector",
        )
    accelerator = Accelerator(count=gpus, **options)
    written = scheduling.tolerations(accelerator)
    return accelerator, selector, [t for t in tolerations if t not in written]


def _mode(annotations: Mapping[str, Any]) -> Mode:
    value = admission.deployment_mode(annotations)
    return "standard" if value == "Standard" else "knative"


def from_manifest(manifest: Mapping[str, Any]) -> ServingSpec:
    """The ServingSpec an InferenceService describes (the reverse of ``render``).

    Accepts a manifest fresh from a cluster (status and server-set metadata are ignored) and the
    legacy ``predictor.tensorflow`` form, which KServe's defaulter turns into ``predictor.model``.
    """
    if manifest.get("apiVersion") != API_VERSION or manifest.get("kind") != KIND:
        raise SpecError(
            f"apiVersion/kind: expected {API_VERSION} {KIND}, got {manifest.get('apiVersion')} "
            f"{manifest.get('kind')}",
            field="kind",
        )
    admission.admit(manifest)
    metadata = _map(manifest.get("metadata"), "metadata")
    _only(
        metadata,
        {"name", "namespace", "labels", "annotations", *_SYSTEM_METADATA},
        "metadata",
    )
    annotations = dict(_map(metadata.get("annotations"), "metadata.annotations"))
    mode = _mode(annotations)
    spec = _map(manifest.get("spec"), "spec")
    _only(spec, {"predictor", "canary"}, "spec")
    predictor = _map(spec.get("predictor"), "spec.predictor")
    _only(
        predictor,
        {
            "name",
            "minReplicas",
            "maxReplicas",
            "scaleMetric",
            "scaleTarget",
            "containerConcurrency",
            "serviceAccountName",
            "canaryTrafficPercent",
            "nodeSelector",
            "tolerations",
            "model",
            "tensorflow",
        },
        "spec.predictor",
    )
    if "model" in predictor:
        where, container = "spec.predictor.model", _map(predictor["model"], "spec.predictor.model")
        model_format = _map(container.get("modelFormat"), f"{where}.modelFormat")
        if model_format.get("name") != MODEL_FORMAT:
            raise SpecError(
                f"{where}.modelFormat.name: {model_format.get('name')!r} is not served by "
                "Timonel; it serves TensorFlow SavedModels (modelFormat tensorflow)",
                field=f"{where}.modelFormat.name",
            )
        _only(model_format, {"name"}, f"{where}.modelFormat")
    elif "tensorflow" in predictor:
        where = "spec.predictor.tensorflow"
        container = _map(predictor["tensorflow"], where)
    else:
        raise SpecError(
            "spec.predictor.model: missing; a TensorFlow InferenceService serves "
            "spec.predictor.model with modelFormat tensorflow",
            field="spec.predictor.model",
        )
    _only(
        container,
        {
            "modelFormat",
            "protocolVersion",
            "runtimeVersion",
            "storageUri",
            "resources",
            "args",
            "ports",
        },
        where,
    )
    resources, gpus = _resources(container, where)
    accelerator, node_selector, tolerations = _placement(predictor, gpus)
    protocols: dict[str, Protocol] = {"v1": "rest", "grpc-v1": "grpc"}
    protocol = protocols.get(container.get("protocolVersion", "v1"))
    if protocol is None:
        raise SpecError(
            f"{where}.protocolVersion: {container['protocolVersion']!r} is not a protocol KServe's "
            "TF Serving runtime speaks; use v1 (REST) or grpc-v1",
            field=f"{where}.protocolVersion",
        )
    ports = container.get("ports")
    if ports is not None and (protocol != "grpc" or ports != [GRPC_PORT]):
        raise _unsupported(f"{where}.ports", "only the gRPC port of protocol grpc-v1")
    runtime = container.get("runtimeVersion")
    if isinstance(runtime, str) and accelerator is not None:
        runtime = runtime.removesuffix(vocabulary.GPU_SUFFIX)
    scaling = _autoscaling(predictor, annotations, mode)
    model = Model(
        name=metadata.get("name", ""),
        storage_uri=container.get("storageUri", ""),
        runtime_version=runtime,
        protocol=protocol,
        tensorflow_version=annotations.pop(vocabulary.TENSORFLOW_VERSION, None),
    )
    tag_routing = annotations.pop(vocabulary.TAG_ROUTING, "false") == "true"
    annotations.pop(vocabulary.DEPLOYMENT_MODE, None)
    return ServingSpec(
        model=model,
        resources=resources,
        accelerator=accelerator,
        autoscaling=scaling,
        canary=_canary(spec, predictor, mode),
        mode=mode,
        service_account=predictor.get("serviceAccountName"),
        tuning=_tuning(container.get("args"), where),
        namespace=metadata.get("namespace") or "default",
        labels=dict(_map(metadata.get("labels"), "metadata.labels")),
        annotations=annotations,
        tag_routing=tag_routing,
        predictor_name=predictor.get("name"),
        node_selector=node_selector,
        tolerations=tolerations,
    )


def _autoscaling(
    predictor: Mapping[str, Any], annotations: dict[str, Any], mode: str
) -> Autoscaling:
    """Scaling from the predictor's fields and the annotations it owns (popped from the dict)."""
    autoscaler_class: AutoscalerClass
    if mode == "knative":
        klass = annotations.pop(vocabulary.KNATIVE_CLASS, vocabulary.KPA_CLASS)
        autoscaler_class = "hpa" if klass == vocabulary.HPA_CLASS else "kpa"
    else:
        autoscaler_class = annotations.pop(vocabulary.AUTOSCALER_CLASS, "hpa")
    initial = annotations.pop(vocabulary.INITIAL_SCALE, None)
    try:
        initial_scale = int(initial) if initial is not None else None
    except ValueError:
        field = f"metadata.annotations[{vocabulary.INITIAL_SCALE}]"
        raise SpecError(
            f"{field}: {initial!r} is not a whole number of replicas", field=field
        ) from None
    return Autoscaling(
        min_replicas=predictor.get("minReplicas", 1),
        max_replicas=predictor.get("maxReplicas"),
        scale_metric=predictor.get("scaleMetric"),
        scale_target=predictor.get("scaleTarget"),
        container_concurrency=predictor.get("containerConcurrency"),
        autoscaler_class=autoscaler_class,
        scale_down_delay=annotations.pop(vocabulary.SCALE_DOWN_DELAY, None),
        initial_scale=initial_scale,
        progress_deadline=annotations.pop(vocabulary.PROGRESS_DEADLINE, None),
    )


def _canary(spec: Mapping[str, Any], predictor: Mapping[str, Any], mode: str) -> Canary | None:
    if mode == "knative":
        percent = predictor.get("canaryTrafficPercent")
        return None if percent is None else Canary(traffic_percent=percent)
    entries = spec.get("canary") or []
    if not entries:
        return None
    if len(entries) > 1:
        raise _unsupported("spec.canary[1]", "a ServingSpec holds one canary")
    entry = _map(entries[0], "spec.canary[0]")
    _only(entry, {"predictor", "trafficPercent"}, "spec.canary[0]")
    canary = _map(entry.get("predictor"), "spec.canary[0].predictor")
    _only(canary, {"name", "model", "minReplicas"}, "spec.canary[0].predictor")
    model = _map(canary.get("model"), "spec.canary[0].predictor.model")
    _only(model, {"name", "modelFormat", "storageUri"}, "spec.canary[0].predictor.model")
    return Canary(
        traffic_percent=entry.get("trafficPercent", 0),
        name=canary.get("name"),
        storage_uri=model.get("storageUri"),
        min_replicas=canary.get("minReplicas"),
    )
