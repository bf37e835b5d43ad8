"""KServe's words, defined once: the kind, annotation keys, deployment modes, storage schemes and
GPU resource names as KServe's own ``pkg/constants`` and webhooks spell them.

Everything that reads or writes an InferenceService (the renderer, admission, the waiter, the
local controller) takes these names from here, so a key spelled two ways cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceService"
#: The serving container KServe names in every predictor pod (``InferenceServiceContainerName``).
CONTAINER_NAME = "kserve-container"
#: The init container that copies the model in (``StorageInitializerContainerName``).
INITIALIZER_CONTAINER = "storage-initializer"
#: The labels on a predictor's pods: the InferenceService (``InferenceServicePodLabelKey``) and,
#: in Knative mode, the revision (Knative's ``serving.RevisionLabelKey``).
ISVC_LABEL = "serving.kserve.io/inferenceservice"
REVISION_LABEL = "serving.knative.dev/revision"
MODEL_FORMAT = "tensorflow"


def predictor_service_name(isvc: str, predictor: str | None = None) -> str:
    """KServe's ``PredictorServiceName``: the predictor's Knative Service, or in Standard mode its
    Deployment and Service, ``<isvc>-predictor`` or, for a named predictor (a canary, or a stable
    predictor that took a promoted canary's name), ``<isvc>-<name>-predictor``."""
    return f"{isvc}-{predictor}-predictor" if predictor else f"{isvc}-predictor"


# --- annotations --------------------------------------------------------------------------------
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
GKE_ACCELERATOR = "serving.kserve.io/gke-accelerator"
GPU_RESOURCE_TYPES = "serving.kserve.io/gpu-resource-types"
#: ``"true"`` stops the InferenceService: KServe deletes its workload and keeps its spec.
STOP = "serving.kserve.io/stop"
#: The storage URI KServe's controller puts on the workload's pod template, from which its pod
#: webhook adds the storage initializer (``StorageInitializerSourceUriInternalAnnotationKey``).
STORAGE_INITIALIZER_SOURCE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
KNATIVE_CLASS = "autoscaling.knative.dev/class"
KNATIVE_MIN_SCALE = "autoscaling.knative.dev/min-scale"
KNATIVE_MAX_SCALE = "autoscaling.knative.dev/max-scale"
KNATIVE_METRIC = "autoscaling.knative.dev/metric"
KNATIVE_TARGET = "autoscaling.knative.dev/target"
SCALE_DOWN_DELAY = "autoscaling.knative.dev/scale-down-delay"
INITIAL_SCALE = "autoscaling.knative.dev/initial-scale"
PROGRESS_DEADLINE = "serving.knative.dev/progress-deadline"
#: The TensorFlow version that exported the served model, recorded so admission can compare it
#: with the TF Serving image.
TENSORFLOW_VERSION = "timonel.dev/tensorflow-version"

#: Knative's autoscaler classes (the ``autoscaling.knative.dev/class`` values).
KPA_CLASS = "kpa.autoscaling.knative.dev"
HPA_CLASS = "hpa.autoscaling.knative.dev"
#: Standard mode's ``serving.kserve.io/autoscalerClass`` values.
AUTOSCALER_CLASSES = ("hpa", "external", "keda", "none")

# --- deployment modes ---------------------------------------------------------------------------
KNATIVE = "Knative"
STANDARD = "Standard"
#: ServingSpec's mode names → KServe's annotation values.
MODES: Mapping[str, str] = {"knative": KNATIVE, "standard": STANDARD}
#: Older names KServe's defaulter rewrites before validating.
LEGACY_MODES: Mapping[str, str] = {"Serverless": KNATIVE, "RawDeployment": STANDARD}


def resolve_mode(value: object) -> str | None:
    """``Knative`` or ``Standard`` for a deploymentMode value, old names included; else None."""
    if not isinstance(value, str):
        return None
    value = LEGACY_MODES.get(value, value)
    return value if value in (KNATIVE, STANDARD) else None


# --- storage and predictors ---------------------------------------------------------------------
#: Schemes KServe's storage initializer reads (``ValidateStorageURI``); a bare path is accepted too.
STORAGE_SCHEMES = (
    "gs",
    "s3",
    "pvc",
    "file",
    "https",
    "http",
    "hdfs",
    "webhdfs",
    "oci",
    "oci+native",
    "oci+fetch",
    "hf",
)
#: The predictor implementations KServe knows (exactly one per predictor).
IMPLEMENTATIONS = (
    "model",
    "tensorflow",
    "sklearn",
    "xgboost",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
)

# --- GPUs ---------------------------------------------------------------------------------------
GPU_RESOURCE = "nvidia.com/gpu"
#: GPU resource names KServe knows (``pkg/constants``); a limit on any of them means "GPU".
GPU_RESOURCES = (GPU_RESOURCE, "amd.com/gpu", "intel.com/gpu", "habana.ai/gaudi")
#: The TF Serving image tag suffix of its GPU build.
GPU_SUFFIX = "-gpu"
