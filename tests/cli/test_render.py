"""`timonel render` and `timonel gke plan`: manifest on stdout, notes on stderr, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from timonel import cli
from timonel.kserve.crd import Schema


@pytest.fixture(scope="module")
def crd(shared_dir: Path) -> Schema:
    return Schema.load_crd(shared_dir / "kserve" / "serving.kserve.io_inferenceservices.yaml")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_render_writes_a_manifest_the_crd_takes(
    capsys: pytest.CaptureFixture[str], crd: Schema
) -> None:
    code, out, err = run(
        capsys, "render", "digits", "--storage-uri", "gs://b/digits/v1", "-n", "models"
    )
    assert code == 0 and err == ""
    manifest = yaml.safe_load(out)
    assert crd.errors(manifest) == []
    assert manifest["metadata"] == {
        "name": "digits",
        "namespace": "models",
        "annotations": {
            "serving.kserve.io/deploymentMode": "Knative",
            "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        },
    }


def test_render_gpu_scale_to_zero_canary(capsys: pytest.CaptureFixture[str], crd: Schema) -> None:
    code, out, _ = run(
        capsys,
        "render",
        "digits",
        "--storage-uri=gs://b/digits/v2",
        "--gpu=nvidia-l4",
        "--spot",
        "--autopilot",
        "--min-replicas=0",
        "--max-replicas=3",
        "--canary-percent=10",
        "--tag-routing",
        "--enable-batching",
        "-o",
        "json",
    )
    assert code == 0
    manifest = json.loads(out)
    assert crd.errors(manifest) == []
    predictor = manifest["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["minReplicas"] == 0
    assert predictor["model"]["runtimeVersion"] == "2.20.0-gpu"
    assert predictor["model"]["args"] == ["--enable_batching=true"]
    assert predictor["nodeSelector"]["cloud.google.com/gke-accelerator-count"] == "1"


def test_render_standard_canary(capsys: pytest.CaptureFixture[str], crd: Schema) -> None:
    code, out, _ = run(
        capsys,
        *[
            "render",
            "digits",
            "--storage-uri",
            "gs://b/d/v1",
            "--mode",
            "standard",
            "--predictor-name",
            "v1",
        ],
        *["--canary-name", "v2", "--canary-storage-uri", "gs://b/d/v2", "--canary-percent", "20"],
        *["--min-replicas", "2", "--scale-metric", "cpu", "--scale-target", "60"],
    )
    assert code == 0
    manifest = yaml.safe_load(out)
    assert crd.errors(manifest) == []
    assert manifest["spec"]["canary"][0]["trafficPercent"] == 20
    assert manifest["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"


def test_gpu_auto_reads_the_release_and_explains_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    release = tmp_path / "digits" / "v1"
    release.mkdir(parents=True)
    (release / "timonel.json").write_text(
        json.dumps({"size_bytes": 3 * 10**9, "tensorflow_version": "2.21.0"})
    )
    code, out, err = run(capsys, "render", "digits", "--storage-uri", str(release), "--gpu", "auto")
    assert code == 0
    manifest = yaml.safe_load(out)
    assert manifest["spec"]["predictor"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4"
    }
    assert manifest["spec"]["predictor"]["model"]["runtimeVersion"] == "2.21.0-gpu"
    assert err.startswith("chose nvidia-tesla-t4 (NVIDIA T4, 16 GB): the model is 3.0 GB")


def test_a_spec_file_with_flag_overrides(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "model:\n  name: digits\n  storage_uri: gs://b/d/v1\nautoscaling:\n  max_replicas: 4\n"
    )
    code, out, _ = run(capsys, "render", "-f", str(path), "--min-replicas", "2")
    assert code == 0
    predictor = yaml.safe_load(out)["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["render", "digits", "--storage-uri", "gs://b/d", "--canary-percent", "150"],
            "error: --canary-percent: Input should be less than or "
            "equal to 100 (got 150); lower it",
        ),
        (
            [
                "render",
                "digits",
                "--storage-uri",
                "gs://b/d",
                "--gpu",
                "nvidia-l4",
                "--gpu-count",
                "3",
            ],
            "error: --gpu-count: GKE offers nvidia-l4 with 1, 2, 4, 8 GPUs per node, not 3",
        ),
        (
            [
                "render",
                "digits",
                "--storage-uri",
                "gs://b/d",
                "--mode",
                "standard",
                "--min-replicas",
                "0",
            ],
            "error: --min-replicas: the HPA autoscaler cannot scale to zero",
        ),
        (
            ["render", "digits", "--storage-uri", "gs://b/d", "--scale-metric", "cpu"],
            "error: --scale-metric: [cpu] is not a supported metric",
        ),
        (
            ["gke", "plan", "--cluster", "c", "--location", "l", "--gpu", "nvidia-a10"],
            "error: --gpu: 'nvidia-a10' is not a GPU type GKE offers",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == cli.EXIT_USER_ERROR
    assert out == ""
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_gke_plan_prints_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        *[
            "gke",
            "plan",
            "--cluster",
            "serve",
            "--location",
            "us-central1",
            "--gpu",
            "nvidia-l4",
            "--gpu-count",
            "2",
        ],
        *["--max-nodes", "5", "--spot", "--project", "acme"],
    )
    assert code == 0
    assert out.startswith("#!/bin/sh\n")
    assert "--accelerator=type=nvidia-l4,count=2,gpu-driver-version=default" in out
    assert "--num-nodes=0" in out and "--max-nodes=5" in out and "--spot" in out
    assert "--workload-pool=acme.svc.id.goog" in out
