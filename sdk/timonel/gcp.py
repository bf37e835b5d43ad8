"""Google Cloud at Timonel's edge: application default credentials and API refusals, once.

The GKE connection (``timonel.kube.gke_connect``) and the Vertex AI submission
(``timonel.kfp.vertex``) both act with the caller's Google credentials, found by google-auth the
way gcloud's client libraries find them (``GOOGLE_APPLICATION_CREDENTIALS``, then gcloud's
application default credentials, then the metadata server of a Vertex AI task or GKE pod). Their
failures, and the HTTP errors of Google's APIs, become ``ApiError`` here, with a message that says
what to run; the ``Status`` carries the HTTP code so callers can branch on it.
"""

from __future__ import annotations

from typing import Any

from timonel.errors import ApiError, Status

#: The OAuth scope Google's APIs (GKE, Vertex AI) and GKE's Kubernetes API accept.
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

_LOGIN = (
    "run `gcloud auth application-default login` (on a workstation) or point "
    "GOOGLE_APPLICATION_CREDENTIALS at a service account key; in a Vertex AI or GKE task the "
    "task's service account provides them"
)


def default_credentials() -> Any:
    """The application default credentials, scoped for Google's APIs."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError as exc:
        raise ApiError(
            f"no Google credentials found ({exc}); {_LOGIN}",
            status=Status(code=401, reason="Unauthenticated", message=str(exc)),
        ) from exc
    return credentials


def fresh_token(credentials: Any) -> str:
    """An access token from ``credentials``, refreshed first if it expired (or was never issued)."""
    from google.auth.exceptions import RefreshError, TransportError
    from google.auth.transport.requests import Request

    if not credentials.valid:
        try:
            credentials.refresh(Request())
        except RefreshError as exc:
            raise ApiError(
                f"the Google credentials could not be refreshed ({exc}); {_LOGIN}",
                status=Status(code=401, reason="Unauthenticated", message=str(exc)),
            ) from exc
        except TransportError as exc:
            raise ApiError(
                f"cannot reach Google's token service to refresh the credentials ({exc}); check "
                "the network and try again",
                status=Status(code=503, reason="ServiceUnavailable", message=str(exc)),
            ) from exc
    return str(credentials.token)


def refused(code: int, said: str, *, doing: str, forbidden: str, not_found: str) -> ApiError:
    """A Google API's HTTP error while ``doing`` something, as an ``ApiError`` that says the fix.

    ``forbidden`` names the role to grant on a 403, ``not_found`` what to check on a 404.
    """
    if code == 401:
        advice = _LOGIN
    elif code == 403:
        advice = forbidden
    elif code == 404:
        advice = not_found
    elif code == 429:
        advice = "a quota was exhausted: wait and try again, or ask for a higher quota"
    elif code >= 500:
        advice = "Google's service failed, not the request: try again"
    else:
        advice = "fix what it names and try again"
    return ApiError(
        f"cannot {doing}: Google answered {code} ({said}); {advice}",
        status=Status(code=code, reason=_REASONS.get(code, ""), message=said),
    )


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "AlreadyExists",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
