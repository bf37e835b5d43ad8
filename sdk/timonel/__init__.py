"""Timonel: ship TensorFlow models from Kubeflow Pipelines to TensorFlow Serving on KServe and GKE.

This module is the whole public Python API. Everything else lives in modules that may change;
import from ``timonel`` only.
"""

from timonel._version import __version__
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

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ModelError",
    "ModelMetadata",
    "ModelVersionStatus",
    "ReleaseError",
    "Retry",
    "RolloutFailed",
    "ServingError",
    "SignatureDef",
    "SpecError",
    "Status",
    "StorageError",
    "TensorInfo",
    "TimonelError",
    "WaitTimeout",
    "__version__",
]

# Reprs and docs show the public path (timonel.ServingSpec), not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = "timonel"
del _name, _obj
