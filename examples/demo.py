"""The main job, end to end on one machine, through the public SDK.

Train a digits classifier, package two versions as pinned releases, show the InferenceService
that would serve one on GKE, then run the rollout on ``timonel local``: deploy v1, send 30% to v2
as a canary, promote it, roll back, and clean up. Every step prints what it did.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import timonel
from timonel.kserve.render import to_yaml

NAME = "digits"


def step(title: str) -> None:
    print(f"\n== {title}")


def train(epochs: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """A small Keras classifier on scikit-learn's digits (8x8 images, shipped with the package)."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((64,), name="pixels"),
            tf.keras.layers.Dense(32, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(x[1500:], y[1500:], verbose=0)
    print(f"trained {epochs} epoch(s): held-out accuracy {accuracy:.3f}")
    return model, x[1500:], y[1500:]


def package(model: Any, repo: str, version: int) -> timonel.Release:
    release = timonel.package(model, name=NAME, repo=repo, version=version)
    manifest = release.manifest
    print(
        f"{release.uri}: TensorFlow {manifest.tensorflow_version}, {manifest.size_bytes} bytes "
        f"in {len(manifest.files)} files, {manifest.warmup_records} warmup records"
    )
    return release


def show_gke_manifest(release: timonel.Release) -> None:
    """What GKE would run: scale-to-zero on a Spot L4, the model's URI moved to a bucket."""
    spec = timonel.ServingSpec(
        model=timonel.Model(name=NAME, storage_uri=f"gs://my-models/{NAME}/v1"),
        accelerator=timonel.Accelerator("nvidia-l4", spot=True),
        autoscaling=timonel.Autoscaling(min_replicas=0, max_replicas=4),
    )
    print(to_yaml(timonel.render(spec)), end="")


def endpoints(cluster: timonel.Cluster) -> dict[str, dict[str, str]]:
    """Each running revision's own server, as ``timonel local`` publishes it in the status."""
    from kubernetes import client

    isvc = client.CustomObjectsApi(cluster.api_client).get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", cluster.namespace, "inferenceservices", NAME
    )
    found: dict[str, dict[str, str]] = isvc["status"]["components"]["predictor"]["localEndpoints"]
    return found


def show(status: timonel.ServiceStatus) -> None:
    split = ", ".join(
        f"{t.revision} {t.percent}%" + (f" [{t.tag}]" if t.tag else "") for t in status.traffic
    )
    print(f"ready={status.ready} url={status.url} traffic: {split}")


def ask_each_revision(cluster: timonel.Cluster, x: np.ndarray, y: np.ndarray) -> None:
    """Predict the held-out digits on every serving revision, over REST and gRPC."""
    for revision, where in sorted(endpoints(cluster).items()):
        if "rest" not in where:
            continue
        with timonel.Client(where["rest"]) as rest:
            scores = next(iter(rest.predict(NAME, x).values()))
        with timonel.Client(f"grpc://{where['grpc']}") as grpc:
            same = next(iter(grpc.predict(NAME, x[:8]).values()))
        accuracy = float((scores.argmax(axis=1) == y).mean())
        agree = bool(np.allclose(same, scores[:8], atol=1e-6))
        print(f"{revision}: REST accuracy {accuracy:.3f}; gRPC agrees with REST: {agree}")


def main() -> None:
    print(f"timonel {timonel.__version__}")
    with tempfile.TemporaryDirectory(prefix="timonel-demo-") as tmp:
        repo = f"{tmp}/models"
        step("train two versions of a digits classifier")
        v1_model, x, y = train(epochs=1)
        v2_model, _, _ = train(epochs=20)

        step(f"package them as pinned releases in {repo}")
        v1 = package(v1_model, repo, 1)
        v2 = package(v2_model, repo, 2)
        print("published:", [r.version for r in timonel.list_releases(f"{repo}/{NAME}")])

        step("the InferenceService for GKE (scale-to-zero, Spot L4)")
        show_gke_manifest(v1)

        step("timonel local up: Kubernetes and KServe on this machine")
        from timonel import local

        home = local.Home(Path(tmp) / "local")
        running = local.up(home=home)
        print(f"API server {running.url}; kubeconfig {home.kubeconfig} (context {local.CONTEXT})")
        try:
            with timonel.Cluster.connect(kubeconfig=home.kubeconfig) as cluster:
                step("deploy v1 and wait until it is Ready")
                spec = timonel.ServingSpec(model=timonel.Model(name=NAME, storage_uri=v1.uri))
                show(timonel.deploy(spec, cluster=cluster, timeout=300))
                ask_each_revision(cluster, x, y)

                step("canary: 30% of the traffic to v2")
                show(timonel.canary(NAME, v2.uri, 30, cluster=cluster, timeout=300))
                ask_each_revision(cluster, x, y)

                step("promote v2 to all the traffic")
                show(timonel.promote(NAME, cluster=cluster, timeout=300))

                step("roll back to v1")
                show(timonel.rollback(NAME, cluster=cluster, timeout=300))
                ask_each_revision(cluster, x, y)

                step("delete")
                timonel.delete(NAME, cluster=cluster, wait=True, timeout=120)
                print(f"{NAME} deleted")
        finally:
            local.down(home=home)
            print("timonel local down")


if __name__ == "__main__":
    main()
