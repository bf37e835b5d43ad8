"""``timonel local``'s API server in a test, and kubeconfigs that point at it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from timonel.local.apiserver.runner import Running

TOKEN = secrets.token_hex(16)


def write_kubeconfig(
    path: Path, server: Running, *, token: str | None = TOKEN, namespace: str = "default"
) -> Path:
    """A kubeconfig for ``server``: its CA when it speaks HTTPS, and ``token`` unless None."""
    cluster: dict[str, Any] = {"server": server.url}
    if server.ca is not None:
        cluster["certificate-authority"] = str(server.ca)
    user = {"token": token} if token is not None else {}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "local",
                "clusters": [{"name": "local", "cluster": cluster}],
                "users": [{"name": "local", "user": user}],
                "contexts": [
                    {
                        "name": "local",
                        "context": {"cluster": "local", "user": "local", "namespace": namespace},
                    }
                ],
            }
        )
    )
    return path
