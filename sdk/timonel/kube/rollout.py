"""Deploy, canary, promote, roll back, inspect and delete InferenceServices on a cluster.

These are the functions the Python API, the CLI and the KFP components share. Each write is one
request whose body comes from the pure builders (``patches``, ``requests``); each wait watches
for the generation that write produced (``wait``).

* ``deploy`` is server-side apply: applying the same spec twice changes nothing (the generation
  stays, and the wait returns at once), and a changed spec updates only what changed.
* ``canary``, ``promote`` and ``rollback`` read the object, compute one merge patch from it, and
  send it conditioned on the resourceVersion they read; on 409 Conflict (someone else wrote in
  between) they read again and recompute, a bounded number of times.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from timonel.errors import ApiError
from timonel.kube import patches
from timonel.kube.client import Cluster
from timonel.kube.requests import (
    apply_object,
    delete_object,
    get_object,
    list_objects,
    merge_patch,
)
from timonel.kube.resources import INFERENCE_SERVICE, kind_of
from timonel.kube.status import ServiceStatus, read_status
from timonel.kube.wait import Verdict, wait_deleted, wait_ready

#: How many times a conditional update is recomputed on 409 before giving up.
CONFLICT_ATTEMPTS = 5

#: Default seconds to wait for readiness (a GPU node may take minutes to arrive on GKE).
DEFAULT_TIMEOUT = 600.0

Progress = Callable[[dict[str, Any] | None, Verdict], None]


def _connect(cluster: Cluster | None) -> Cluster:
    return cluster if cluster is not None else Cluster.connect()


def _read(cluster: Cluster, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        return cluster.send(get_object(INFERENCE_SERVICE, namespace, name))
    except ApiError as exc:
        if exc.status.code == 404 and exc.status.reason == "NotFound":
            return None
        raise


def _finish(
    cluster: Cluster,
    written: dict[str, Any],
    *,
    wait: bool,
    dry_run: bool,
    timeout: float,
    on_change: Progress | None,
) -> ServiceStatus:
    if wait and not dry_run:
        written = wait_ready(cluster, written, timeout=timeout, on_change=on_change)
    return read_status(written)


def deploy(
    manifest: dict[str, Any],
    *,
    cluster: Cluster | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    dry_run: bool = False,
    on_change: Progress | None = None,
) -> ServiceStatus:
    """Create or update an InferenceService from its manifest (``timonel.render`` makes one).

    ``dry_run`` asks the server to validate and default the change (admission included) without
    storing it. When the storage URI changes, the one served before is remembered so that
    ``rollback`` can return to it.
    """
    cluster = _connect(cluster)
    kind_of(manifest)  # refuses a manifest of a kind Timonel does not manage
    manifest = copy.deepcopy(manifest)
    metadata = manifest.setdefault("metadata", {})
    metadata.setdefault("namespace", cluster.namespace)
    current = _read(cluster, metadata["name"], metadata["namespace"])
    intent = patches.with_previous(manifest, current)
    written = cluster.send(apply_object(intent, dry_run=dry_run))
    return _finish(
        cluster, written, wait=wait, dry_run=dry_run, timeout=timeout, on_change=on_change
    )


def _update(
    cluster: Cluster,
    name: str,
    namespace: str,
    make_patch: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    dry_run: bool,
) -> dict[str, Any]:
    """Read, compute the patch, send it conditioned on what was read; on 409, again."""
    for _ in range(CONFLICT_ATTEMPTS):
        current = cluster.send(get_object(INFERENCE_SERVICE, namespace, name))
        request = merge_patch(
            INFERENCE_SERVICE, namespace, name, make_patch(current), dry_run=dry_run
        )
        try:
            return cluster.send(request)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
            conflict = exc
    raise ApiError(
        f"inferenceservice {namespace}/{name} kept changing while Timonel updated it "
        f"({CONFLICT_ATTEMPTS} conflicts in a row: {conflict.status.message}); another client "
        "is writing it: stop that one, or try again",
        status=conflict.status,
    )


def canary(
    name: str,
    storage_uri: str,
    percent: int,
    *,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    dry_run: bool = False,
    on_change: Progress | None = None,
) -> ServiceStatus:
    """Send ``percent`` of the traffic to the model at ``storage_uri`` (one update)."""
    patches.check_percent(percent)
    cluster = _connect(cluster)
    written = _update(
        cluster,
        name,
        namespace or cluster.namespace,
        lambda isvc: patches.canary_patch(isvc, storage_uri, percent),
        dry_run=dry_run,
    )
    return _finish(
        cluster, written, wait=wait, dry_run=dry_run, timeout=timeout, on_change=on_change
    )


def promote(
    name: str,
    *,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    dry_run: bool = False,
    on_change: Progress | None = None,
) -> ServiceStatus:
    """Give the canary all the traffic."""
    cluster = _connect(cluster)
    written = _update(
        cluster, name, namespace or cluster.namespace, patches.promote_patch, dry_run=dry_run
    )
    return _finish(
        cluster, written, wait=wait, dry_run=dry_run, timeout=timeout, on_change=on_change
    )


def rollback(
    name: str,
    *,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    dry_run: bool = False,
    on_change: Progress | None = None,
) -> ServiceStatus:
    """Send all traffic back to the previous model (the canary's percent to 0, or the release
    served before the last promotion or deploy)."""
    cluster = _connect(cluster)
    written = _update(
        cluster, name, namespace or cluster.namespace, patches.rollback_patch, dry_run=dry_run
    )
    return _finish(
        cluster, written, wait=wait, dry_run=dry_run, timeout=timeout, on_change=on_change
    )


def status(
    name: str, *, cluster: Cluster | None = None, namespace: str | None = None
) -> ServiceStatus:
    """Readiness, URL, revisions and traffic split of one InferenceService."""
    cluster = _connect(cluster)
    return read_status(
        cluster.send(get_object(INFERENCE_SERVICE, namespace or cluster.namespace, name))
    )


def list_services(
    *, cluster: Cluster | None = None, namespace: str | None = None
) -> list[ServiceStatus]:
    """Every InferenceService in the namespace, by name."""
    cluster = _connect(cluster)
    listed = cluster.send(list_objects(INFERENCE_SERVICE, namespace or cluster.namespace))
    return sorted((read_status(item) for item in listed.get("items") or []), key=lambda s: s.name)


def delete(
    name: str,
    *,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    wait: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    dry_run: bool = False,
) -> None:
    """Delete an InferenceService; with ``wait``, return once it is gone."""
    cluster = _connect(cluster)
    namespace = namespace or cluster.namespace
    cluster.send(delete_object(INFERENCE_SERVICE, namespace, name, dry_run=dry_run))
    if wait and not dry_run:
        wait_deleted(cluster, name, namespace=namespace, timeout=timeout)
