"""Failed REST replies become ``ServingError`` with the canonical code TF Serving would use.

TF Serving's REST API sends ``{"error": "<message>"}`` and an HTTP status derived from the
canonical code (``model_servers/http_server.cc``); reading the status back gives the code, so a
REST failure and the same gRPC failure raise the same ``ServingError(message, code=...)``.
Several codes share HTTP 400 and 500; those read back as INVALID_ARGUMENT and INTERNAL.
"""

from __future__ import annotations

import json

from timonel.errors import ServingError

#: HTTP status → canonical code, the inverse of TF Serving's ToHTTPStatusCode
HTTP_CODES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    # 502 comes from an ingress or proxy whose upstream is not there (yet): worth a retry
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def code_for_http_status(status: int) -> str:
    if status in HTTP_CODES:
        return HTTP_CODES[status]
    return "INVALID_ARGUMENT" if 400 <= status < 500 else "UNKNOWN"


def error_from_http(status: int, body: bytes, url: str) -> ServingError:
    """The ServingError for a non-2xx reply: the server's own message when it sent one."""
    code = code_for_http_status(status)
    try:
        message = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        message = None
    if not isinstance(message, str):
        text = body.decode(errors="replace").strip()[:200] or "no body"
        message = (
            f"HTTP {status} from {url} without a TF Serving error body ({text}); check that "
            "the URL points at a TF-Serving-compatible REST port"
        )
    return ServingError(message, code=code)
