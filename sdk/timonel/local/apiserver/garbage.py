"""Cascading deletion by owner references, as kube-controller-manager's garbage collector does it.

An object names its owners in ``metadata.ownerReferences``, each by kind, name and uid. When an
owner is deleted the collector looks at every dependent (``attemptToDeleteItem`` in
``pkg/controller/garbagecollector/garbagecollector.go``): a dependent none of whose owners is
left (an owner is there only if an object of that kind and name has the referenced uid) is deleted,
and its own dependents after it; a dependent another owner still holds keeps living, with the
reference to the deleted owner removed. With ``propagationPolicy: Orphan`` (or the older
``orphanDependents: true``) the dependents stay and lose that reference.

Where this differs: the real collector is a controller that acts moments after the deletion,
from its own graph of owners; here the registry collects as part of the delete, before it
answers, so no client sees a dependent whose owner is gone. ``Foreground`` deletion (the owner
waits, with the ``foregroundDeletion`` finalizer, until its blocking dependents are gone) ends in
the same objects and is collected as ``Background``; an object deleted with ``Orphan`` while
finalizers hold it has its dependents collected when it goes. An owner of a kind this server does
not serve counts as present, as the collector leaves dependents of owners it cannot resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from timonel.kube.resources import KINDS, Kind

#: Finds an object by (apiVersion, kind, namespace, name); None when there is none.
Lookup = Callable[[str, str, str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Collection:
    """What the collector does after an owner's deletion: dependents to delete, and dependents
    to keep with the deleted owner's reference removed (the new object)."""

    delete: tuple[tuple[Kind, dict[str, Any]], ...] = ()
    release: tuple[tuple[Kind, dict[str, Any]], ...] = ()


def orphans(options: Mapping[str, Any]) -> bool:
    """Whether a delete's options keep the dependents (``Orphan``, or ``orphanDependents``)."""
    policy = options.get("propagationPolicy")
    if policy:
        return bool(policy == "Orphan")
    return bool(options.get("orphanDependents"))


def kinds_owned_by(owner: Kind) -> tuple[Kind, ...]:
    """Where dependents may be: a namespaced owner's are in its namespace (Kubernetes refuses
    references across namespaces, and from cluster-scoped objects to namespaced owners)."""
    return tuple(kind for kind in KINDS if kind.namespaced or not owner.namespaced)


def collect(
    owner: Mapping[str, Any],
    candidates: Iterable[tuple[Kind, Mapping[str, Any]]],
    lookup: Lookup,
    *,
    orphan: bool = False,
) -> Collection:
    """The dependents of the deleted ``owner`` among ``candidates``, and what becomes of each."""
    uid = owner["metadata"]["uid"]
    delete: list[tuple[Kind, dict[str, Any]]] = []
    release: list[tuple[Kind, dict[str, Any]]] = []
    for kind, obj in candidates:
        meta = obj.get("metadata") or {}
        references = list(meta.get("ownerReferences") or [])
        kept = [ref for ref in references if ref.get("uid") != uid]
        if len(kept) == len(references):
            continue
        namespace = str(meta.get("namespace") or "")
        if orphan or any(_present(ref, namespace, lookup) for ref in kept):
            released = {**obj, "metadata": {**meta, "ownerReferences": kept}}
            if not kept:
                del released["metadata"]["ownerReferences"]
            release.append((kind, released))
        else:
            delete.append((kind, dict(obj)))
    return Collection(tuple(delete), tuple(release))


def _present(reference: Mapping[str, Any], namespace: str, lookup: Lookup) -> bool:
    api_version, kind = str(reference.get("apiVersion", "")), str(reference.get("kind", ""))
    if not any(k.api_version == api_version and k.kind == kind for k in KINDS):
        return True
    found = lookup(api_version, kind, namespace, str(reference.get("name", "")))
    return found is not None and found["metadata"].get("uid") == reference.get("uid")
