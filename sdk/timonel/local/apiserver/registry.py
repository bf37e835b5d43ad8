"""What each write does to an object, as kube-apiserver's generic registry does it for a CRD.

Independent of HTTP: the router parses the request and calls one method here. The rules mirrored:
the server owns uid, creationTimestamp, resourceVersion and generation; ``generation`` moves only
when something outside ``metadata`` changes; with the status subresource, writes to the object keep
the old status and writes to ``/status`` keep everything but the status; an update whose
resourceVersion is not the current one is a 409 Conflict; a no-op update writes nothing; an object
with finalizers is only marked for deletion; a new Pod starts Pending with its QoS class, as the
Pod strategy's PrepareForCreate sets it; ``dryRun`` runs every step except the write. A
deletion takes the object's dependents with it, or leaves them orphaned, as the garbage collector
does (``garbage``).
"""

from __future__ import annotations

import copy
import json
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

import yaml

from timonel.kube.resources import KINDS, NAMESPACE, POD, Kind, kind_of
from timonel.local.apiserver import fieldmanager, garbage, patches, statuses
from timonel.local.apiserver.qos import qos_class
from timonel.local.apiserver.selectors import Selector
from timonel.local.apiserver.statuses import FieldError
from timonel.local.apiserver.store import Store, resource_key

#: Checks an object before it is stored: (kind, new object, old object or None) → raises ApiError.
Validator = Callable[[Kind, dict[str, Any], dict[str, Any] | None], None]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
#: Namespaces kube-apiserver refuses to delete (its NamespaceLifecycle admission).
_UNDELETABLE_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
_SERVER_METADATA = ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields")


