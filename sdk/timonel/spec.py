"""ServingSpec: how one TensorFlow model should be served, typed and checked on construction.

A ServingSpec is intent, not a manifest: ``timonel.kserve.render`` turns it into the KServe
InferenceService and reads one back. Every part is a frozen pydantic model, so a spec that exists
is one KServe and GKE accept; ``ServingSpec.replace`` changes one and validates again.

Construction errors are SpecErrors naming the attribute (``autoscaling.min_replicas``); pydantic's
own ValidationError never reaches the caller, and no command-line wording does either (the CLI
names its flags itself). The one read here is ``ServingSpec.from_yaml``, of a file the caller names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from timonel.errors import SpecError
from timonel.gke import catalog, scheduling
from timonel.kserve import admission, vocabulary

Mode = Literal["knative", "standard"]
Protocol = Literal["rest", "grpc"]
ScaleMetric = Literal["concurrency", "rps", "cpu", "memory"]
AutoscalerClass = Literal["kpa", "hpa", "keda", "external", "none"]
Sharing = Literal["time-sharing", "mps"]

#: The TF Serving release the runtime image defaults to (tensorflow/serving:2.20.0 and -gpu).
DEFAULT_RUNTIME_VERSION = "2.20.0"

#: Knative waits this long for a revision's first pod before failing it; a GPU pod scaled up from
#: zero waits for a node, the driver, a multi-GB image and the model (KServe #1247, #1641).
GPU_PROGRESS_DEADLINE = "1800s"
#: How long a GPU replica outlives its last request, so a burst does not pay a GPU cold start.
GPU_SCALE_DOWN_DELAY = "10m"
#: Shortest progress deadline that lets a GPU node be created from zero.
MIN_GPU_PROGRESS_DEADLINE_SECONDS = 900

#: The fields of a Kubernetes Toleration.
TOLERATION_FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-?(?:rc|dev)\d*)?$")
_RUNTIME_VERSION = re.compile(r"^\d+\.\d+\.\d+(-rc\d+)?$")


#: What to do about pydantic's error kinds, added to its message (which says only what is wrong).
_FIXES = {
    "less_than": "lower it",
    "less_than_equal": "lower it",
    "greater_than": "raise it",
    "greater_than_equal": "raise it",
    "literal_error": "use one of the values listed",
    "enum": "use one of the values listed",
    "extra_forbidden": "remove it, or check its spelling against the ServingSpec fields",
    "missing": "add it",
    "int_parsing": "give a whole number",
    "int_type": "give a whole number",
    "bool_parsing": "give true or false",
    "string_type": "give a string",
}


def _to_spec_error(exc: ValidationError, path: str) -> SpecError:
    """The first pydantic error as one SpecError that names the attribute by its spec path and
    says what to do."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in ([path] if path else []) + list(first["loc"]))
    where = where or "spec"
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    fix = _FIXES.get(first["type"])
    return SpecError(f"{where}: {first['msg']}{shown}" + (f"; {fix}" if fix else ""), field=where)


