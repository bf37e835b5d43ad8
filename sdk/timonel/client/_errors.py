"""Failed REST replies become ``ServingError`` with the canonical code TF Serving would use.

TF Serving's REST API sends ``{"error": "<message>"}`` and an HTTP status derived from the
canonical code; reading the status back (``timonel.codec.status``) gives the code, so a REST failure
and the same gRPC failure raise the same ``ServingError(message, code=...)``. Several codes share
HTTP 400 and 500; those read back as INVALID_ARGUMENT and INTERNAL.
"""

from __future__ import annotations

import json

from timonel.codec.status import code_for_http_status
from timonel.errors import ServingError


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
