"""Train a digits classifier, then package, validate, deploy (v1, or a canary of a new version)
and smoke test it, or roll a second version out progressively: the pipeline to upload in the
Kubeflow UI (``train_and_deploy.yaml``)."""

from kfp import dsl
from kfp.dsl import Metrics, Model, Output

from timonel.kfp.image import COMPONENT_IMAGE
from timonel.kfp.steps import release_and_deploy, release_and_roll_out

#: One 8x8 digit (a zero), scaled to 0..1 as in training: what the smoke test sends.
_ZERO_ROWS = (
    (0.0, 0.0, 0.3125, 0.8125, 0.5625, 0.0625, 0.0, 0.0),
    (0.0, 0.0, 0.8125, 0.9375, 0.625, 0.9375, 0.3125, 0.0),
    (0.0, 0.1875, 0.9375, 0.125, 0.0, 0.6875, 0.5, 0.0),
    (0.0, 0.25, 0.75, 0.0, 0.0, 0.5, 0.5, 0.0),
    (0.0, 0.3125, 0.5, 0.0, 0.0, 0.5625, 0.5, 0.0),
    (0.0, 0.25, 0.6875, 0.0, 0.0625, 0.75, 0.4375, 0.0),
    (0.0, 0.125, 0.875, 0.3125, 0.625, 0.75, 0.0, 0.0),
    (0.0, 0.0, 0.375, 0.8125, 0.625, 0.0, 0.0, 0.0),
)
SMOKE_INSTANCES = [[pixel for row in _ZERO_ROWS for pixel in row]]


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train_digits(
    model: Output[Model], metrics: Output[Metrics], epochs: int = 5, seed: int = 0
) -> None:
    """Train a small Keras classifier on scikit-learn's digits (8x8 images, shipped with the
    package) and export it as a SavedModel. TensorFlow uses the GPU when the task is given one."""
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    tf.keras.utils.set_random_seed(seed)
    classifier = tf.keras.Sequential(
        [
            tf.keras.Input((64,), name="pixels"),
            tf.keras.layers.Dense(32, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    classifier.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    classifier.fit(x[:1500], y[:1500], epochs=epochs, verbose=0)
    _, accuracy = classifier.evaluate(x[1500:], y[1500:], verbose=0)
    metrics.log_metric("accuracy", float(accuracy))
    metrics.log_metric("gpus", len(tf.config.list_physical_devices("GPU")))
    classifier.export(model.path, verbose=False)


@dsl.pipeline(
    name="timonel-train-and-deploy",
    description="Train a digits classifier, publish it as a pinned release, check it against "
    "the deployed one, serve it with KServe's TF Serving runtime (all traffic, or a canary), "
    "and smoke test it over REST and gRPC.",
)
def train_and_deploy(
    repo: str = "gs://my-models",
    model_name: str = "digits",
    epochs: int = 5,
    train_gpu: str = "",
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
    smoke_instances: list = SMOKE_INSTANCES,
    rollout_steps: str = "",
    rollout_interval: str = "60s",
    rollout_shadow: str = "0",
) -> None:
    """Train, release, validate, deploy and smoke test a digits classifier.

    Args:
        repo: Model repository the release is published in (gs://, s3:// or file://).
        model_name: Name of the model, its releases and its InferenceService.
        epochs: Training epochs.
        train_gpu: Accelerator for the training step (a Kubernetes resource such as
            nvidia.com/gpu); empty trains on the CPU.
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
        smoke_instances: Inputs the smoke test sends, rows of 64 pixels in 0..1.
        rollout_steps: Canary percentages, such as 10,50,100, to roll a second version out
            progressively (promoted or rolled back on its gates, with a report); empty deploys.
        rollout_interval: How long each rollout step is judged, such as 60s or 5m.
        rollout_shadow: How long the new version first gets mirrored traffic only; 0 skips it.
    """
    trained = train_digits(epochs=epochs)
    trained.set_display_name("Train on scikit-learn digits")
    trained.set_accelerator_type(train_gpu).set_accelerator_limit(1)
    cluster = {"gke_project": gke_project, "gke_location": gke_location, "gke_cluster": gke_cluster}
    with dsl.If(rollout_steps == "", "deploy"):
        release_and_deploy(
            trained.outputs["model"],
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
            **cluster,
        )
    with dsl.Else("roll out"):
        release_and_roll_out(
            trained.outputs["model"],
            model_name=model_name,
            repo=repo,
            allow_breaking=allow_breaking,
            steps=rollout_steps,
            interval=rollout_interval,
            shadow=rollout_shadow,
            gateway=gateway,
            **cluster,
        )
