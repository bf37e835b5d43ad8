"""The steps every Timonel pipeline runs after it has a SavedModel: package, validate, then
render, deploy and smoke test, or roll the release out progressively. Called inside a
``@dsl.pipeline`` function, they add those tasks to it."""

from typing import Any

from timonel.kfp import components


def release_and_deploy(
    saved_model: Any,
    *,
    model_name: Any,
    repo: Any,
    canary_percent: Any,
    gpu_type: Any,
    gpu_count: Any,
    min_replicas: Any,
    max_replicas: Any,
    allow_breaking: Any,
    gateway: Any,
    smoke_instances: Any,
    gke_project: Any,
    gke_location: Any,
    gke_cluster: Any,
) -> Any:
    """Add the tasks; returns the deploy task (its outputs: endpoint, revision, ...).

    ``gke_*`` name the GKE cluster the steps that talk to Kubernetes reach with the task's
    Google credentials (Vertex AI Pipelines); empty, they use the pod's service account.
    """
    cluster = {"gke_project": gke_project, "gke_location": gke_location, "gke_cluster": gke_cluster}
    packaged, validated = _release(saved_model, model_name, repo, allow_breaking, cluster)
    rendered = components.render_inference_service(
        release=packaged.outputs["release"],
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        canary_percent=canary_percent,
    )
    rendered.set_display_name("Render the InferenceService")
    deployed = components.deploy_inference_service(
        manifest=rendered.outputs["manifest"], gateway=gateway, **cluster
    ).after(validated)
    deployed.set_display_name("Deploy and wait until Ready")
    deployed.set_caching_options(False)
    tested = components.smoke_test(
        model_name=model_name,
        rest_url=deployed.outputs["rest_url"],
        grpc_target=deployed.outputs["grpc_target"],
        host=deployed.outputs["host"],
        instances=smoke_instances,
    )
    tested.set_display_name("Smoke test over REST and gRPC")
    tested.set_caching_options(False)
    return deployed


def _release(
    saved_model: Any, model_name: Any, repo: Any, allow_breaking: Any, cluster: dict[str, Any]
) -> tuple[Any, Any]:
    """The package and validate tasks."""
    packaged = components.package_model(saved_model=saved_model, name=model_name, repo=repo)
    packaged.set_display_name("Package the release")
    validated = components.validate_model(
        release=packaged.outputs["release"], allow_breaking=allow_breaking, **cluster
    )
    validated.set_display_name("Validate against the deployed release")
    validated.set_caching_options(False)
    return packaged, validated


def release_and_roll_out(
    saved_model: Any,
    *,
    model_name: Any,
    repo: Any,
    allow_breaking: Any,
    steps: Any,
    interval: Any,
    shadow: Any,
    gateway: Any,
    gke_project: Any,
    gke_location: Any,
    gke_cluster: Any,
) -> Any:
    """Package and validate a new version, then roll it out progressively on the serving
    InferenceService; returns the rollout task (outputs: the outcome, metrics, the report)."""
    cluster = {"gke_project": gke_project, "gke_location": gke_location, "gke_cluster": gke_cluster}
    packaged, validated = _release(saved_model, model_name, repo, allow_breaking, cluster)
    rolled = components.progressive_rollout(
        name=model_name,
        release=packaged.outputs["release"],
        steps=steps,
        interval=interval,
        shadow=shadow,
        gateway=gateway,
        **cluster,
    ).after(validated)
    rolled.set_display_name("Progressive rollout")
    rolled.set_caching_options(False)
    return rolled
