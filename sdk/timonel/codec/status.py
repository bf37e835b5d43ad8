"""TF Serving's canonical status codes ⇄ the HTTP statuses of its REST API.

From ``model_servers/http_server.cc`` (ToHTTPStatusCode); gRPC carries the code unchanged. The
server answers with ``http_status``; the client reads a reply's status back with
``code_for_http_status``, so a REST failure and the same gRPC failure carry the same code.
"""

from __future__ import annotations

_HTTP = {
    "OK": 200,
    "CANCELLED": 499,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "DEADLINE_EXCEEDED": 504,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "UNAUTHENTICATED": 401,
}

#: HTTP status → canonical code: the inverse of ``_HTTP`` (where several codes share a status,
#: the first listed), plus what sits in front of a server: 413 from a body limit, 500 for
#: UNKNOWN/INTERNAL, 502 from an ingress or proxy whose upstream is not there (yet), which is
#: worth a retry.
HTTP_CODES: dict[int, str] = {
    **{status: code for code, status in reversed(_HTTP.items()) if code != "OK"},
    413: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
}


def http_status(code: str) -> int:
    """The HTTP status TF Serving answers for a status code (500 for UNKNOWN, INTERNAL, ...)."""
    return _HTTP.get(code, 500)


def code_for_http_status(status: int) -> str:
    """The canonical code a failed reply's HTTP status stands for."""
    if status in HTTP_CODES:
        return HTTP_CODES[status]
    return "INVALID_ARGUMENT" if 400 <= status < 500 else "UNKNOWN"
