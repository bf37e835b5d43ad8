"""The main job on one machine: each step calls the public SDK and prints what it did."""

from __future__ import annotations

import timonel
from timonel.isvc import to_yaml

#: Where the demo's release would live on GCS; a packaged release's URI goes here.
DEMO_RELEASE = "gs://timonel-demo/digits/v1"


def show_inference_service(storage_uri: str) -> None:
    """The KServe InferenceService that serves a release: scale-to-zero on a Spot L4."""
    spec = timonel.ServingSpec(
        model=timonel.Model(name="digits", storage_uri=storage_uri),
        accelerator=timonel.Accelerator("nvidia-l4", spot=True),
        autoscaling=timonel.Autoscaling(min_replicas=0, max_replicas=2),
    )
    print(f"== InferenceService for {storage_uri}")
    print(to_yaml(timonel.render(spec)))


def main() -> None:
    print(f"timonel {timonel.__version__}")
    show_inference_service(DEMO_RELEASE)


if __name__ == "__main__":
    main()
