"""Kubernetes API requests as plain values: method, path, query, body, content type.

Building a request does no I/O, so every path, query and patch shape is tested without a server
and the same request runs against ``timonel local`` or a real cluster (``Cluster.send``).
Each request also carries the RBAC verb it needs, so a 403 can say exactly which permission is
missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from timonel.kube.resources import POD, Kind, kind_of

#: The field manager Timonel's writes are recorded under (``metadata.managedFields``).
FIELD_MANAGER = "timonel"

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Request:
    """One call to the Kubernetes API."""

    verb: str  # the RBAC verb: get, list, watch, create, update, patch, delete
    method: str
    kind: Kind
    namespace: str | None
    name: str | None
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    #: ``status`` or ``log``: a subresource, which RBAC names apart (``pods/log``).
    subresource: str | None = None

    @property
    def verbs(self) -> tuple[str, ...]:
        """The RBAC verbs kube-apiserver checks for this request: its own, and ``create`` for a
        server-side apply, which creates the object when it does not exist yet and is then
        authorized as ``create`` (``createAuthorizerAttributes`` in apiserver's
        ``endpoints/handlers/patch.go``)."""
        return (self.verb, "create") if self.content_type == APPLY_PATCH else (self.verb,)

    @property
    def resource(self) -> str:
        """What an RBAC rule names: ``inferenceservices``, ``inferenceservices/status``,
        ``pods/log``."""
        return f"{self.kind.plural}/{self.subresource}" if self.subresource else self.kind.plural

    @property
    def target(self) -> str:
        """``inferenceservice default/digits``, for messages."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.kind.lower()} {where}{self.name or '*'}"


def _write_query(*, dry_run: bool, field_manager: str | None) -> tuple[tuple[str, str], ...]:
    query: list[tuple[str, str]] = []
    if field_manager:
        query.append(("fieldManager", field_manager))
    if dry_run:
        query.append(("dryRun", "All"))
    return tuple(query)


def get_object(kind: Kind, namespace: str | None, name: str) -> Request:
    return Request("get", "GET", kind, namespace, name, kind.path(namespace, name))


def list_objects(
    kind: Kind,
    namespace: str | None,
    *,
    name: str | None = None,
    label_selector: str | None = None,
    all_namespaces: bool = False,
) -> Request:
    """List a collection; ``name`` narrows it to one object (a field selector), as watches do.

    ``all_namespaces`` lists a namespaced kind across the cluster (``namespace`` is then None).
    """
    query: list[tuple[str, str]] = []
    if name:
        query.append(("fieldSelector", f"metadata.name={name}"))
    if label_selector:
        query.append(("labelSelector", label_selector))
    path = kind.path(namespace, all_namespaces=all_namespaces)
    return Request("list", "GET", kind, namespace, name, path, query=tuple(query))


def watch_objects(
    kind: Kind,
    namespace: str | None,
    *,
    name: str | None = None,
    resource_version: str | None = None,
    timeout_seconds: int | None = None,
    all_namespaces: bool = False,
) -> Request:
    """A watch from ``resource_version`` on: the server streams one JSON event per line.

    Bookmarks are asked for so a quiet watch still advances its resourceVersion, which keeps a
    resumed watch inside the server's history window.
    """
    query: list[tuple[str, str]] = [("watch", "true"), ("allowWatchBookmarks", "true")]
    if name:
        query.append(("fieldSelector", f"metadata.name={name}"))
    if resource_version:
        query.append(("resourceVersion", resource_version))
    if timeout_seconds is not None:
        query.append(("timeoutSeconds", str(max(1, int(timeout_seconds)))))
    path = kind.path(namespace, all_namespaces=all_namespaces)
    return Request("watch", "GET", kind, namespace, name, path, query=tuple(query))


def read_log(
    namespace: str,
    pod: str,
    *,
    container: str,
    follow: bool = False,
    tail_lines: int | None = None,
    previous: bool = False,
) -> Request:
    """A container's log (``pods/NAME/log``), as ``kubectl logs`` asks for it: the text as it
    is, and with ``follow`` the lines written afterwards, until the container ends."""
    query: list[tuple[str, str]] = [("container", container)]
    if follow:
        query.append(("follow", "true"))
    if tail_lines is not None:
        query.append(("tailLines", str(tail_lines)))
    if previous:
        query.append(("previous", "true"))
    path = f"{POD.path(namespace, pod)}/log"
    return Request("get", "GET", POD, namespace, pod, path, query=tuple(query), subresource="log")


