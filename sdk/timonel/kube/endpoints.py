"""Where a client reaches an InferenceService's model server, over REST and over gRPC.

On a cluster that is KServe's ``status.url`` through the ingress gateway, the Host header naming
the service (Knative routes REST and HTTP/2 gRPC on the same port). ``timonel local`` also
publishes each running revision's own loopback addresses in
``status.components.predictor.localEndpoints``; they are used when present, as they reach a
revision without an ingress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from timonel.errors import ServingError
from timonel.kube.client import Cluster
from timonel.kube.requests import get_object
from timonel.kube.resources import INFERENCE_SERVICE


@dataclass(frozen=True)
class Endpoint:
    """A model server's REST URL, its gRPC target (``host:port``) and the Host header, if any."""

    rest: str
    grpc: str
    host: str | None = None


def endpoint_of(
    isvc: dict[str, Any], *, revision: str | None = None, gateway: str | None = None
) -> Endpoint:
    """The endpoint of an InferenceService as read from the cluster (pure).

    ``revision`` picks one of ``timonel local``'s revisions (default: the latest created);
    ``gateway`` is the ingress address to send requests to when ``status.url`` does not resolve
    from where the client runs.
    """
    status = isvc.get("status") or {}
    predictor = (status.get("components") or {}).get("predictor") or {}
    local = predictor.get("localEndpoints") or {}
    chosen = revision or predictor.get("latestCreatedRevision")
    if chosen in local and "rest" in local[chosen]:
        return Endpoint(rest=local[chosen]["rest"], grpc=local[chosen]["grpc"])
    url = status.get("url")
    if not url:
        name = isvc.get("metadata", {}).get("name")
        raise ServingError(
            f"inferenceservice {name} has no URL yet; wait until it is Ready (`timonel status "
            f"{name}`)"
        )
    parts = urlsplit(gateway or url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = urlsplit(url).hostname if gateway else None
    return Endpoint(rest=gateway or url, grpc=f"{parts.hostname}:{port}", host=host)


def find_endpoint(
    name: str,
    *,
    cluster: Cluster,
    namespace: str | None = None,
    revision: str | None = None,
    gateway: str | None = None,
) -> Endpoint:
    """``endpoint_of`` the InferenceService ``name`` as it is now."""
    isvc = cluster.send(get_object(INFERENCE_SERVICE, namespace or cluster.namespace, name))
    return endpoint_of(isvc, revision=revision, gateway=gateway)
