"""``timonel local``: the slice of Kubernetes and KServe that Timonel drives, on one machine.

The API server (``timonel.local.apiserver``) stores InferenceServices; the controller
(``timonel.local.controller``) reconciles each one as KServe does, running one ``timonel serve``
process per revision. ``up()`` starts both in a background daemon and writes a kubeconfig with the
context ``timonel-local`` at ``kubeconfig_path()``; ``down()`` stops them; ``status()`` tells.
"""

from pathlib import Path

from timonel.local.cluster import LocalStatus, down, status, up
from timonel.local.home import Home
from timonel.local.kubeconfig import CONTEXT


def kubeconfig_path() -> Path:
    """The kubeconfig ``timonel local up`` writes (``$TIMONEL_LOCAL_HOME/kubeconfig``)."""
    return Home.default().kubeconfig


__all__ = ["CONTEXT", "Home", "LocalStatus", "down", "kubeconfig_path", "status", "up"]
