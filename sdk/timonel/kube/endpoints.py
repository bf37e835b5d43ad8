"""Where a client reaches an InferenceService's model server, over REST and over gRPC.

The same way on a cluster and on ``timonel local``: KServe's ``status.url``
(``http://NAME.NAMESPACE.example.com``) names the InferenceService, and the ingress gateway routes
a request whose Host (or gRPC ``:authority``) is that name, REST and HTTP/2 gRPC on one port.
When the URL's name does not resolve from where the client runs (``example.com``, Knative's
default domain, never does), requests go to the gateway's address with the Host header set:

- ``timonel local``: the ingress of the local cluster whose API the kubeconfig names
  (``http://127.0.0.1:<--ingress-port>``, from the daemon's record);
- a cluster: the LoadBalancer address of ``istio-system/istio-ingressgateway``, as KServe's
  documentation finds it (``status.loadBalancer.ingress[0]``, the port named ``http2``);
- otherwise, or with another gateway (Kourier, Gateway API), pass ``gateway`` yourself; without
  one ``status.url`` is used as it is, which works once DNS resolves the cluster's domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from timonel.errors import ApiError, ServingError
from timonel.kube.client import Cluster
from timonel.kube.requests import get_object
from timonel.kube.resources import INFERENCE_SERVICE, SERVICE

#: The Service KServe's documentation reads the ingress address from (``INGRESS_HOST``).
INGRESS_GATEWAY = ("istio-system", "istio-ingressgateway")


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

    ``revision`` asks for the URL of that revision's traffic tag (Knative's ``prev-`` and
    ``latest-`` hosts) when it has one, else the InferenceService's own; ``gateway``
    (``http://HOST:PORT``) is the ingress address to send requests to, with the URL's host as
    the Host header.
    """
    status = isvc.get("status") or {}
    name = (isvc.get("metadata") or {}).get("name")
    url = status.get("url")
    if not url:
        raise ServingError(
            f"inferenceservice {name} has no URL yet; wait until it is Ready (`timonel status "
            f"{name}`)"
        )
    predictor = (status.get("components") or {}).get("predictor") or {}
    tagged = [
        target["url"]
        for target in predictor.get("traffic") or []
        if target.get("revisionName") == revision and target.get("url")
    ]
    if revision is not None and tagged:
        url = tagged[0]
    if not gateway:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return Endpoint(rest=url, grpc=f"{parts.hostname}:{port}")
    if "://" not in gateway:
        gateway = f"http://{gateway}"
    parts = urlsplit(gateway)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Endpoint(
        rest=f"{parts.scheme}://{parts.netloc}",
        grpc=f"{parts.hostname}:{port}",
        host=urlsplit(url).hostname,
    )


def find_gateway(cluster: Cluster) -> str | None:
    """The ingress gateway's address for this cluster (``http://HOST:PORT``); None if unknown."""
    from timonel.local.cluster import status as local_status

    local = local_status()
    if local.running and local.url == cluster.host and local.ingress_port:
        return f"http://127.0.0.1:{local.ingress_port}"
    try:
        service = cluster.send(get_object(SERVICE, *INGRESS_GATEWAY))
    except ApiError:
        return None  # no Istio gateway, or no right to read it
    return gateway_address(service)


def gateway_address(service: dict[str, Any]) -> str | None:
    """``http://HOST:PORT`` of a LoadBalancer Service: its first ingress and port ``http2``."""
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if not ingress:
        return None
    address = ingress[0].get("ip") or ingress[0].get("hostname")
    if not address:
        return None
    ports = (service.get("spec") or {}).get("ports") or []
    port = next((p.get("port") for p in ports if p.get("name") == "http2"), 80)
    return f"http://{address}:{port}"


def find_endpoint(
    name: str,
    *,
    cluster: Cluster,
    namespace: str | None = None,
    revision: str | None = None,
    gateway: str | None = None,
) -> Endpoint:
    """``endpoint_of`` the InferenceService ``name`` as it is now, through ``gateway`` or the
    one ``find_gateway`` discovers."""
    isvc = cluster.send(get_object(INFERENCE_SERVICE, namespace or cluster.namespace, name))
    return endpoint_of(isvc, revision=revision, gateway=gateway or find_gateway(cluster))
