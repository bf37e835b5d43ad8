"""``timonel local`` in a test: kubeconfigs for its API server, and controllers on it.

The fixtures ``local_api``, ``local_kubeconfig``, ``kube_client``, ``local_controller`` and
``serving_controller`` in ``conftest.py`` are built from these; tests that restart the API server
or the controller call them directly.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from timonel.local.apiserver import Running

#: The bearer token of every test API server.
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


@contextlib.contextmanager
def controller(kubeconfig: Path, state: Path, *, serve: bool = False) -> Iterator[Any]:
    """A started ``Controller`` on ``kubeconfig``'s cluster, stopped when the block ends.

    Revisions run the stand-in server (no TensorFlow, quick restarts), or with ``serve`` the real
    ``timonel serve`` (slower back-off, as a TensorFlow process starts in seconds).
    """
    from local.standin_server import standin_command

    from timonel.kube.client import Cluster
    from timonel.local.controller import Controller
    from timonel.local.supervisor import Backoff

    with Cluster.connect(kubeconfig=kubeconfig) as api:
        if serve:
            running = Controller(
                api, state, backoff=Backoff(initial=1.0, cap=5.0), watch_timeout=10
            )
        else:
            running = Controller(
                api,
                state,
                command=standin_command,
                backoff=Backoff(initial=0.1, cap=1.0),
                watch_timeout=5,
            )
        running.start()
        try:
            yield running
        finally:
            running.stop()
