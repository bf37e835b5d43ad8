"""How the local controllers write the objects they own: status writes and deletes that expect
someone else to have moved first.

A controller reconciles on a fresh read, so a status write that meets a newer object (409) only
asks for another pass, and one that meets a deleted object (404) is over: the DELETED event
follows. A delete of an object already gone is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from timonel.errors import ApiError
from timonel.kube.client import Cluster
from timonel.kube.requests import delete_object, replace_status
from timonel.kube.resources import Kind


def write_status(cluster: Cluster, obj: dict[str, Any], status: dict[str, Any]) -> bool:
    """Write ``status`` unless the object has it; True when it changed meanwhile (come back)."""
    if status == obj.get("status"):
        return False
    try:
        cluster.send(replace_status({**obj, "status": status}))
    except ApiError as exc:
        if exc.status.code == 409:
            return True
        if exc.status.code == 404:
            return False
        raise
    return False


def delete(cluster: Cluster, kind: Kind, obj: Mapping[str, Any]) -> None:
    """Delete the object; one already gone is no error."""
    metadata = obj["metadata"]
    try:
        cluster.send(delete_object(kind, metadata.get("namespace"), metadata["name"]))
    except ApiError as exc:
        if exc.status.code != 404:
            raise
