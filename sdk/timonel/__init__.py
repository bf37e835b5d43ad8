"""Timonel: ship TensorFlow models from Kubeflow Pipelines to TensorFlow Serving on KServe and GKE.

This module is the whole public Python API. Everything else lives in modules that may change;
import from ``timonel`` only.

Names resolve on first use (PEP 562): rendering a manifest must not pay for numpy, httpx or the
Kubernetes client, and ``timonel deploy`` must start fast enough for its wait to stay under a
second. ``_EXPORTS`` is the one list of public names and where each lives.
"""

import importlib as _importlib
import inspect as _inspect
import typing as _typing
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
    "ClusterUnreachable": "timonel.errors",
    "Endpoint": "timonel.kube.endpoints",
    "EvidenceUnreachable": "timonel.errors",
    "LogLine": "timonel.kube.logs",
    "LogStream": "timonel.kube.logs",
    "Manifest": "timonel.releases.manifest",
    "Model": "timonel.spec",
    "ModelError": "timonel.errors",
    "ModelMetadata": "timonel.client",
    "ModelVersionStatus": "timonel.client",
    "Release": "timonel.releases.storage",
    "ReleaseError": "timonel.errors",
    "ReleaseFacts": "timonel.releases.facts",
    "Resources": "timonel.spec",
    "Retry": "timonel.client",
    "RolloutFailed": "timonel.errors",
    "SavedModelInfo": "timonel.releases.package",
    "ServerOptions": "timonel.server",
    "ServiceStatus": "timonel.kube.status",
    "ServingError": "timonel.errors",
    "ServingSpec": "timonel.spec",
    "SignatureChange": "timonel.releases.verify",
    "SmokeReport": "timonel.client.smoke",
    "SignatureDef": "timonel.signatures",
    "SpecError": "timonel.errors",
    "Status": "timonel.errors",
    "StorageError": "timonel.errors",
    "TensorInfo": "timonel.signatures",
    "TimonelError": "timonel.errors",
    "TrafficTarget": "timonel.kube.status",
    "Tuning": "timonel.spec",
    "WaitTimeout": "timonel.errors",
    "admit": "timonel.kserve.admission",
    "canary": "timonel.kube.rollout",
    "connect_gke": "timonel.kube.gke_connect",
    "delete": "timonel.kube.rollout",
    "deploy": "timonel.kube.rollout",
    "discard_unpublished": "timonel.releases.publish",
    "download_release": "timonel.releases.storage",
    "endpoint_of": "timonel.kube.endpoints",
    "find_endpoint": "timonel.kube.endpoints",
    "find_service": "timonel.kube.rollout",
    "from_manifest": "timonel.kserve.render",
    "inspect_model": "timonel.releases.package",
    "list_releases": "timonel.releases.storage",
    "list_services": "timonel.kube.rollout",
    "logs": "timonel.kube.logs",
    "package": "timonel.releases.package",
    "promote": "timonel.kube.rollout",
    "publish": "timonel.releases.publish",
    "read_manifest": "timonel.releases.storage",
    "release_changes": "timonel.releases.verify",
    "render": "timonel.kserve.render",
    "rollback": "timonel.kube.rollout",
    "rollout": "timonel.rollouts.run",
    "serve": "timonel.server",
    "signature_changes": "timonel.releases.verify",
    "smoke_test": "timonel.client.smoke",
    "status": "timonel.kube.rollout",
    "verify_release": "timonel.releases.verify",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'timonel' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    if isinstance(value, type):
        _resolve_annotations(value)
    if isinstance(value, type) or callable(value):
        # Reprs and docs show the public path (timonel.ServingSpec), not the private module.
        value.__module__ = "timonel"
    globals()[name] = value
    return value


def _resolve_annotations(cls: type) -> None:
    """Replace a class's string annotations by the objects they name, in its own module.

    ``typing.get_type_hints`` (which pydantic, KFP, typer and documentation tools call) looks the
    names of a class's string annotations up in the module ``__module__`` names; once that is
    ``timonel``, names such as ``Any`` or ``TrafficTarget`` are not there. Resolved first, the
    hints no longer depend on ``__module__``. Functions need nothing: their hints are looked up
    in their own globals.
    """
    own = _inspect.get_annotations(cls)
    if own:
        hints = _typing.get_type_hints(cls, include_extras=True)
        cls.__annotations__ = {name: hints[name] for name in own}


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if _TYPE_CHECKING:  # what type checkers and IDEs see; mirrors _EXPORTS
    from timonel.client import AsyncClient, Client, ModelMetadata, ModelVersionStatus, Retry
    from timonel.client.smoke import SmokeReport, smoke_test
    from timonel.errors import (
        ApiError,
        ClusterUnreachable,
        EvidenceUnreachable,
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
    from timonel.kserve.admission import admit
    from timonel.kserve.render import from_manifest, render
    from timonel.kube.client import Cluster
    from timonel.kube.endpoints import Endpoint, endpoint_of, find_endpoint
    from timonel.kube.gke_connect import connect_gke
    from timonel.kube.logs import LogLine, LogStream, logs
    from timonel.kube.rollout import (
        canary,
        delete,
        deploy,
        find_service,
        list_services,
        promote,
        rollback,
        status,
    )
    from timonel.kube.status import ServiceStatus, TrafficTarget
    from timonel.releases.facts import ReleaseFacts
    from timonel.releases.manifest import Manifest
    from timonel.releases.package import SavedModelInfo, inspect_model, package
    from timonel.releases.publish import discard_unpublished, publish
    from timonel.releases.storage import Release, download_release, list_releases, read_manifest
    from timonel.releases.verify import (
        SignatureChange,
        release_changes,
        signature_changes,
        verify_release,
    )
    from timonel.rollouts.run import rollout
    from timonel.server import ServerOptions, serve
    from timonel.signatures import SignatureDef, TensorInfo
    from timonel.spec import Accelerator, Autoscaling, Canary, Model, Resources, ServingSpec, Tuning
