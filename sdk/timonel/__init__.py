"""Timonel: ship TensorFlow models from Kubeflow Pipelines to TensorFlow Serving on KServe and GKE.

This module is the whole public Python API. Everything else lives in modules that may change;
import from ``timonel`` only.
"""

from timonel._version import __version__
from timonel.admission import admit
from timonel.client import (
    AsyncClient,
    Client,
    ModelMetadata,
    ModelVersionStatus,
    Retry,
    SignatureDef,
    TensorInfo,
)
from timonel.errors import (
    ApiError,
    ModelError,
    ReleaseError,
    RolloutFailed,
    ServingError,
    SpecError,
    Status,
    StorageError,
    TimonelError,
    WaitTimeout,
)
from timonel.isvc import from_manifest, render
from timonel.kube.client import Cluster
from timonel.kube.rollout import (
    canary,
    delete,
    deploy,
    list_services,
    promote,
    rollback,
    status,
)
from timonel.kube.status import ServiceStatus, TrafficTarget
from timonel.manifest import Manifest
from timonel.packaging import (
    SavedModelInfo,
    discard_unpublished,
    inspect_model,
    package,
    publish,
)
from timonel.server import ServerOptions, serve
from timonel.spec import (
    Accelerator,
    Autoscaling,
    Canary,
    Model,
    ReleaseFacts,
    Resources,
    ServingSpec,
    Tuning,
)
from timonel.storage import Release, download_release, list_releases, read_manifest

__all__ = [
    "Accelerator",
    "ApiError",
    "AsyncClient",
    "Autoscaling",
    "Canary",
    "Client",
    "Cluster",
    "Manifest",
    "Model",
    "ModelError",
    "ModelMetadata",
    "ModelVersionStatus",
    "Release",
    "ReleaseError",
    "ReleaseFacts",
    "Resources",
    "Retry",
    "RolloutFailed",
    "SavedModelInfo",
    "ServerOptions",
    "ServiceStatus",
    "ServingError",
    "ServingSpec",
    "SignatureDef",
    "SpecError",
    "Status",
    "StorageError",
    "TensorInfo",
    "TimonelError",
    "TrafficTarget",
    "Tuning",
    "WaitTimeout",
    "__version__",
    "admit",
    "canary",
    "delete",
    "deploy",
    "discard_unpublished",
    "download_release",
    "from_manifest",
    "inspect_model",
    "list_releases",
    "list_services",
    "package",
    "promote",
    "publish",
    "read_manifest",
    "render",
    "rollback",
    "serve",
    "status",
]

# Reprs and docs show the public path (timonel.ServingSpec), not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = "timonel"
del _name, _obj
