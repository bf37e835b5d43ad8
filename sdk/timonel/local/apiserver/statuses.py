"""Kubernetes ``Status`` errors worded exactly as kube-apiserver words them.

Clients branch on ``code`` and ``reason`` and show ``message``; tools written against a real
cluster (kubectl, the ``kubernetes`` client, ``timonel.kube``) must see the same text here. Each
builder returns an :class:`~timonel.errors.ApiError`, which the HTTP layer turns into a Status body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timonel.errors import ApiError, Status
from timonel.kube.resources import Kind


def _details(kind: Kind, name: str, **extra: Any) -> dict[str, Any]:
    """A Status's ``details``: the object's name, group and (as the server spells it) plural."""
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.plural
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


def success(kind: Kind, name: str, uid: str) -> dict[str, Any]:
    """The body of a completed delete of a custom resource."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": _details(kind, name, uid=uid),
    }


def unauthorized() -> ApiError:
    return error(401, "Unauthorized", "Unauthorized")


def not_found(kind: Kind, name: str) -> ApiError:
    return error(404, "NotFound", f'{kind.group_resource} "{name}" not found', _details(kind, name))


def no_such_path() -> ApiError:
    return error(404, "NotFound", "the server could not find the requested resource")


def already_exists(kind: Kind, name: str) -> ApiError:
    return error(
        409,
        "AlreadyExists",
        f'{kind.group_resource} "{name}" already exists',
        _details(kind, name),
    )


def conflict(kind: Kind, name: str, why: str) -> ApiError:
    return error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.group_resource} "{name}": {why}',
        _details(kind, name),
    )


MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def apply_conflict(kind: Kind, name: str, conflicts: list[tuple[str, str, str]]) -> ApiError:
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
    return error(409, "Conflict", message, _details(kind, name, causes=causes))


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


def invalid(kind: Kind, name: str, errors: list[FieldError]) -> ApiError:
    """422: the object failed validation; one cause per field error."""
    listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    details: dict[str, Any] = {"name": name, "group": kind.group, "kind": kind.kind}
    details["causes"] = [e.cause() for e in errors]
    return error(422, "Invalid", f'{kind.group_kind} "{name}" is invalid: {listed}', details)


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