def create_object(
    manifest: dict[str, Any], *, dry_run: bool = False, field_manager: str = FIELD_MANAGER
) -> Request:
    kind = kind_of(manifest)
    namespace = manifest.get("metadata", {}).get("namespace")
    return Request(
        "create",
        "POST",
        kind,
        namespace,
        manifest.get("metadata", {}).get("name"),
        kind.path(namespace),
        query=_write_query(dry_run=dry_run, field_manager=field_manager),
        body=manifest,
    )


def apply_object(manifest: dict[str, Any], *, dry_run: bool = False, force: bool = True) -> Request:
    """Server-side apply: the server merges our intent and records which fields we own.

    ``force`` takes ownership of fields another manager set (``kubectl edit``, an earlier
    canary patch): a deploy states the whole intent, so it wins, as ``kubectl apply
    --server-side --force-conflicts`` does.
    """
    metadata = manifest.get("metadata", {})
    return _patch(
        kind_of(manifest),
        metadata.get("namespace"),
        metadata["name"],
        manifest,
        APPLY_PATCH,
        dry_run=dry_run,
        force=force,
    )


def merge_patch(
    kind: Kind, namespace: str | None, name: str, patch: dict[str, Any], *, dry_run: bool = False
) -> Request:
    """A JSON merge patch (RFC 7386): ``None`` removes a field; lists are replaced whole.

    Put ``metadata.resourceVersion`` in the patch to make it conditional: the server answers 409
    when the object changed since that version was read.
    """
    return _patch(kind, namespace, name, patch, MERGE_PATCH, dry_run=dry_run)


def json_patch(
    kind: Kind,
    namespace: str | None,
    name: str,
    operations: list[dict[str, Any]],
    *,
    dry_run: bool = False,
) -> Request:
    """A JSON patch (RFC 6902): a list of ``add``/``remove``/``replace``/``test`` operations."""
    return _patch(kind, namespace, name, operations, JSON_PATCH, dry_run=dry_run)


def _patch(
    kind: Kind,
    namespace: str | None,
    name: str,
    body: Any,
    content_type: str,
    *,
    dry_run: bool,
    force: bool = False,
) -> Request:
    query = _write_query(dry_run=dry_run, field_manager=FIELD_MANAGER)
    return Request(
        "patch",
        "PATCH",
        kind,
        namespace,
        name,
        kind.path(namespace, name),
        query=(*query, ("force", "true")) if force else query,
        body=body,
        content_type=content_type,
    )


def replace_object(
    manifest: dict[str, Any], *, dry_run: bool = False, field_manager: str = FIELD_MANAGER
) -> Request:
    """PUT the whole object; with ``metadata.resourceVersion`` set it fails with 409 if stale."""
    return _put(manifest, query=_write_query(dry_run=dry_run, field_manager=field_manager))


def replace_status(manifest: dict[str, Any], *, field_manager: str | None = None) -> Request:
    """PUT the object's ``status`` subresource, as a controller reports what it observed.

    The server keeps everything but ``status`` and answers 409 when ``metadata.resourceVersion``
    is stale, so a controller re-reads and reconciles again.
    """
    query = _write_query(dry_run=False, field_manager=field_manager)
    return _put(manifest, subresource="status", query=query)


def _put(
    manifest: dict[str, Any],
    *,
    subresource: str | None = None,
    query: tuple[tuple[str, str], ...] = (),
) -> Request:
    kind = kind_of(manifest)
    metadata = manifest.get("metadata", {})
    namespace, name = metadata.get("namespace"), metadata["name"]
    path = kind.path(namespace, name)
    return Request(
        "update",
        "PUT",
        kind,
        namespace,
        name,
        f"{path}/{subresource}" if subresource else path,
        query=query,
        body=manifest,
        subresource=subresource,
    )


def delete_object(
    kind: Kind,
    namespace: str | None,
    name: str,
    *,
    dry_run: bool = False,
    field_manager: str | None = None,
) -> Request:
    """Delete in the background: the API returns at once; dependents go afterwards."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Background",
    }
    if dry_run:
        body["dryRun"] = ["All"]
    return Request(
        "delete",
        "DELETE",
        kind,
        namespace,
        name,
        kind.path(namespace, name),
        query=_write_query(dry_run=dry_run, field_manager=field_manager),
        body=body,
    )
