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
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, Unpack

from timonel.errors import ApiError
from timonel.kserve.render import render
from timonel.kube import patches
from timonel.kube.client import Cluster, cluster_or_default
from timonel.kube.requests import (
    apply_object,
    delete_object,
    get_object,
    list_objects,
    merge_patch,
)
from timonel.kube.resources import INFERENCE_SERVICE, kind_of
from timonel.kube.status import ServiceStatus, read_status
from timonel.kube.wait import Verdict, check_timeout, wait_deleted, wait_ready
from timonel.releases.facts import ReleaseFacts, apply_facts, read_facts
from timonel.releases.layout import split_release_uri
from timonel.spec import ServingSpec

#: How many times a conditional update is recomputed on 409 before giving up.
CONFLICT_ATTEMPTS = 5

#: Default seconds to wait for readiness (a GPU node may take minutes to arrive on GKE).
DEFAULT_TIMEOUT = 600.0

Progress = Callable[[dict[str, Any] | None, Verdict], None]


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
    before: dict[str, Any] | None,
    wait: bool,
    dry_run: bool,
    timeout: float,
    on_change: Progress | None,
) -> ServiceStatus:
    if wait and not dry_run:
        written = wait_ready(cluster, written, before=before, timeout=timeout, on_change=on_change)
    return read_status(written)


def check_release(
    spec: ServingSpec, *, read_release: Callable[[str], ReleaseFacts] = read_facts
) -> ServingSpec:
    """The spec once its release is checked, as ``timonel deploy`` checks it.

    A storage URI that is a release (``.../v<N>``) must be published (ReleaseError otherwise),
    and its manifest names the TensorFlow that exported the model: the spec takes it as
    ``model.tensorflow_version``, so a runtime version left out becomes one that can load the
    model, and one given is refused (SpecError) when it is older. A spec that already says its
    TensorFlow version, or whose URI is not a release, is returned unread.
    """
    uri = spec.model.storage_uri
    if spec.model.tensorflow_version is not None or split_release_uri(uri) is None:
        return spec
    return apply_facts(spec, read_release(uri))


def deploy(
    spec: ServingSpec | Mapping[str, Any],
    *,
    cluster: Cluster | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    dry_run: bool = False,
    on_change: Progress | None = None,
    canary_percent: int | None = None,
) -> ServiceStatus:
    """Create or update the InferenceService for a ServingSpec (or an already rendered manifest).

    ``canary_percent`` makes an update a canary (Knative mode): the new revision gets that share
    of the traffic and the one serving now keeps the rest, until ``promote`` or ``rollback``. A
    first deploy has nothing to share with and takes all the traffic.

    A ServingSpec's release is checked first (``check_release``: published, and a runtime that
    can load what its TensorFlow exported); give ``model.tensorflow_version`` to deploy without
    reading the release. A rendered manifest is applied as written.

    ``dry_run`` asks the server to validate and default the change (admission included) without
    storing it. When the storage URI changes, the one served before is remembered so that
    ``rollback`` can return to it. During a canary, a new storage URI replaces the canary's
    model (KServe keeps the percentage); promote or roll back first for a plain replacement.
    """
    check_timeout(timeout)
    if isinstance(spec, ServingSpec):
        manifest = render(check_release(spec))
    else:
        manifest = copy.deepcopy(dict(spec))
    kind_of(manifest)  # refuses a manifest of a kind Timonel does not manage
    with cluster_or_default(cluster) as session:
        metadata = manifest.setdefault("metadata", {})
        metadata.setdefault("namespace", session.namespace)
        current = _read(session, metadata["name"], metadata["namespace"])
        if canary_percent is not None and current is not None:
            manifest = patches.as_canary(manifest, canary_percent)
        intent = patches.with_previous(manifest, current)
        written = session.send(apply_object(intent, dry_run=dry_run))
        return _finish(
            session,
            written,
            before=current,
            wait=wait,
            dry_run=dry_run,
            timeout=timeout,
            on_change=on_change,
        )


