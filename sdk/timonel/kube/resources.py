"""The Kubernetes kinds Timonel touches, in one registry keyed by group/version/kind/plural.

Paths, RBAC messages, watch requests, the local API server's routes, discovery documents, Status
errors and ``kubectl get`` columns are all derived from these entries, so a kind is described
once: adding a kind is one line here, not a new branch elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from timonel.errors import SpecError


@dataclass(frozen=True)
class PrinterColumn:
    """A ``kubectl get`` column, as a CRD's ``additionalPrinterColumns`` entry declares it."""

    name: str
    type: str  # string, integer, date
    json_path: str  # the simple JSONPath forms CRDs use: ``.a.b``, ``[?(@.k=='v')]``


#: The column every kind shows last when it declares none of its own.
AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


@dataclass(frozen=True)
class Kind:
    """One API resource: where it lives on the server, what RBAC calls it, how it is listed."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    #: What kubectl accepts besides the plural and singular (``isvc``).
    short_names: tuple[str, ...] = ()
    #: Whether ``/status`` is a subresource (then writes to the object keep its status).
    status_subresource: bool = False
    #: Discovery categories (``all``: included in ``kubectl get all``).
    categories: tuple[str, ...] = ()
    #: Columns after Name in ``kubectl get``, as the kind's CRD (or kube-apiserver) prints them.
    printer_columns: tuple[PrinterColumn, ...] = (AGE,)

    @property
    def api_version(self) -> str:
        """``serving.kserve.io/v1beta1``, or just ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """``inferenceservice``: the kind in lower case, as every built-in and CRD names it."""
        return self.kind.lower()

    @property
    def group_resource(self) -> str:
        """How RBAC rules and errors name it: ``inferenceservices.serving.kserve.io``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``InferenceService.serving.kserve.io``, as invalid-object errors name it."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def path(
        self, namespace: str | None = None, name: str | None = None, *, all_namespaces: bool = False
    ) -> str:
        """The collection path, or the object path when ``name`` is given.

        ``all_namespaces``: the collection across every namespace (``/apis/g/v/plural``), which
        list and watch accept for a namespaced kind, as a controller watching the cluster does.
        """
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and not (all_namespaces and name is None):
            if not namespace:
                raise SpecError(
                    f"{self.kind} is namespaced but no namespace was given; "
                    "pass a namespace or set one in the kubeconfig context",
                    field="metadata.namespace",
                )
            root = f"{root}/namespaces/{namespace}"
        collection = f"{root}/{self.plural}"
        return f"{collection}/{name}" if name else collection


INFERENCE_SERVICE = Kind(
    "serving.kserve.io",
    "v1beta1",
    "InferenceService",
    "inferenceservices",
    short_names=("isvc",),
    status_subresource=True,
    categories=("all",),
    # KServe's CRD additionalPrinterColumns, so `kubectl get isvc` reads as on a cluster.
    printer_columns=(
        PrinterColumn("URL", "string", ".status.url"),
        PrinterColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
        PrinterColumn(
            "Prev", "integer", ".status.components.predictor.traffic[?(@.tag=='prev')].percent"
        ),
        PrinterColumn(
            "Latest",
            "integer",
            ".status.components.predictor.traffic[?(@.latestRevision==true)].percent",
        ),
        PrinterColumn(
            "PrevRolledoutRevision",
            "string",
            ".status.components.predictor.traffic[?(@.tag=='prev')].revisionName",
        ),
        PrinterColumn(
            "LatestReadyRevision",
            "string",
            ".status.components.predictor.traffic[?(@.latestRevision==true)].revisionName",
        ),
        AGE,
    ),
)
SERVING_RUNTIME = Kind("serving.kserve.io", "v1alpha1", "ServingRuntime", "servingruntimes")
CLUSTER_SERVING_RUNTIME = Kind(
    "serving.kserve.io",
    "v1alpha1",
    "ClusterServingRuntime",
    "clusterservingruntimes",
    namespaced=False,
)
#: Knative's Service and Revision, as ``config/core/300-resources/{service,revision}.yaml`` in
#: knative/serving declare them (names, categories, printer columns; no Age column, which a CRD
#: gets only when it declares none).
KNATIVE_SERVICE = Kind(
    "serving.knative.dev",
    "v1",
    "Service",
    "services",
    short_names=("kservice", "ksvc"),
    status_subresource=True,
    categories=("all", "knative", "serving"),
    printer_columns=(
        PrinterColumn("URL", "string", ".status.url"),
        PrinterColumn("LatestCreated", "string", ".status.latestCreatedRevisionName"),
        PrinterColumn("LatestReady", "string", ".status.latestReadyRevisionName"),
        PrinterColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
        PrinterColumn("Reason", "string", ".status.conditions[?(@.type=='Ready')].reason"),
    ),
)
KNATIVE_REVISION = Kind(
    "serving.knative.dev",
    "v1",
    "Revision",
    "revisions",
    short_names=("rev",),
    status_subresource=True,
    categories=("all", "knative", "serving"),
    printer_columns=(
        PrinterColumn(
            "Config Name", "string", ".metadata.labels['serving\\.knative\\.dev/configuration']"
        ),
        PrinterColumn(
            "Generation",
            "string",
            ".metadata.labels['serving\\.knative\\.dev/configurationGeneration']",
        ),
        PrinterColumn("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
        PrinterColumn("Reason", "string", ".status.conditions[?(@.type=='Ready')].reason"),
        PrinterColumn("Actual Replicas", "integer", ".status.actualReplicas"),
        PrinterColumn("Desired Replicas", "integer", ".status.desiredReplicas"),
    ),
)
# ReplicaSets and Services print the columns kube-apiserver's table printer does, less those it
# computes (a Service's PORT(S)); a Deployment's are printed as printDeployment prints them
# (``timonel.local.apiserver.tables``).
DEPLOYMENT = Kind(
    "apps",
    "v1",
    "Deployment",
    "deployments",
    short_names=("deploy",),
    status_subresource=True,
    categories=("all",),
)
REPLICA_SET = Kind(
    "apps",
    "v1",
    "ReplicaSet",
    "replicasets",
    short_names=("rs",),
    status_subresource=True,
    categories=("all",),
    printer_columns=(
        PrinterColumn("Desired", "integer", ".spec.replicas"),
        PrinterColumn("Current", "integer", ".status.replicas"),
        PrinterColumn("Ready", "integer", ".status.readyReplicas"),
        AGE,
    ),
)
SERVICE = Kind(
    "",
    "v1",
    "Service",
    "services",
    short_names=("svc",),
    status_subresource=True,
    categories=("all",),
    printer_columns=(
        PrinterColumn("Type", "string", ".spec.type"),
        PrinterColumn("Cluster-IP", "string", ".spec.clusterIP"),
        AGE,
    ),
)
POD = Kind(
    "",
    "v1",
    "Pod",
    "pods",
    short_names=("po",),
    status_subresource=True,
    categories=("all",),
    # kubectl's columns are computed, as kube-apiserver's printPod does (local/apiserver/tables.py)
)
EVENT = Kind("", "v1", "Event", "events", short_names=("ev",))
#: kube-apiserver's DATA column counts ``data`` and ``binaryData``; the Table counts a mapping's
#: keys, and Timonel's ConfigMaps (the rollout record) hold no ``binaryData``.
CONFIG_MAP = Kind(
    "",
    "v1",
    "ConfigMap",
    "configmaps",
    short_names=("cm",),
    printer_columns=(PrinterColumn("Data", "integer", ".data"), AGE),
)
LEASE = Kind("coordination.k8s.io", "v1", "Lease", "leases")
NAMESPACE = Kind(
    "",
    "v1",
    "Namespace",
    "namespaces",
    namespaced=False,
    short_names=("ns",),
    printer_columns=(PrinterColumn("Status", "string", ".status.phase"), AGE),
)

#: ``kubectl auth can-i`` asks it; create-only, never stored.
SELF_SUBJECT_ACCESS_REVIEW = Kind(
    "authorization.k8s.io",
    "v1",
    "SelfSubjectAccessReview",
    "selfsubjectaccessreviews",
    namespaced=False,
)

KINDS: tuple[Kind, ...] = (
    INFERENCE_SERVICE,
    SERVING_RUNTIME,
    CLUSTER_SERVING_RUNTIME,
    KNATIVE_SERVICE,
    KNATIVE_REVISION,
    DEPLOYMENT,
    REPLICA_SET,
    SERVICE,
    POD,
    EVENT,
    CONFIG_MAP,
    LEASE,
    NAMESPACE,
    SELF_SUBJECT_ACCESS_REVIEW,
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
