"""Timonel: ship TensorFlow models from Kubeflow Pipelines to TensorFlow Serving on KServe and GKE.

This module is the whole public Python API. Everything else lives in modules that may change;
import from ``timonel`` only.

Names resolve on first use (PEP 562): rendering a manifest must not pay for numpy, httpx or the
Kubernetes client, and ``timonel deploy`` must start fast enough for its wait to stay under a
second. ``_EXPORTS`` is the one list of public names and where each lives.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from timonel._version import __version__

_EXPORTS: dict[str, str] = {
    "Accelerator": "timonel.spec",
    "ApiError": "timonel.errors",
    "AsyncClient": "timonel.client",
    "Autoscaling": "timonel.spec",
    "Canary": "timonel.spec",
    "Client": "timonel.client",
    "Cluster": "timonel.kube.client",
    "Manifest": "timonel.manifest",
    "Model": "timonel.spec",
    "ModelError": "timonel.errors",
    "ModelMetadata": "timonel.client",
    "ModelVersionStatus": "timonel.client",
    "Release": "timonel.storage",
    "ReleaseError": "timonel.errors",
    "ReleaseFacts": "timonel.spec",
    "Resources": "timonel.spec",
    "Retry": "timonel.client",
    "RolloutFailed": "timonel.errors",
    "SavedModelInfo": "timonel.packaging",
    "ServerOptions": "timonel.server",
    "ServiceStatus": "timonel.kube.status",
    "ServingError": "timonel.errors",
    "ServingSpec": "timonel.spec",
    "SignatureDef": "timonel.client",
    "SpecError": "timonel.errors",
    "Status": "timonel.errors",
    "StorageError": "timonel.errors",
    "TensorInfo": "timonel.client",
    "TimonelError": "timonel.errors",
    "TrafficTarget": "timonel.kube.status",
    "Tuning": "timonel.spec",
    "WaitTimeout": "timonel.errors",
    "admit": "timonel.admission",
    "canary": "timonel.kube.rollout",
    "delete": "timonel.kube.rollout",
    "deploy": "timonel.kube.rollout",
    "discard_unpublished": "timonel.packaging",
    "download_release": "timonel.storage",
    "from_manifest": "timonel.isvc",
    "inspect_model": "timonel.packaging",
    "list_releases": "timonel.storage",
    "list_services": "timonel.kube.rollout",
    "package": "timonel.packaging",
    "promote": "timonel.kube.rollout",
    "publish": "timonel.packaging",
    "read_manifest": "timonel.storage",
    "render": "timonel.isvc",
    "rollback": "timonel.kube.rollout",
    "serve": "timonel.server",
    "status": "timonel.kube.rollout",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'timonel' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    if isinstance(value, type) or callable(value):
        # Reprs and docs show the public path (timonel.ServingSpec), not the private module.
        value.__module__ = "timonel"
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if _TYPE_CHECKING:  # what type checkers and IDEs see; mirrors _EXPORTS
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