class _Part(BaseModel):
    """A frozen, closed spec part whose errors are SpecErrors.

    ``_path`` is where the part sits in a ServingSpec: pydantic builds nested parts through this
    ``__init__`` too, so an error inside one is reported as ``canary.traffic_percent``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    _path: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _to_spec_error(exc, self._path) from None


def parse_version(text: str, *, field: str) -> tuple[int, int]:
    """``2.21.0`` → (2, 21); a SpecError for anything that is not a TensorFlow version."""
    match = _VERSION.match(text)
    if not match:
        raise SpecError(
            f"{field}: {text!r} is not a version; expected MAJOR.MINOR.PATCH such as 2.20.0",
            field=field,
        )
    return int(match.group(1)), int(match.group(2))


class Model(_Part):
    """What is served: the model's name, where its release lives and which TF Serving runs it.

    ``name`` is both the InferenceService's name and the name TF Serving registers the model
    under (the runtime passes ``--model_name={{.Name}}``), so clients call
    ``/v1/models/<name>:predict``. ``runtime_version`` is the TF Serving image tag without the
    ``-gpu`` suffix, which the renderer adds when a GPU is requested; left out, it is the newer of
    ``DEFAULT_RUNTIME_VERSION`` and the TensorFlow that exported the model.
    """

    _path: ClassVar[str] = "model"

    name: str
    storage_uri: str
    runtime_version: str | None = None
    protocol: Protocol = "rest"
    tensorflow_version: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Model:
        admission.check_storage_uri(self.storage_uri, field="model.storage_uri")
        exported = None
        if self.tensorflow_version is not None:
            exported = parse_version(self.tensorflow_version, field="model.tensorflow_version")
        if self.runtime_version is None:
            default = DEFAULT_RUNTIME_VERSION
            if exported and exported > parse_version(default, field="model.runtime_version"):
                default = f"{exported[0]}.{exported[1]}.0"
            object.__setattr__(self, "runtime_version", default)
        else:
            if self.runtime_version.endswith(vocabulary.GPU_SUFFIX):
                raise SpecError(
                    f"model.runtime_version: {self.runtime_version!r} names the GPU image; give "
                    "the version alone (the -gpu suffix is added when an accelerator is set)",
                    field="model.runtime_version",
                )
            if not _RUNTIME_VERSION.match(self.runtime_version):
                raise SpecError(
                    f"model.runtime_version: {self.runtime_version!r} is not a TF Serving release "
                    "tag; expected MAJOR.MINOR.PATCH such as 2.20.0",
                    field="model.runtime_version",
                )
        assert self.runtime_version is not None
        if self.tensorflow_version is not None:
            admission.check_runtime_version(
                self.runtime_version,
                self.tensorflow_version,
                field="model.runtime_version",
            )
        return self


class Resources(_Part):
    """CPU and memory for the model server, as Kubernetes quantities; requests equal limits."""

    _path: ClassVar[str] = "resources"

    cpu: str = "1"
    memory: str = "2Gi"

    @model_validator(mode="after")
    def _check(self) -> Resources:
        admission.check_quantity(self.cpu, field="resources.cpu")
        admission.check_quantity(self.memory, field="resources.memory")
        return self


class Accelerator(_Part):
    """GPUs for each replica, on a GKE node pool the pod selects by label.

    ``Accelerator("nvidia-l4", count=2)`` is checked against ``timonel.catalog.CATALOG``: the type
    must be offered, the count must be one GKE sells for it, MIG and sharing must exist for it.
    ``autopilot`` adds the GPU count selector Autopilot needs; ``spot`` selects Spot nodes.
    """

    _path: ClassVar[str] = "accelerator"

    type: str
    count: int = 1
    spot: bool = False
    autopilot: bool = False
    sharing: Sharing | None = None
    max_shared_clients: int | None = None
    mig_partition: str | None = None

    def __init__(self, type: str | None = None, /, **data: Any) -> None:
        if type is not None:
            data["type"] = type
        super().__init__(**data)

    @model_validator(mode="after")
    def _check(self) -> Accelerator:
        catalog.check_gpu_request(
            self.type,
            self.count,
            sharing=self.sharing,
            max_shared_clients=self.max_shared_clients,
            mig_partition=self.mig_partition,
        )
        if self.sharing is not None and self.max_shared_clients is None:
            object.__setattr__(self, "max_shared_clients", catalog.DEFAULT_SHARED_CLIENTS)
        return self

    @classmethod
    def auto(cls, model_size_bytes: int, **options: Any) -> tuple[Accelerator, catalog.GpuChoice]:
        """The accelerator ``--gpu auto`` picks for a model of this size, and why."""
        choice = catalog.choose_gpu(model_size_bytes)
        return cls(choice.type, **options), choice


class Autoscaling(_Part):
    """Replica bounds and the metric that moves between them.

    ``autoscaler_class`` defaults by mode: ``kpa`` (Knative's, the only one that scales to zero
    without KEDA) in Knative mode, ``hpa`` in Standard mode. ``scale_down_delay``,
    ``initial_scale`` and ``progress_deadline`` are Knative revision settings; for a GPU that
    scales from zero they default to values long enough for a node to be created.
    """

    _path: ClassVar[str] = "autoscaling"

    min_replicas: int = 1
    max_replicas: int | None = None
    scale_metric: ScaleMetric | None = None
    scale_target: int | None = None
    container_concurrency: int | None = None
    autoscaler_class: AutoscalerClass | None = None
    scale_down_delay: str | None = None
    initial_scale: int | None = None
    progress_deadline: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Autoscaling:
        admission.check_replicas(
            self.min_replicas,
            self.max_replicas,
            self.container_concurrency,
            fields=admission.SPEC_FIELDS,
        )
        for name in ("scale_down_delay", "progress_deadline"):
            value = getattr(self, name)
            if value is not None:
                admission.parse_duration(value, field=f"autoscaling.{name}")
        if self.scale_down_delay is not None:
            admission.check_scale_down_delay(self.scale_down_delay, "autoscaling.scale_down_delay")
        if self.initial_scale is not None and self.initial_scale < 0:
            raise SpecError(
                f"autoscaling.initial_scale: {self.initial_scale} must be 0 or more (0 also needs "
                "allow-zero-initial-scale in Knative's config-autoscaler)",
                field="autoscaling.initial_scale",
            )
        return self


class Canary(_Part):
    """A share of traffic for a new model while the previous one keeps the rest.

    Knative mode: the new model is ``ServingSpec.model.storage_uri`` and the previous rolled-out
    revision keeps ``100 - traffic_percent``; only the percentage is given here. Standard mode:
    ``spec.canary[]`` runs the canary beside the stable predictor, so it needs its own ``name``
    and ``storage_uri`` and runs ``min_replicas`` fixed replicas.
    """

    _path: ClassVar[str] = "canary"

    traffic_percent: int = Field(ge=0, le=100)
    name: str | None = None
    storage_uri: str | None = None
    min_replicas: int | None = None

    @model_validator(mode="after")
    def _check(self) -> Canary:
        if self.storage_uri is not None:
            admission.check_storage_uri(self.storage_uri, field="canary.storage_uri")
        if self.name is not None:
            admission.check_dns_label(self.name, field="canary.name", what="a canary name")
        if self.min_replicas is not None and self.min_replicas < 0:
            raise SpecError(
                f"canary.min_replicas: {self.min_replicas} must be 0 or more",
                field="canary.min_replicas",
            )
        return self


class Tuning(_Part):
    """TF Serving flags for the model server.

    ``batching`` turns on server-side batching (``--enable_batching``);
    ``batching_parameters_file`` points at a ``BatchingParameters`` text file the container can
    read, typically one shipped inside the release (``/mnt/models/...``). ``rest_api_timeout_ms``
    overrides the runtime's 60 s, ``gpu_memory_fraction`` caps how much GPU memory TF takes (by
    default nearly all of it), and ``warmup`` False skips the release's warmup records.
    """

    _path: ClassVar[str] = "tuning"

    batching: bool = False
    batching_parameters_file: str | None = None
    rest_api_timeout_ms: int | None = Field(default=None, ge=1)
    gpu_memory_fraction: float | None = Field(default=None, gt=0, le=1)
    warmup: bool = True

    @model_validator(mode="after")
    def _check(self) -> Tuning:
        if self.batching_parameters_file is not None:
            if not self.batching:
                raise SpecError(
                    "tuning.batching_parameters_file: TF Serving reads the file only with "
                    "batching on; set tuning.batching to true or drop the file",
                    field="tuning.batching_parameters_file",
                )
            if not self.batching_parameters_file.startswith("/"):
                raise SpecError(
                    f"tuning.batching_parameters_file: {self.batching_parameters_file!r} must be "
                    "an absolute path in the container, e.g. /mnt/models/batching.config",
                    field="tuning.batching_parameters_file",
                )
        return self


class ServingSpec(_Part):
    """Everything Timonel needs to serve one TensorFlow model on KServe.

    ``mode`` is KServe's deployment mode: ``knative`` (the default install, the only one with
    scale-to-zero and revision canaries) or ``standard`` (plain Deployments, canaries through
    ``spec.canary[]``). ``tag_routing`` gives each Knative revision of a rollout its own URL
    (``latest-`` and ``prev-`` hosts). ``predictor_name`` names the stable predictor in Standard
    mode, where promoting a canary renames the stable one. ``node_selector`` and ``tolerations``
    place the predictor's pods beyond what the accelerator selects (a dedicated node pool and its
    taint); they are written after the accelerator's own labels and tolerations.
    """

    model: Model
    resources: Resources = Resources()
    accelerator: Accelerator | None = None
    autoscaling: Autoscaling = Autoscaling()
    canary: Canary | None = None
    mode: Mode = "knative"
    service_account: str | None = None
    tuning: Tuning = Tuning()
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    tag_routing: bool = False
    predictor_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return self.model.name

    @model_validator(mode="after")
    def _check(self) -> ServingSpec:
        admission.check_name(
            self.model.name,
            mode=vocabulary.MODES[self.mode],
            canary_name=self.canary.name if self.canary else None,
            field="model.name",
        )
        admission.check_dns_label(self.namespace, field="namespace", what="a namespace")
        if self.service_account is not None:
            admission.check_dns_subdomain(
                self.service_account, field="service_account", what="a service account name"
            )
        if self.predictor_name is not None:
            admission.check_dns_label(
                self.predictor_name, field="predictor_name", what="a predictor name"
            )
        admission.check_metadata_keys(self.labels, field="labels")
        admission.check_metadata_keys(self.annotations, field="annotations")
        admission.check_reserved_annotations(self.annotations, field="annotations")
        self._check_placement()
        self._resolve_autoscaling()
        self._check_mode_rules()
        return self

    def _check_placement(self) -> None:
        admission.check_metadata_keys(self.node_selector, field="node_selector")
        gpu_labels = scheduling.accelerator_options(dict(self.node_selector), field="node_selector")
        if gpu_labels:
            raise SpecError(
                f"node_selector[{scheduling.ACCELERATOR_LABEL}]: GKE's GPU labels come from "
                "the accelerator; set accelerator (type, spot, sharing) instead",
                field=f"node_selector[{scheduling.ACCELERATOR_LABEL}]",
            )
        for i, toleration in enumerate(self.tolerations):
            unknown = sorted(set(toleration) - set(TOLERATION_FIELDS))
            if unknown:
                raise SpecError(
                    f"tolerations[{i}]: {unknown[0]!r} is not a field of a Kubernetes "
                    f"toleration; expected {', '.join(TOLERATION_FIELDS)}",
                    field=f"tolerations[{i}]",
                )

    def placed(
        self,
        *,
        resources: dict[str, Any] | None = None,
        node_selector: dict[str, str] | None = None,
        tolerations: list[dict[str, Any]] | None = None,
    ) -> ServingSpec:
        """This spec placed as a pod with these settings would be, in Kubernetes JSON.

        A GPU limit (``nvidia.com/gpu``, or a GKE accelerator name) becomes the accelerator,
        with the type, Spot and sharing from GKE's labels in the node selector; the other
        labels and the tolerations are added to ``node_selector`` and ``tolerations``. This is
        how a KFP task's accelerator, node selector and tolerations reach the InferenceService.
        """
        selector = dict(node_selector or {})
        gpu_type, count = scheduling.requested_gpus(resources, field="resources")
        options = scheduling.accelerator_options(selector, field="node_selector")
        update: dict[str, Any] = {}
        if count or options:
            if gpu_type is not None:
                options.setdefault("type", gpu_type)
            if "type" not in options:
                raise SpecError(
                    f"node_selector: the pod asks for {count} {vocabulary.GPU_RESOURCE} but "
                    f"selects no {scheduling.ACCELERATOR_LABEL}; add that node selector (e.g. "
                    "nvidia-l4) or set the accelerator type to the GKE name",
                    field="node_selector",
                )
            update["accelerator"] = Accelerator(count=count or 1, **options)
        if selector:
            update["node_selector"] = {**self.node_selector, **selector}
        added = [t for t in tolerations or [] if t not in self.tolerations]
        if added:
            update["tolerations"] = [*self.tolerations, *added]
        return self.replace(**update) if update else self

    def _resolve_autoscaling(self) -> None:
        scaling = self.autoscaling
        update: dict[str, Any] = {}
        if scaling.autoscaler_class is None:
            update["autoscaler_class"] = "kpa" if self.mode == "knative" else "hpa"
        knative_kpa = self.mode == "knative" and update.get(
            "autoscaler_class", scaling.autoscaler_class
        ) in ("kpa", None)
        if self.accelerator is not None and knative_kpa and scaling.min_replicas == 0:
            if scaling.progress_deadline is None:
                update["progress_deadline"] = GPU_PROGRESS_DEADLINE
            if scaling.scale_down_delay is None:
                update["scale_down_delay"] = GPU_SCALE_DOWN_DELAY
        if update:
            object.__setattr__(self, "autoscaling", scaling.model_copy(update=update))

    def _check_mode_rules(self) -> None:
        scaling = self.autoscaling
        mode = vocabulary.MODES[self.mode]
        assert scaling.autoscaler_class is not None
        admission.check_autoscaler_class(scaling.autoscaler_class, mode, field="mode")
        admission.check_scaling(
            mode=mode,
            autoscaler_class=scaling.autoscaler_class,
            min_replicas=scaling.min_replicas,
            scale_metric=scaling.scale_metric,
            scale_target=scaling.scale_target,
            fields=admission.SPEC_FIELDS,
        )
        knative_only = {
            "autoscaling.scale_down_delay": scaling.scale_down_delay,
            "autoscaling.initial_scale": scaling.initial_scale,
            "autoscaling.progress_deadline": scaling.progress_deadline,
            "tag_routing": self.tag_routing or None,
        }
        if self.mode == "standard":
            for where, value in knative_only.items():
                if value is not None:
                    raise SpecError(
                        f"{where}: is a Knative setting that KServe's Standard mode ignores; "
                        "drop it or use mode knative",
                        field=where,
                    )
            if self.predictor_name is None and self.canary is not None:
                raise SpecError(
                    "predictor_name: a Standard-mode canary needs the stable predictor named "
                    "(spec.predictor.name), so promoting can hand the name over; set "
                    "predictor_name",
                    field="predictor_name",
                )
        elif self.predictor_name is not None:
            raise SpecError(
                "predictor_name: only Standard mode names predictors (for spec.canary[]); "
                "drop it or use mode standard",
                field="predictor_name",
            )
        if self.canary is not None:
            self._check_canary(self.canary, scaling)
        if self.accelerator is not None:
            deadline = scaling.progress_deadline
            if (
                self.mode == "knative"
                and scaling.min_replicas == 0
                and deadline is not None
                and admission.parse_duration(deadline, field="autoscaling.progress_deadline")
                < MIN_GPU_PROGRESS_DEADLINE_SECONDS
            ):
                raise SpecError(
                    f"autoscaling.progress_deadline: {deadline} is too short for a GPU replica "
                    "that scales from zero (a node is created, the driver installed and the image "
                    f"pulled first); use at least {MIN_GPU_PROGRESS_DEADLINE_SECONDS}s",
                    field="autoscaling.progress_deadline",
                )
        elif self.tuning.gpu_memory_fraction is not None:
            raise SpecError(
                "tuning.gpu_memory_fraction: caps GPU memory, but no accelerator is set; add an "
                "accelerator or drop the fraction",
                field="tuning.gpu_memory_fraction",
            )

    def _check_canary(self, canary: Canary, scaling: Autoscaling) -> None:
        if self.mode == "knative":
            for where, value in (
                ("canary.name", canary.name),
                ("canary.storage_uri", canary.storage_uri),
                ("canary.min_replicas", canary.min_replicas),
            ):
                if value is not None:
                    raise SpecError(
                        f"{where}: in Knative mode the canary is the new revision of "
                        "model.storage_uri and takes only traffic_percent; drop it or use mode "
                        "standard",
                        field=where,
                    )
            return
        if canary.name is None or canary.storage_uri is None:
            where = "canary.name" if canary.name is None else "canary.storage_uri"
            raise SpecError(
                f"{where}: a Standard-mode canary runs beside the stable predictor and needs "
                "its own name and storage_uri",
                field=where,
            )
        if canary.name == self.predictor_name:
            raise SpecError(
                f"canary.name: {canary.name!r} is the stable predictor's name; give the canary "
                "another name",
                field="canary.name",
            )
        if canary.min_replicas is not None and canary.min_replicas > scaling.min_replicas:
            raise SpecError(
                f"canary.min_replicas: {canary.min_replicas} exceeds the stable predictor's "
                f"min_replicas {scaling.min_replicas}; lower it",
                field="canary.min_replicas",
            )

    def replace(self, **update: Any) -> ServingSpec:
        """A copy with some attributes changed, validated again."""
        data = self.model_dump()
        data.update(
            {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in update.items()}
        )
        return ServingSpec(**data)

    @classmethod
    def from_dict(cls, data: Any) -> ServingSpec:
        """A spec from plain data (parsed YAML or JSON), with SpecErrors for bad input."""
        if not isinstance(data, dict):
            raise SpecError(
                f"spec: expected a mapping of ServingSpec attributes, got {type(data).__name__}",
                field="spec",
            )
        return cls(**data)

    @classmethod
    def from_yaml(cls, source: str | Path) -> ServingSpec:
        """A spec from YAML text or a YAML file (``-f spec.yaml``)."""
        return cls.from_dict(load_yaml(source))

    def to_yaml(self) -> str:
        """The spec as YAML that ``from_yaml`` reads back, without defaults left unset."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        return yaml.safe_dump(data, sort_keys=False)


def load_yaml(source: str | Path) -> Any:
    """Parsed YAML from text or from a file path, with SpecErrors for unreadable input."""
    where = "spec"
    if isinstance(source, Path) or ("\n" not in source and Path(source).is_file()):
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"{path}: cannot read the spec file: {exc.strerror}") from exc
    else:
        text = str(source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML: {exc}; fix the syntax") from exc
