# mypy: disable-error-code="untyped-decorator,attr-defined,type-arg,arg-type"
# kfp ships no type information (its decorators are untyped), the bodies import ``timonel`` whose
# names mypy sees only through its lazy __getattr__, KFP reads a bare ``list`` as its List type,
# and a KFP input is a plain str that ServingSpec checks against its Literal (mode).
"""Timonel's KFP v2 components: typed Python functions over the public ``timonel`` API.

Each is a lightweight component on ``COMPONENT_IMAGE`` (which has Timonel and kfp installed): the
compiled spec carries the function's source and runs it there, so a body imports what it uses
and does nothing but call ``timonel``. Docstrings become the descriptions in the Kubeflow UI.

Steps that talk to Kubernetes take ``context`` and ``namespace``; left empty, a step in a pod
uses its service account (in-cluster) and a local run uses ``$KUBECONFIG``. They also take
``gke_project``, ``gke_location`` and ``gke_cluster``: given, the step reaches that GKE cluster by
name with the task's Google credentials, as a Vertex AI Pipelines task must
(``timonel.kfp.connection``).

A canary starts in one place: ``render_inference_service``'s ``canary_percent`` writes KServe's
``canaryTrafficPercent`` (and per-revision URLs) into the manifest, and
``deploy_inference_service`` applies the manifest as rendered; 0 replaces the serving model.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Model, Output

from timonel.kfp.image import COMPONENT_IMAGE

_PASSTHROUGHS = [
    dsl.TaskConfigField.RESOURCES,
    dsl.TaskConfigField.KUBERNETES_NODE_SELECTOR,
    dsl.TaskConfigField.KUBERNETES_TOLERATIONS,
]


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def package_model(
    saved_model: Input[Model],
    release: Output[Model],
    name: str,
    repo: str,
    version: int = 0,
) -> None:
    """Publish a SavedModel as a pinned, immutable release in a model repository.

    The release is ``<repo>/<name>/v<version>`` (version 0: the next free one); its warmup
    records are replayed on the model first. The output artifact's URI is the release, and its
    metadata holds the manifest's facts (version, TensorFlow, size, digest, warmup records).
    """
    import timonel

    published = timonel.package(
        saved_model.path, name=name, repo=repo, version=version or None, source=saved_model.uri
    )
    manifest = published.manifest
    release.uri = published.uri
    release.metadata.update(
        {
            "release_uri": published.uri,
            "name": manifest.name,
            "version": manifest.version,
            "tensorflow_version": manifest.tensorflow_version,
            "size_bytes": manifest.size_bytes,
            "content_sha256": manifest.content_sha256,
            "warmup_records": manifest.warmup_records,
            "signature_name": manifest.signature_name,
        }
    )


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def validate_model(
    release: Input[Model],
    metrics: Output[Metrics],
    summary: Output[Markdown],
    allow_breaking: bool = False,
    context: str = "",
    namespace: str = "",
    gke_project: str = "",
    gke_location: str = "",
    gke_cluster: str = "",
) -> None:
    """Check a release before it serves: it loads, its warmup runs, its signature fits.

    Downloads the release, loads it and replays its warmup records as TF Serving will, then
    compares its serving signature with the release deployed under the same name: a breaking
    change (an input added or removed, a dtype or incompatible shape changed) fails the step
    unless ``allow_breaking``.
    """
    import timonel
    from timonel.kfp.connection import connect

    manifest = timonel.read_manifest(release.uri)
    records = timonel.verify_release(release.uri)
    with connect(
        context=context,
        namespace=namespace,
        gke_project=gke_project,
        gke_location=gke_location,
        gke_cluster=gke_cluster,
    ) as cluster:
        served = timonel.find_service(manifest.name, cluster=cluster)
    served_uri = served.storage_uri if served is not None else None
    changes = timonel.release_changes(served_uri, release.uri) if served_uri else []
    breaking = [change for change in changes if change.breaking]
    metrics.log_metric("warmup_records", records)
    metrics.log_metric("size_bytes", manifest.size_bytes)
    metrics.log_metric("signature_changes", len(changes))
    metrics.log_metric("breaking_changes", len(breaking))
    lines = [
        f"# {manifest.name} v{manifest.version}",
        "",
        f"- release: `{release.uri}`",
        f"- TensorFlow {manifest.tensorflow_version}, {manifest.size_bytes} bytes",
        f"- warmup records replayed: {records}",
        f"- compared with: `{served_uri}`" if served_uri else "- nothing deployed yet",
        "",
        *(f"- {change}" for change in changes),
    ]
    with open(summary.path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    if breaking and not allow_breaking:
        raise timonel.ReleaseError(
            f"{release.uri} breaks the clients of {served_uri}: "
            + "; ".join(str(change) for change in breaking)
            + "; keep the signature, deploy it under another name, or set allow_breaking"
        )


@dsl.component(
    base_image=COMPONENT_IMAGE,
    install_kfp_package=False,
    task_config_passthroughs=_PASSTHROUGHS,
)
def render_inference_service(
    release: Input[Model],
    manifest: Output[Artifact],
    task_config: dsl.TaskConfig,
    gpu_type: str = "",
    gpu_count: int = 1,
    spot: bool = False,
    gpu_sharing: str = "",
    min_replicas: int = 1,
    max_replicas: int = 3,
    scale_target: int = 0,
    canary_percent: int = 0,
    mode: str = "knative",
    namespace: str = "default",
) -> None:
    """Write the KServe InferenceService (TF Serving runtime) that serves a release.

    ``gpu_type`` (a GKE accelerator such as nvidia-l4; empty for CPU) with ``gpu_count``,
    ``spot`` and ``gpu_sharing`` (time-sharing or mps) pick the GPU nodes; ``min_replicas`` 0
    scales to zero. ``canary_percent`` above 0 makes the release a canary: it gets that share of
    the traffic, the model serving now keeps the rest until promote or rollback (a first deploy
    takes all), and each revision gets its own URL; 0 gives the release all the traffic.

    The accelerator, node selector and tolerations set on this task (``set_accelerator_type``,
    kfp-kubernetes ``add_node_selector``/``add_toleration``) are passed on to the
    InferenceService, not applied to this step's pod. The output is the
    manifest as YAML, checked against KServe's admission rules.
    """
    import timonel

    facts = timonel.read_manifest(release.uri)
    accelerator = None
    if gpu_type:
        accelerator = timonel.Accelerator(
            gpu_type, count=gpu_count, spot=spot, sharing=gpu_sharing or None
        )
    spec = timonel.ServingSpec(
        model=timonel.Model(
            name=facts.name,
            storage_uri=release.uri,
            tensorflow_version=facts.tensorflow_version,
        ),
        accelerator=accelerator,
        autoscaling=timonel.Autoscaling(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            scale_target=scale_target or None,
        ),
        canary=timonel.Canary(traffic_percent=canary_percent) if canary_percent else None,
        tag_routing=canary_percent > 0,
        mode=mode,
        namespace=namespace,
    ).placed(
        resources=task_config.resources,
        node_selector=task_config.node_selector,
        tolerations=task_config.tolerations,
    )
    import yaml

    with open(manifest.path, "w", encoding="utf-8") as out:
        yaml.safe_dump(timonel.render(spec), out, sort_keys=False)
    manifest.metadata.update({"name": spec.name, "namespace": spec.namespace})


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def deploy_inference_service(
    manifest: Input[Artifact],
    timeout_seconds: float = 600.0,
    context: str = "",
    gateway: str = "",
    gke_project: str = "",
    gke_location: str = "",
    gke_cluster: str = "",
) -> NamedTuple(  # type: ignore[valid-type]  # KFP reads the outputs from this call
    "DeployOutputs", endpoint=str, revision=str, rest_url=str, grpc_target=str, host=str
):
    """Apply the InferenceService and wait until the generation this write made is Ready.

    The manifest is applied as rendered: a canary percent in it sends that share of the traffic
    to the new model and keeps the rest on the model serving now. Outputs KServe's endpoint URL,
    the new revision, and where clients reach that revision (through ``gateway``, the ingress
    address, when the URL does not resolve from the pipeline).
    """
    from collections import namedtuple

    import yaml

    import timonel
    from timonel.kfp.connection import connect

    with open(manifest.path, encoding="utf-8") as source:
        spec = timonel.from_manifest(yaml.safe_load(source))
    with connect(
        context=context,
        namespace=spec.namespace,
        gke_project=gke_project,
        gke_location=gke_location,
        gke_cluster=gke_cluster,
    ) as cluster:
        status = timonel.deploy(spec, cluster=cluster, timeout=timeout_seconds)
        where = timonel.find_endpoint(
            status.name,
            cluster=cluster,
            namespace=status.namespace,
            revision=status.latest_created_revision,
            gateway=gateway or None,
        )
    DeployOutputs = namedtuple("DeployOutputs", "endpoint revision rest_url grpc_target host")
    revision = status.latest_created_revision or ""
    return DeployOutputs(status.url or "", revision, where.rest, where.grpc, where.host or "")


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def promote(
    name: str,
    timeout_seconds: float = 600.0,
    context: str = "",
    namespace: str = "",
    gke_project: str = "",
    gke_location: str = "",
    gke_cluster: str = "",
) -> str:
    """Give the canary all the traffic; returns the revision that now serves it."""
    import timonel
    from timonel.kfp.connection import connect

    with connect(
        context=context,
        namespace=namespace,
        gke_project=gke_project,
        gke_location=gke_location,
        gke_cluster=gke_cluster,
    ) as cluster:
        status = timonel.promote(name, cluster=cluster, timeout=timeout_seconds)
    return status.latest_ready_revision or ""


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def rollback(
    name: str,
    timeout_seconds: float = 600.0,
    context: str = "",
    namespace: str = "",
    gke_project: str = "",
    gke_location: str = "",
    gke_cluster: str = "",
) -> str:
    """Send all traffic back to the previous model: at once during a canary (the old revision
    still runs), else by deploying the release served before again. Returns the storage URI
    that now serves."""
    import timonel
    from timonel.kfp.connection import connect

    with connect(
        context=context,
        namespace=namespace,
        gke_project=gke_project,
        gke_location=gke_location,
        gke_cluster=gke_cluster,
    ) as cluster:
        status = timonel.rollback(name, cluster=cluster, timeout=timeout_seconds)
    return status.storage_uri or ""


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def smoke_test(
    model_name: str,
    rest_url: str,
    grpc_target: str,
    instances: list,
    metrics: Output[Metrics],
    host: str = "",
) -> None:
    """Send ``instances`` to the served model over REST and over gRPC; fail unless both answer
    with the same outputs. Logs each protocol's latency."""
    import timonel

    report = timonel.smoke_test(
        model_name, instances, rest_url=rest_url, grpc_target=grpc_target, host=host or None
    )
    metrics.log_metric("rest_seconds", report.rest_seconds)
    metrics.log_metric("grpc_seconds", report.grpc_seconds)
    metrics.log_metric("instances", len(instances))


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def progressive_rollout(
    name: str,
    release: Input[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
    steps: str = "10,25,50,100",
    interval: str = "60s",
    shadow: str = "0",
    max_error_rate: float = 0.01,
    max_p99_latency_ms: float = 0.0,
    max_latency_ratio: float = 0.0,
    min_agreement: float = 0.99,
    min_requests: int = 20,
    probe_data: str = "",
    prometheus_url: str = "",
    gateway: str = "",
    timeout_seconds: float = 600.0,
    context: str = "",
    namespace: str = "",
    gke_project: str = "",
    gke_location: str = "",
    gke_cluster: str = "",
) -> str:
    """Roll the release out on InferenceService ``name`` step by step (``steps`` percent, each
    judged for ``interval``, after ``shadow`` of mirrored traffic), promoted when every gate
    passes, rolled back at the first that fails. Returns ``promoted`` or ``rolled-back``; the
    task succeeds either way, so that the report (an HTML artifact the Kubeflow UI shows) and
    the metrics reach the UI. Probes come from ``probe_data`` (a JSON file of predict bodies) or
    the release's warmup records; 0 leaves a latency limit unset (a 1.2 ratio when both are)."""
    import shutil
    import tempfile
    from pathlib import Path

    import timonel
    from timonel.kfp.connection import connect
    from timonel.rollouts.plan import plan_of
    from timonel.rollouts.report import report_metrics

    plan = plan_of(
        steps=steps,
        interval=interval,
        shadow=shadow,
        max_error_rate=max_error_rate,
        max_p99_latency_ms=max_p99_latency_ms or None,
        max_latency_ratio=max_latency_ratio or None,
        min_agreement=min_agreement,
        min_requests=min_requests,
    )
    with (
        tempfile.TemporaryDirectory(prefix="timonel-rollout-") as folder,
        connect(
            context=context,
            namespace=namespace,
            gke_project=gke_project,
            gke_location=gke_location,
            gke_cluster=gke_cluster,
        ) as cluster,
    ):
        result = timonel.rollout(
            name,
            release.uri,
            plan=plan,
            probe_data=probe_data or None,
            prometheus_url=prometheus_url or None,
            gateway=gateway or None,
            report_dir=folder,
            cluster=cluster,
            timeout=timeout_seconds,
            progress=print,
        )
        shutil.copyfile(Path(folder) / "report.html", report.path)
    for key, value in report_metrics(result).items():
        metrics.log_metric(key, value)
    print(f"{result.outcome}: {result.reason}")
    return result.outcome
