"""The Kubernetes kinds Timonel touches, in one registry keyed by group/version/kind/plural.

Paths, RBAC messages and watch requests are derived from these entries, so a kind is described
once: adding a kind is one line here, not a new branch elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from timonel.errors import SpecError


@dataclass(frozen=True)
class Kind:
    """One API resource: where it lives on the server and what RBAC calls it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``serving.kserve.io/v1beta1``, or just ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def rbac_resource(self) -> str:
        """How RBAC rules name it: ``inferenceservices.serving.kserve.io``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The collection path, or the object path when ``name`` is given."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise SpecError(
                    f"{self.kind} is namespaced but no namespace was given; "
                    "pass a namespace or set one in the kubeconfig context",
                    field="metadata.namespace",
                )
            root = f"{root}/namespaces/{namespace}"
        collection = f"{root}/{self.plural}"
        return f"{collection}/{name}" if name else collection


INFERENCE_SERVICE = Kind("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices")
SERVING_RUNTIME = Kind("serving.kserve.io", "v1alpha1", "ServingRuntime", "servingruntimes")
DEPLOYMENT = Kind("apps", "v1", "Deployment", "deployments")
SERVICE = Kind("", "v1", "Service", "services")
POD = Kind("", "v1", "Pod", "pods")
EVENT = Kind("", "v1", "Event", "events")
LEASE = Kind("coordination.k8s.io", "v1", "Lease", "leases")

KINDS: tuple[Kind, ...] = (
    INFERENCE_SERVICE,
    SERVING_RUNTIME,
    DEPLOYMENT,
    SERVICE,
    POD,
    EVENT,
    LEASE,
)

_BY_API_VERSION_KIND = {(k.api_version, k.kind): k for k in KINDS}


def kind_of(manifest: dict[str, object]) -> Kind:
    """The registered kind of a manifest, from its ``apiVersion`` and ``kind``."""
    key = (str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))
    try:
        return _BY_API_VERSION_KIND[key]
    except KeyError:
        known = ", ".join(f"{k.api_version} {k.kind}" for k in KINDS)
        raise SpecError(
            f"apiVersion {key[0]!r} kind {key[1]!r} is not a kind Timonel manages; "
            f"expected one of: {known}",
            field="kind",
        ) from None
