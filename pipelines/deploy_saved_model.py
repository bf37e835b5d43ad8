"""Publish and deploy a SavedModel already in a bucket: package, validate, deploy, smoke test;
the pipeline to upload in the Kubeflow UI (``deploy_saved_model.yaml``)."""

from kfp import dsl
from kfp.dsl import Model

from timonel.kfp.steps import release_and_deploy


@dsl.pipeline(
    name="timonel-deploy-saved-model",
    description="Publish a SavedModel from a bucket as a pinned release, check it against the "
    "deployed one, serve it with KServe's TF Serving runtime (all traffic, or a canary), and "
    "smoke test it over REST and gRPC.",
)
def deploy_saved_model(
    saved_model_uri: str = "gs://my-bucket/exports/digits",
    smoke_instances: list = [[0.0] * 64],  # noqa: B006  # KFP reads the default from here
    repo: str = "gs://my-models",
    model_name: str = "digits",
    canary_percent: int = 0,
    gpu_type: str = "",
    gpu_count: int = 1,
    min_replicas: int = 1,
    max_replicas: int = 3,
    allow_breaking: bool = False,
    gateway: str = "",
    gke_project: str = "",
    gke_location: str = "",
    gke_cluster: str = "",
) -> None:
    """Release and deploy a SavedModel from a bucket.

    Args:
        saved_model_uri: Folder of the SavedModel (gs://, s3:// or a path the step can read).
        smoke_instances: Inputs the smoke test sends, as rows the model's input takes.
        repo: Model repository the release is published in (gs://, s3:// or file://).
        model_name: Name of the model, its releases and its InferenceService.
        canary_percent: Share of traffic for the new version: 0 gives it all; 1-99 starts a
            canary that keeps the rest on the serving version until promote or rollback.
        gpu_type: GKE accelerator for serving, such as nvidia-l4; empty serves on CPU.
        gpu_count: GPUs per serving replica when gpu_type is set.
        min_replicas: Fewest serving replicas; 0 scales to zero when idle.
        max_replicas: Most serving replicas.
        allow_breaking: Deploy even if the serving signature breaks today's clients.
        gateway: Ingress address to reach the endpoint through; empty uses its URL.
        gke_project: Project of the GKE cluster to deploy to by name (Vertex AI Pipelines);
            empty deploys with the pod's service account.
        gke_location: Region or zone of that GKE cluster.
        gke_cluster: Name of that GKE cluster.
    """
    imported = dsl.importer(artifact_uri=saved_model_uri, artifact_class=Model, reimport=False)
    imported.set_display_name("Import the SavedModel")
    release_and_deploy(
        imported.output,
        model_name=model_name,
        repo=repo,
        canary_percent=canary_percent,
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        allow_breaking=allow_breaking,
        gateway=gateway,
        smoke_instances=smoke_instances,
        gke_project=gke_project,
        gke_location=gke_location,
        gke_cluster=gke_cluster,
    )
