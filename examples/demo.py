"""The main job on one machine: each step calls the public SDK and prints what it did."""

from __future__ import annotations

import timonel
from timonel.isvc import to_yaml

#: Where the demo's release would live on GCS; a packaged release's URI goes here.
DEMO_RELEASE = "gs://timonel-demo/digits/v1"


def package_release() -> None:
    """``timonel.package``: a small Keras model becomes release v1 in a model repository folder."""
    import tempfile

    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input((64,), name="pixels"), tf.keras.layers.Dense(10, activation="softmax")]
    )
    with tempfile.TemporaryDirectory() as tmp:
        repo = f"{tmp}/models"
        release = timonel.package(model, name="digits", repo=repo)
        manifest = release.manifest
        print(f"== package: {release.uri}")
        print(
            f"version {manifest.version}, TensorFlow {manifest.tensorflow_version}, "
            f"{manifest.size_bytes} bytes in {len(manifest.files)} files, "
            f"{manifest.warmup_records} warmup records"
        )
        for kind, tensors in (
            ("in", manifest.signature.inputs),
            ("out", manifest.signature.outputs),
        ):
            for alias, tensor in tensors.items():
                print(f"  {kind} {alias}: {tensor.dtype} {list(tensor.shape or [])}")
        published = timonel.list_releases(f"{repo}/digits")
        print("published releases:", [r.version for r in published])


def show_inference_service(storage_uri: str) -> None:
    """The KServe InferenceService that serves a release: scale-to-zero on a Spot L4."""
    spec = timonel.ServingSpec(
        model=timonel.Model(name="digits", storage_uri=storage_uri),
        accelerator=timonel.Accelerator("nvidia-l4", spot=True),
        autoscaling=timonel.Autoscaling(min_replicas=0, max_replicas=2),
    )
    print(f"== InferenceService for {storage_uri}")
    print(to_yaml(timonel.render(spec)))


def serve_locally() -> None:
    """``timonel serve`` on a SavedModel; one REST and one gRPC predict through timonel.Client."""
    import os
    import socket
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    import numpy as np
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 0.5 * x + 2.0}

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    with tempfile.TemporaryDirectory() as tmp:
        module = HalfPlusTwo()
        tf.saved_model.save(module, f"{tmp}/half/1", signatures={"serving_default": module.serve})
        grpc_port, rest_port = free_port(), free_port()
        command = [
            sys.executable, "-m", "timonel", "serve", f"--port={grpc_port}",
            f"--rest_api_port={rest_port}", "--model_name=half", f"--model_base_path={tmp}/half",
        ]  # fmt: skip
        print(f"== timonel serve (gRPC {grpc_port}, REST {rest_port})")
        log = Path(tmp) / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                command, stderr=out, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            )
        try:
            rest = timonel.Client(f"http://127.0.0.1:{rest_port}", timeout=5)
            deadline = time.monotonic() + 120
            while True:  # ports open once the model has loaded
                try:
                    if rest.model_status("half")[0].state == "AVAILABLE":
                        break
                except timonel.ServingError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"timonel serve did not start: {log.read_text()}")
                time.sleep(0.3)
            x = np.array([1.0, 2.0, 5.0], dtype=np.float32)
            print("REST predict:", rest.predict("half", x))
            with timonel.Client(f"grpc://127.0.0.1:{grpc_port}") as grpc_client:
                print("gRPC predict:", grpc_client.predict("half", x))
            rest.close()
        finally:
            server.terminate()
            print(f"timonel serve stopped with exit code {server.wait(30)}")


def main() -> None:
    print(f"timonel {timonel.__version__}")
    package_release()
    show_inference_service(DEMO_RELEASE)
    serve_locally()


if __name__ == "__main__":
    main()