def _update(
    cluster: Cluster,
    name: str,
    namespace: str,
    make_patch: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    dry_run: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read, compute the patch, send it conditioned on what was read; on 409, again.

    Returns the object as read before the write that succeeded, and as the write returned it.
    """
    for _ in range(CONFLICT_ATTEMPTS):
        current = cluster.send(get_object(INFERENCE_SERVICE, namespace, name))
        request = merge_patch(
            INFERENCE_SERVICE, namespace, name, make_patch(current), dry_run=dry_run
        )
        try:
            return current, cluster.send(request)
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


class ChangeOptions(TypedDict, total=False):
    """Keyword options of ``canary``, ``promote`` and ``rollback``.

    ``cluster`` (default: the kubeconfig's, connected for this call), ``namespace`` (default:
    the cluster's), ``wait`` for the change to be served (default True) up to ``timeout``
    seconds (above 0), ``dry_run`` (the server validates, nothing is stored), ``on_change``
    called with each observed state while waiting.
    """

    cluster: Cluster | None
    namespace: str | None
    wait: bool
    timeout: float
    dry_run: bool
    on_change: Progress | None


def canary(
    name: str,
    storage_uri: str,
    percent: int,
    *,
    tag_routing: bool = False,
    **options: Unpack[ChangeOptions],
) -> ServiceStatus:
    """Send ``percent`` of the traffic to the model at ``storage_uri``, in one update.

    With the storage URI of the canary already running, only the percentage moves (a step of a
    progressive rollout). ``tag_routing`` also turns on KServe's tag routing in that update.
    """
    patches.check_percent(percent)
    return _change(
        name,
        lambda isvc: patches.canary_patch(isvc, storage_uri, percent, tag_routing=tag_routing),
        **options,
    )


def promote(name: str, **options: Unpack[ChangeOptions]) -> ServiceStatus:
    """Give the canary all the traffic."""
    return _change(name, patches.promote_patch, **options)


def rollback(name: str, **options: Unpack[ChangeOptions]) -> ServiceStatus:
    """Send all traffic back to the previous model.

    During a canary the canary's share drops to 0 (instant: the old revision is still running);
    otherwise the release served before the last promotion or deploy is deployed again.
    """
    return _change(name, patches.rollback_patch, **options)


def _change(
    name: str,
    make_patch: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    cluster: Cluster | None = None,
    namespace: str | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    dry_run: bool = False,
    on_change: Progress | None = None,
) -> ServiceStatus:
    check_timeout(timeout)
    with cluster_or_default(cluster) as session:
        before, written = _update(
            session, name, namespace or session.namespace, make_patch, dry_run=dry_run
        )
        return _finish(
            session,
            written,
            before=before,
            wait=wait,
            dry_run=dry_run,
            timeout=timeout,
            on_change=on_change,
        )


def status(
    name: str, *, cluster: Cluster | None = None, namespace: str | None = None
) -> ServiceStatus:
    """Readiness, URL, revisions and traffic split of one InferenceService."""
    with cluster_or_default(cluster) as session:
        request = get_object(INFERENCE_SERVICE, namespace or session.namespace, name)
        return read_status(session.send(request))


def find_service(
    name: str, *, cluster: Cluster | None = None, namespace: str | None = None
) -> ServiceStatus | None:
    """Like ``status``, but None when no InferenceService has that name (a first deploy)."""
    with cluster_or_default(cluster) as session:
        found = _read(session, name, namespace or session.namespace)
    return None if found is None else read_status(found)


def list_services(
    *, cluster: Cluster | None = None, namespace: str | None = None
) -> list[ServiceStatus]:
    """Every InferenceService in the namespace, by name."""
    with cluster_or_default(cluster) as session:
        request = list_objects(INFERENCE_SERVICE, namespace or session.namespace)
        items = session.send(request).get("items") or []
    return sorted((read_status(item) for item in items), key=lambda s: s.name)


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
    check_timeout(timeout)
    with cluster_or_default(cluster) as session:
        namespace = namespace or session.namespace
        session.send(delete_object(INFERENCE_SERVICE, namespace, name, dry_run=dry_run))
        if wait and not dry_run:
            wait_deleted(session, name, namespace=namespace, timeout=timeout)
