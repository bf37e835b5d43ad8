"""The local cluster's Kubernetes API: InferenceServices and namespaces over HTTP, state in SQLite.

Just enough of kube-apiserver for Timonel, the ``kubernetes`` client, kubectl and KServeClient:
discovery, CRUD, patches, server-side apply, watches, the status subresource, dry run, bearer-token
auth and Kubernetes Status errors. Listens on 127.0.0.1 only.
"""

from timonel.local.apiserver.registry import Registry
from timonel.local.apiserver.runner import (
    DATABASE,
    Running,
    Served,
    open_registry,
    running,
    start,
)
from timonel.local.apiserver.store import Store

__all__ = [
    "DATABASE",
    "Registry",
    "Running",
    "Served",
    "Store",
    "open_registry",
    "running",
    "start",
]
