"""TF Serving's canonical status codes and the HTTP status each becomes on the REST API.

From ``model_servers/http_server.cc`` (ToHTTPStatusCode); gRPC carries the code unchanged.
"""

from __future__ import annotations

_HTTP = {
    "OK": 200,
    "CANCELLED": 499,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "DEADLINE_EXCEEDED": 504,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "UNAUTHENTICATED": 401,
}


def http_status(code: str) -> int:
    """The HTTP status TF Serving answers for a status code (500 for UNKNOWN, INTERNAL, ...)."""
    return _HTTP.get(code, 500)
