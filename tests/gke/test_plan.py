"""The cluster plan: gcloud, helm and kubectl commands for a GKE cluster that serves."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from timonel.errors import SpecError
from timonel.gke.plan import plan_cluster
from timonel.spec import Accelerator

ROOT = Path(__file__).resolve().parents[2]


def test_plan_creates_a_gpu_pool_that_starts_at_zero_with_workload_identity() -> None:
    plan = plan_cluster(
        "serve",
        "us-central1",
        Accelerator("nvidia-l4", count=2, spot=True),
        project="acme",
        max_nodes=4,
    )
    text = plan.render()
    assert "gcloud container clusters create serve" in text
    assert "--workload-pool=acme.svc.id.goog" in text
    assert "gcloud container node-pools create gpu-l4" in text
    assert "--machine-type=g2-standard-24" in text
    assert "--accelerator=type=nvidia-l4,count=2,gpu-driver-version=default" in text
    assert "--num-nodes=0" in text and "--min-nodes=0" in text and "--max-nodes=4" in text
    assert "--workload-metadata=GKE_METADATA" in text
    assert "--spot" in text
    assert "helm install kserve oci://ghcr.io/kserve/charts/kserve" in text
    assert "timonel kserve manifests runtime | kubectl apply -f -" in text
    assert "GPU quota must cover max nodes x GPUs per node (8)" in text


def test_plan_writes_sharing_and_mig_into_the_accelerator_flag() -> None:
    shared = plan_cluster(
        "c", "us-east1", Accelerator("nvidia-tesla-t4", sharing="mps", max_shared_clients=4)
    ).render()
    assert "gpu-sharing-strategy=mps,max-shared-clients-per-gpu=4" in shared
    mig = plan_cluster(
        "c", "us-east1", Accelerator("nvidia-a100-80gb", mig_partition="2g.20gb")
    ).render()
    assert "gpu-partition-size=2g.20gb" in mig
    assert "--machine-type=a2-ultragpu-1g" in mig


def test_plan_for_autopilot_needs_no_node_pool() -> None:
    text = plan_cluster("auto", "europe-west4", Accelerator("nvidia-l4", autopilot=True)).render()
    assert "gcloud container clusters create-auto auto" in text
    assert "node-pools" not in text


def test_plan_refuses_inverted_node_bounds() -> None:
    with pytest.raises(SpecError, match="expected 0 <= min <= max and max >= 1"):
        plan_cluster("c", "us-east1", Accelerator("nvidia-l4"), min_nodes=3, max_nodes=1)


@pytest.mark.parametrize(
    ("cluster", "location", "message"),
    [
        ("C_1", "us-east1", "--cluster 'C_1': GKE cluster names are lower case letters"),
        ("c" * 41, "us-east1", "have at most 40 characters"),
        ("serve", "nowhere", "--location 'nowhere': expected a region such as us-central1"),
    ],
)
def test_plan_refuses_names_gke_refuses(cluster: str, location: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        plan_cluster(cluster, location, Accelerator("nvidia-l4"))


def test_plan_installs_what_knative_mode_runs_on_before_kserve() -> None:
    text = plan_cluster("serve", "us-central1-a", Accelerator("nvidia-l4")).render()
    order = [
        "helm install cert-manager",
        "helm install knative-operator",
        "kind: KnativeServing",
        "kubectl wait --for=condition=Ready knativeserving/knative-serving",
        "helm install kserve-crd",
        "--set kserve.controller.deploymentMode=Knative",
        "timonel kserve manifests runtime | kubectl apply -f -",
        "kubectl create namespace models --dry-run=client -o yaml",
        "timonel kserve manifests rbac --namespace models | kubectl apply -f -",
    ]
    positions = [text.index(step) for step in order]
    assert positions == sorted(positions)


def test_every_file_the_plan_applies_comes_from_the_installed_package() -> None:
    text = plan_cluster("serve", "us-central1", Accelerator("nvidia-l4")).render()
    assert "checkout" not in text
    assert "kubectl apply -f -" in text
    assert re.search(r"kubectl apply -f (?!- )(?!-$)", text, re.MULTILINE) is None


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv with timonel's wheel and its base dependencies only."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools leaves its build/ folder in the tree it builds.
    source = root / "source"
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "sdk", source / "sdk", ignore=junk)
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "--quiet", "-w", str(root), str(source)], check=True, timeout=120)
    (wheel,) = root.glob("timonel-*.whl")
    # The venv gets no pip of its own: this pip installs into it (--python), which saves the
    # venv's own pip install and installs exactly what a user's `pip install timonel` would.
    venv.create(root / "venv", with_pip=False)
    bin_dir = root / "venv" / "bin"
    install = [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install"]
    install += ["--quiet", "--no-compile", str(wheel)]
    subprocess.run(install, check=True, env=quiet, timeout=300)
    return bin_dir


def run_installed(bin_dir: Path, command: str) -> str:
    args = shlex.split(command)
    assert args[0] == "timonel", command
    result = subprocess.run(
        [str(bin_dir / "timonel"), *args[1:]], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_every_timonel_command_the_plan_prints_works_from_a_pip_install(installed: Path) -> None:
    found = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import importlib.util as u; print(u.find_spec('tensorflow'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "None"  # the base install: no TensorFlow
    plan = run_installed(
        installed, "timonel gke plan --cluster serve --location us-central1 --gpu nvidia-l4"
    )
    commands = [line.split(" | ")[0] for line in plan.splitlines() if line.startswith("timonel ")]
    printed = {command: run_installed(installed, command) for command in commands}
    kinds = {
        command: [document["kind"] for document in yaml.safe_load_all(text)]
        for command, text in printed.items()
    }
    assert kinds == {
        "timonel kserve manifests runtime": ["ClusterServingRuntime"],
        "timonel kserve manifests rbac --namespace models": ["Role", "RoleBinding"],
    }


@pytest.mark.slow
def test_the_wheel_carries_the_manifests_as_package_data(installed: Path) -> None:
    read = (
        "import importlib.resources as r; "
        "folder = r.files('timonel.kserve') / 'cluster-manifests'; "
        "print(' '.join(sorted(p.name for p in folder.iterdir())))"
    )
    result = subprocess.run(
        [str(installed / "python"), "-c", read], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["pipeline-rbac.yaml", "tensorflow-serving-runtime.yaml"]
