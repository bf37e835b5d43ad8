"""The OpenAPI v3 documents kubectl reads before it writes: ``/openapi/v3``, one per group-version.

``kubectl apply -f`` and ``kubectl create -f`` validate what they send. They first look in the
group-version's document for the kind's PATCH operation: when it takes the ``fieldValidation``
query parameter, validation is left to the server (which runs the project's schema and KServe's
admission rules, see ``validation``); otherwise kubectl validates against the document's schema
itself, and with no document at all it refuses to send ("failed to download openapi").

Each document is built from the registry of kinds (paths, operations and their
``x-kubernetes-group-version-kind``, as kube-apiserver publishes them for a CRD) and, for the
InferenceService, from the schema the project writes (``timonel/schemas/inferenceservice.yaml``).
Kinds without a schema of ours are objects whose fields are all preserved. The server keeps fields
its schema does not list whatever ``fieldValidation`` asks, as it does for every write.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from timonel.kserve import schemas
from timonel.kube.resources import INFERENCE_SERVICE, Kind
from timonel.local.apiserver.discovery import KUBERNETES_VERSION, SERVED

_PREFIX = "/openapi/v3/"
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


def _schema_name(kind: Kind) -> str:
    """kube-apiserver's component name: ``io.kserve.serving.v1beta1.InferenceService``."""
    if not kind.group:
        return f"io.k8s.api.core.{kind.version}.{kind.kind}"
    return ".".join([*reversed(kind.group.split(".")), kind.version, kind.kind])


def _schema(kind: Kind) -> dict[str, Any]:
    gvk = [{"group": kind.group, "version": kind.version, "kind": kind.kind}]
    if kind is INFERENCE_SERVICE:
        body = dict(schemas.load("inferenceservice"))
    else:
        body = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {**body, "x-kubernetes-group-version-kind": gvk}


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": {"type": "string"}} for n in names]


def _operations(kind: Kind, *, item: bool, status: bool = False) -> dict[str, Any]:
    """The operations on a collection, an object, or its status, as kube-apiserver lists them."""
    ref = {"$ref": f"#/components/schemas/{_schema_name(kind)}"}
    gvk = {"group": kind.group, "version": kind.version, "kind": kind.kind}
    object_body = {"content": {"application/json": {"schema": ref}}}
    answer = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    writes = _query("dryRun", "fieldManager", "fieldValidation")
    suffix = "Status" if status else ""

    def operation(verb: str, action: str, **more: Any) -> dict[str, Any]:
        scope = "Namespaced" if kind.namespaced else ""
        return {
            "operationId": f"{verb}{scope}{kind.kind}{suffix}",
            "responses": answer,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            **more,
        }

    if not item:
        return {
            "get": operation("list", "list", parameters=_query("labelSelector", "watch")),
            "post": operation("create", "post", parameters=writes, requestBody=object_body),
        }
    patch_body = {"content": {t: {"schema": {"type": "object"}} for t in _PATCH_TYPES}}
    return {
        "get": operation("read", "get"),
        "put": operation("replace", "put", parameters=writes, requestBody=object_body),
        "patch": operation(
            "patch", "patch", parameters=[*writes, *_query("force")], requestBody=patch_body
        ),
        **({} if status else {"delete": operation("delete", "delete", parameters=writes)}),
    }


def _in_path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _paths(kind: Kind) -> dict[str, Any]:
    scope = [_in_path("namespace")] if kind.namespaced else []
    collection = kind.path("{namespace}") if kind.namespaced else kind.path()
    item = {**_operations(kind, item=True), "parameters": [_in_path("name"), *scope]}
    found = {
        collection: {**_operations(kind, item=False), "parameters": scope},
        f"{collection}/{{name}}": item,
    }
    if kind.status_subresource:
        found[f"{collection}/{{name}}/status"] = {
            **_operations(kind, item=True, status=True),
            "parameters": [_in_path("name"), *scope],
        }
    return found


def _served_path(kind: Kind) -> str:
    """``apis/serving.kserve.io/v1beta1`` or ``api/v1``: the key of its document in the root."""
    return f"apis/{kind.group}/{kind.version}" if kind.group else f"api/{kind.version}"


@functools.cache
def _documents() -> dict[str, bytes]:
    """Every group-version's document, encoded once."""
    found: dict[str, bytes] = {}
    for served in sorted({_served_path(k) for k in SERVED}):
        kinds = [k for k in SERVED if _served_path(k) == served]
        document = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
            "paths": {path: ops for kind in kinds for path, ops in _paths(kind).items()},
            "components": {"schemas": {_schema_name(kind): _schema(kind) for kind in kinds}},
        }
        found[served] = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return found


def root() -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document is, with a hash that changes with it."""
    return {
        "paths": {
            served: {
                "serverRelativeURL": f"{_PREFIX}{served}?hash="
                + hashlib.sha512(body).hexdigest().upper()
            }
            for served, body in _documents().items()
        }
    }


def group_version(path: str) -> bytes | None:
    """``/openapi/v3/apis/<group>/<version>`` (or ``/openapi/v3/api/v1``); None if not served."""
    return _documents().get(path.removeprefix(_PREFIX).strip("/"))
