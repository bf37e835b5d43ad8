"""The kubeconfig that points clients at the local cluster: context ``timonel-local``.

Built as a plain dict (pure) and written with owner-only permissions, since it holds the bearer
token the API server requires. kubectl, the ``kubernetes`` client and KServeClient read it as they
read any kubeconfig.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

#: The name of the cluster, user and context in the kubeconfig.
CONTEXT = "timonel-local"


def render(
    server: str, token: str, *, ca_pem: bytes | None = None, namespace: str = "default"
) -> dict[str, Any]:
    """A kubeconfig with one context, ``timonel-local``, selected; ``ca_pem`` verifies HTTPS."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
    }


def write(path: Path, server: str, token: str, *, ca_pem: bytes | None = None) -> Path:
    """Write the kubeconfig to ``path`` (mode 0600), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(render(server, token, ca_pem=ca_pem), out, sort_keys=False)
    partial.replace(path)
    return path