def _no_validation(kind: Kind, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    return None


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal apart from the bookkeeping a no-op write would touch."""
    strip = ("managedFields", "resourceVersion")
    return {**a, "metadata": _without(a["metadata"], *strip)} == {
        **b,
        "metadata": _without(b["metadata"], *strip),
    }


def _pod_qos_class(pod: dict[str, Any]) -> str:
    try:
        return qos_class(pod.get("spec") or {})
    except ValueError as exc:
        raise statuses.bad_request(
            'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
            "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        ) from exc


class Registry:
    """Create, read, update, patch, apply and delete objects of the served kinds."""

    def __init__(self, store: Store, *, validator: Validator = _no_validation) -> None:
        self.store = store
        self.validator = validator
        self.listeners: list[Callable[[], None]] = []

    # -- reads ---------------------------------------------------------------------------------

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(resource_key(kind), namespace, name)
        if obj is None:
            raise statuses.not_found(kind, name)
        return obj

    def list(
        self, kind: Kind, namespace: str | None, selector: Selector
    ) -> tuple[list[dict[str, Any]], int]:
        items, version = self.store.objects(resource_key(kind), namespace)
        return [obj for obj in items if selector(obj)], version

    # -- writes --------------------------------------------------------------------------------

    def create(
        self,
        kind: Kind,
        namespace: str,
        body: dict[str, Any],
        *,
        manager: str,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        obj = self._typed(kind, body)
        meta = obj.setdefault("metadata", {})
        self._check_namespace(kind, namespace, meta)
        if meta.get("resourceVersion"):
            raise statuses.error(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should not be set on objects to be "
                "created",
                {
                    "causes": [
                        {"message": "resourceVersion should not be set on objects to be created"}
                    ]
                },
            )
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(_GENERATE_ALPHABET, k=5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        self._check_name(kind, meta.get("name", ""))
        if self.store.get(resource_key(kind), namespace, meta["name"]) is not None:
            raise statuses.already_exists(kind, meta["name"])
        for key in (*_SERVER_METADATA, "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=fieldmanager.now())
        if kind.namespaced:
            meta["namespace"] = namespace
        if kind is NAMESPACE:
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        else:
            meta["generation"] = 1
            if kind.status_subresource:
                obj.pop("status", None)
            if kind is POD:
                obj["status"] = {"phase": "Pending", "qosClass": _pod_qos_class(obj)}
        self.validator(kind, obj, None)
        fieldmanager.record_update(None, obj, manager=manager, api_version=kind.api_version)
        if dry_run:
            return obj
        return self._write(kind, obj, "ADDED", None)

    def replace(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        manager: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        old = self.get(kind, namespace, name)
        new = self._typed(kind, body)
        meta = new.setdefault("metadata", {})
        self._check_namespace(kind, namespace, meta)
        if meta.get("name") != name:
            raise statuses.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the "
                f"URL ({name})"
            )
        if not meta.get("resourceVersion"):
            raise statuses.invalid(
                kind,
                name,
                [
                    FieldError(
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        return self._update(
            kind, old, new, manager=manager, subresource=subresource, dry_run=dry_run
        )

    def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        *,
        manager: str | None,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if content_type == patches.APPLY:
            return self._apply(
                kind,
                namespace,
                name,
                raw,
                manager=manager,
                force=force,
                subresource=subresource,
                dry_run=dry_run,
            )
        if content_type not in (patches.MERGE, patches.JSON_PATCH) and not (
            patches.built_in(kind) and content_type == patches.STRATEGIC
        ):
            raise statuses.unsupported_media_type(patches.CUSTOM_RESOURCE_PATCHES)
        try:
            operations = json.loads(raw or b"null")
        except ValueError as exc:
            raise statuses.bad_request(f"error decoding patch: {exc}") from exc
        old = self.get(kind, namespace, name)
        if content_type in (patches.MERGE, patches.STRATEGIC):
            if not isinstance(operations, dict):
                raise statuses.bad_request("a merge patch must be a JSON object")
            merge = patches.merge_patch if content_type == patches.MERGE else patches.strategic
            new = merge(old, operations)
        else:
            new = patches.json_patch(copy.deepcopy(old), operations)
        self._check_namespace(kind, namespace, new.setdefault("metadata", {}))
        if new["metadata"].get("name") != name:
            raise statuses.bad_request("the name of the object cannot be changed by a patch")
        return self._update(
            kind, old, new, manager=manager or "unknown", subresource=subresource, dry_run=dry_run
        )

    def delete(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        options: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete, or mark for deletion while finalizers remain.

        Returns the response body and whether the object is gone (False: finalizers remain).
        """
        obj = self.get(kind, namespace, name)
        meta = obj["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise statuses.conflict(
                kind,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                f"{meta['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise statuses.conflict(
                kind,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return obj, False
            marked = copy.deepcopy(obj)
            marked["metadata"].update(
                deletionTimestamp=fieldmanager.now(), deletionGracePeriodSeconds=0
            )
            return (marked if dry_run else self._write(kind, marked, "MODIFIED", obj)), False
        if not dry_run:
            self._deleted(kind, obj, obj, orphan=garbage.orphans(options))
        return statuses.success(kind, name, meta["uid"]), True

    def delete_namespace(
        self, name: str, options: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Delete a namespace and every object in it, as the namespace controller does.

        kube-apiserver marks the namespace Terminating and answers with it; the namespace
        controller then deletes its objects and, once none is left, the namespace. Here that
        happens before the answer; an object kept by a finalizer keeps the namespace Terminating.
        """
        obj = self.get(NAMESPACE, "", name)
        if name in _UNDELETABLE_NAMESPACES:
            raise statuses.error(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": "namespaces"},
            )
        terminating = copy.deepcopy(obj)
        terminating["metadata"].setdefault("deletionTimestamp", fieldmanager.now())
        terminating["status"] = {"phase": "Terminating"}
        if dry_run:
            return terminating
        if terminating != obj:
            terminating = self._write(NAMESPACE, terminating, "MODIFIED", obj)
        remaining = 0
        for kind in KINDS:
            if not kind.namespaced:
                continue
            items, _ = self.store.objects(resource_key(kind), name)
            for item in items:
                if self.store.get(resource_key(kind), name, item["metadata"]["name"]) is None:
                    continue  # collected with an owner deleted before it
                _, gone = self.delete(kind, name, item["metadata"]["name"], {})
                remaining += not gone
        if not remaining:
            self._deleted(NAMESPACE, terminating, terminating)
        return terminating

    # -- internals -----------------------------------------------------------------------------

    def _apply(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        raw: bytes,
        *,
        manager: str | None,
        force: bool,
        subresource: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        if not manager:
            raise statuses.error(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
                {
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        }
                    ],
                },
            )
        try:
            applied = yaml.safe_load(raw or b"")
        except yaml.YAMLError as exc:
            raise statuses.bad_request(f"error decoding YAML: {exc}") from exc
        if not isinstance(applied, dict):
            raise statuses.bad_request("the apply configuration must be an object")
        applied = self._typed(kind, applied)
        meta = applied.setdefault("metadata", {})
        self._check_namespace(kind, namespace, meta)
        if meta.get("name", name) != name:
            raise statuses.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        old = self.store.get(resource_key(kind), namespace, name)
        if old is None and subresource:
            raise statuses.not_found(kind, name)
        if old is not None and meta.get("resourceVersion") not in (
            None,
            "",
            old["metadata"]["resourceVersion"],
        ):
            raise statuses.conflict(kind, name, statuses.MODIFIED)
        new, conflicts = fieldmanager.apply(
            old,
            applied,
            manager=manager,
            api_version=kind.api_version,
            force=force,
            subresource=subresource,
        )
        if conflicts:
            raise statuses.apply_conflict(kind, name, conflicts)
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        if old is None:
            new["metadata"]["name"] = name
            managed = new["metadata"].pop("managedFields", None)
            created = self.create(kind, namespace, new, manager=manager, dry_run=True)
            created["metadata"]["managedFields"] = managed
            if dry_run:
                return created
            return self._write(kind, created, "ADDED", None)
        return self._update(kind, old, new, manager=None, subresource=subresource, dry_run=dry_run)

    def _update(
        self,
        kind: Kind,
        old: dict[str, Any],
        new: dict[str, Any],
        *,
        manager: str | None,
        subresource: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        """The tail shared by replace, patch and apply (``manager`` None: fields recorded)."""
        meta = new["metadata"]
        if (
            meta.get("resourceVersion", old["metadata"]["resourceVersion"])
            != old["metadata"]["resourceVersion"]
        ):
            raise statuses.conflict(kind, old["metadata"]["name"], statuses.MODIFIED)
        if subresource == "status":
            status = new.get("status")
            managed = meta.get("managedFields")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            if managed is not None:
                new["metadata"]["managedFields"] = managed
        else:
            if kind.status_subresource:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            for key in (
                "uid",
                "creationTimestamp",
                "generation",
                "namespace",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
            if manager is not None:
                meta["managedFields"] = old["metadata"].get("managedFields")
            if "generation" in meta and _without(new, "metadata", "status") != _without(
                old, "metadata", "status"
            ):
                meta["generation"] = old["metadata"]["generation"] + 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if manager is not None:
            fieldmanager.record_update(
                old, new, manager=manager, api_version=kind.api_version, subresource=subresource
            )
        if _same_content(new, old):
            return old
        if subresource is None:
            self.validator(kind, new, old)
        if dry_run:
            return new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._deleted(kind, new, old)
        return self._write(kind, new, "MODIFIED", old)

    def _deleted(
        self, kind: Kind, obj: dict[str, Any], old: dict[str, Any], *, orphan: bool = False
    ) -> dict[str, Any]:
        """Remove ``obj``, then delete or release its dependents as the garbage collector does."""
        gone = self._write(kind, obj, "DELETED", old)
        namespace = obj["metadata"].get("namespace") if kind.namespaced else None
        candidates = [
            (dependent_kind, item)
            for dependent_kind in garbage.kinds_owned_by(kind)
            for item in self.store.objects(resource_key(dependent_kind), namespace)[0]
        ]
        found = garbage.collect(obj, candidates, self._lookup, orphan=orphan)
        for dependent_kind, released in found.release:
            meta = released["metadata"]
            before = self.store.get(
                resource_key(dependent_kind), meta.get("namespace", ""), meta["name"]
            )
            self._write(dependent_kind, released, "MODIFIED", before)
        for dependent_kind, dependent in found.delete:
            meta = dependent["metadata"]
            if self.store.get(
                resource_key(dependent_kind), meta.get("namespace", ""), meta["name"]
            ):
                self.delete(dependent_kind, meta.get("namespace", ""), meta["name"], {})
        return gone

    def _lookup(
        self, api_version: str, kind_name: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        kind = kind_of({"apiVersion": api_version, "kind": kind_name})
        return self.store.get(resource_key(kind), namespace if kind.namespaced else "", name)

    def _write(
        self, kind: Kind, obj: dict[str, Any], event: str, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        if not obj["metadata"].get("managedFields"):
            obj["metadata"].pop("managedFields", None)
        stored = self.store.write(resource_key(kind), obj, type=event, previous=old)
        for listener in self.listeners:
            listener()
        return stored

    def _typed(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``body`` after checking it is this kind in this API version (else 400)."""
        if not isinstance(body, dict):
            raise statuses.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        api_version = obj.get("apiVersion") or kind.api_version
        if api_version != kind.api_version:
            raise statuses.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({kind.api_version})"
            )
        if obj.get("kind", kind.kind) != kind.kind:
            raise statuses.bad_request(
                f"the kind in the data ({obj['kind']}) does not match the expected kind "
                f"({kind.kind})"
            )
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise statuses.bad_request("metadata must be an object")
        return obj

    def _check_namespace(self, kind: Kind, namespace: str, meta: dict[str, Any]) -> None:
        if not kind.namespaced:
            return
        if meta.get("namespace", namespace) != namespace:
            raise statuses.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        if self.store.get(resource_key(NAMESPACE), "", namespace) is None:
            raise statuses.not_found(NAMESPACE, namespace)

    def _check_name(self, kind: Kind, name: str) -> None:
        if not name:
            raise statuses.invalid(
                kind,
                "",
                [
                    FieldError(
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                    )
                ],
            )
        if kind is NAMESPACE:
            pattern, what = _LABEL, "RFC 1123 label"
            example = "'my-name',  or '123-abc'"
            regex = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
            rule = (
                "must consist of lower case alphanumeric characters or '-', and must start and "
                "end with an alphanumeric character"
            )
        else:
            pattern, what = _SUBDOMAIN, "RFC 1123 subdomain"
            example = "'example.com'"
            regex = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
            rule = (
                "must consist of lower case alphanumeric characters, '-' or '.', and must start "
                "and end with an alphanumeric character"
            )
        if not pattern.match(name):
            raise statuses.invalid(
                kind,
                name,
                [
                    FieldError(
                        "metadata.name",
                        "FieldValueInvalid",
                        f'Invalid value: "{name}": a lowercase {what} {rule} (e.g. '
                        f"{example}, regex used for validation is '{regex}')",
                    )
                ],
            )

    def ensure_namespace(self, name: str) -> None:
        """Create a namespace if it does not exist (the server does this for ``default``)."""
        if self.store.get(resource_key(NAMESPACE), "", name) is None:
            self.create(NAMESPACE, "", {"metadata": {"name": name}}, manager="kube-apiserver")
