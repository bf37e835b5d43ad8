"""Kubernetes ``Status`` errors worded exactly as kube-apiserver words them.

Clients branch on ``code`` and ``reason`` and show ``message``; tools written against a real
cluster (kubectl, the ``kubernetes`` client, ``timonel.kube``) must see the same text here. Each
builder returns an :class:`~timonel.errors.ApiError`, which the HTTP layer turns into a Status body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timonel.errors import ApiError, Status


@dataclass(frozen=True)
class Resource:
    """What messages name: ``inferenceservices.serving.kserve.io``, ``InferenceService``."""

    group: str
    plural: str
    kind: str

    @property
    def qualified(self) -> str:
        """``plural.group``, or the bare plural for the core group (``namespaces``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Kind.group``, as invalid-object messages name it."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def details(self, name: str, **extra: Any) -> dict[str, Any]:
        details: dict[str, Any] = {"name": name}
        if self.group:
            details["group"] = self.group
        details["kind"] = self.plural
        details.update(extra)
        return details


def error(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    """An ApiError carrying a Status with these fields."""
    return ApiError(message, status=Status(code, reason, message, details or {}))


def to_body(status: Status) -> dict[str, Any]:
    """The JSON body of a failure Status, as the API server writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": status.message,
        "reason": status.reason,
    }
    if status.details:
        body["details"] = status.details
    body["code"] = status.code
    return body


def success(resource: Resource, name: str, uid: str) -> dict[str, Any]:
    """The body of a completed delete of a custom resource."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": resource.details(name, uid=uid),
    }


def unauthorized() -> ApiError:
    return error(401, "Unauthorized", "Unauthorized")


def not_found(resource: Resource, name: str) -> ApiError:
    return error(
        404, "NotFound", f'{resource.qualified} "{name}" not found', resource.details(name)
    )


def no_such_path() -> ApiError:
    return error(404, "NotFound", "the server could not find the requested resource")


def already_exists(resource: Resource, name: str) -> ApiError:
    return error(
        409,
        "AlreadyExists",
        f'{resource.qualified} "{name}" already exists',
        resource.details(name),
    )


def conflict(resource: Resource, name: str, why: str) -> ApiError:
    return error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": {why}',
        resource.details(name),
    )


MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def apply_conflict(
    resource: Resource, name: str, conflicts: list[tuple[str, str, str]]
) -> ApiError:
    """409 from server-side apply: ``conflicts`` are (manager, apiVersion, .dotted.field)."""
    lines = [f'conflict with "{m}" using {v}: {f}' for m, v, f in conflicts]
    if len(lines) == 1:
        message = f"Apply failed with 1 conflict: {lines[0]}"
    else:
        message = f"Apply failed with {len(lines)} conflicts: " + "\n".join(lines)
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}', "field": f}
        for m, v, f in conflicts
    ]
    return error(409, "Conflict", message, resource.details(name, causes=causes))


@dataclass(frozen=True)
class FieldError:
    """One field's failure, as ``k8s.io/apimachinery/pkg/util/validation/field.Error`` prints it."""

    field: str
    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    detail: str  # "Invalid value: -1: ...", "Required value", ...

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"

    def cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.detail, "field": self.field}


def invalid(resource: Resource, name: str, errors: list[FieldError]) -> ApiError:
    """422: the object failed validation; one cause per field error."""
    listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    details: dict[str, Any] = {"name": name, "group": resource.group, "kind": resource.kind}
    details["causes"] = [e.cause() for e in errors]
    return error(
        422, "Invalid", f'{resource.qualified_kind} "{name}" is invalid: {listed}', details
    )


def bad_request(message: str) -> ApiError:
    return error(400, "BadRequest", message)


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return error(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def method_not_allowed(method: str) -> ApiError:
    return error(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({method})",
    )


def expired(requested: int, oldest: int) -> ApiError:
    """410 for a watch that asks for history the server no longer keeps."""
    return error(410, "Expired", f"too old resource version: {requested} ({oldest})")


def too_large_resource_version(requested: int, current: int) -> ApiError:
    return error(
        504,
        "Timeout",
        f"Too large resource version: {requested}, current: {current}",
        {
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )
