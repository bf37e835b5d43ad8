"""The manifests Timonel ships: current on disk, valid for KServe, and a Role derived from the
requests the operations send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from timonel.errors import SpecError
from timonel.kserve import admission, manifests
from timonel.kserve import render as isvc
from timonel.kserve.crd import Schema
from timonel.kube import requests, rollout
from timonel.kube.resources import CONFIG_MAP, EVENT, INFERENCE_SERVICE, POD

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "kserve" / "examples"


def test_the_package_data_is_current() -> None:
    expected = manifests.package_data()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in manifests.DATA_DIR.glob("*.yaml")}
    assert sorted(on_disk) == sorted(expected), "run `make components`"
    for name, text in expected.items():
        assert on_disk[name] == text, f"{manifests.DATA_DIR / name} is stale: run `make components`"


def test_the_examples_in_kserve_are_current() -> None:
    expected = manifests.example_files()
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(expected)
    for name, text in expected.items():
        assert (EXAMPLES / name).read_text(encoding="utf-8") == text, (
            f"kserve/examples/{name} is stale: run `make components`"
        )


def test_the_top_level_kserve_folder_holds_only_the_examples() -> None:
    assert sorted(p.name for p in (ROOT / "kserve").iterdir()) == ["examples"]


@pytest.fixture(scope="module")
def crd(shared_dir: Path) -> Schema:
    return Schema.load_crd(shared_dir / "kserve" / "serving.kserve.io_inferenceservices.yaml")


def test_the_examples_fit_the_crd_pass_admission_and_read_back(crd: Schema) -> None:
    specs = manifests.example_specs()
    assert sorted(specs) == ["canary", "canary-standard", "cpu", "gpu", "scale-to-zero"]
    for name, spec in specs.items():
        manifest = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
        assert crd.errors(manifest) == [], name
        admission.admit(manifest)
        assert isvc.from_manifest(manifest) == spec


def test_the_serving_runtime_fits_its_crd(shared_dir: Path) -> None:
    schema = Schema.load_crd(
        shared_dir / "kserve" / "serving.kserve.io_clusterservingruntimes.yaml", "v1alpha1"
    )
    runtime = yaml.safe_load((manifests.DATA_DIR / manifests.RUNTIME_FILE).read_text())
    assert schema.errors(runtime) == []
    assert runtime["spec"]["containers"][0]["image"] == "tensorflow/serving:2.20.0"
    assert runtime["metadata"]["annotations"]["timonel.dev/gpu-image"].endswith(":2.20.0-gpu")


def test_the_operations_send_requests_on_inference_services_their_records_and_pods_only() -> None:
    sent = manifests.deployer_requests()
    assert {r.kind for r in sent} == {INFERENCE_SERVICE, CONFIG_MAP, POD}
    assert {r.verb for r in sent if r.kind is INFERENCE_SERVICE} == {
        "get",
        "list",
        "watch",
        "patch",
        "delete",
    }
    assert {r.verb for r in sent if r.kind is CONFIG_MAP} == {"get", "patch", "delete"}
    assert {(r.resource, r.verb) for r in sent if r.kind is POD} == {
        ("pods", "list"),  # the model's pods, by label
        ("pods", "get"),  # a followed log's pod, when its stream ends
        ("pods/log", "get"),
    }


def test_an_apply_is_authorized_as_patch_and_as_create() -> None:
    manifest = {
        "apiVersion": INFERENCE_SERVICE.api_version,
        "kind": INFERENCE_SERVICE.kind,
        "metadata": {"name": "digits", "namespace": "models"},
    }
    assert requests.apply_object(manifest).verbs == ("patch", "create")
    merge = requests.merge_patch(INFERENCE_SERVICE, "models", "digits", {})
    assert merge.verbs == ("patch",)


def test_the_role_grants_what_the_operations_need_and_nothing_more() -> None:
    role, binding = yaml.safe_load_all((manifests.DATA_DIR / manifests.RBAC_FILE).read_text())
    assert role["kind"] == "Role" and binding["kind"] == "RoleBinding"
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["get", "create", "patch", "delete"],
        },
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch", "create", "patch", "delete"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == "models"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]


def test_a_request_an_operation_starts_sending_reaches_the_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status = rollout.status

    def status_and_events(name: str, **options: Any) -> Any:
        options["cluster"].send(requests.list_objects(EVENT, "models"))
        return status(name, **options)

    monkeypatch.setattr(rollout, "status", status_and_events)
    rules = manifests.deployer_rules()
    assert {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]} in rules


def test_the_rbac_binds_the_namespace_and_account_given() -> None:
    role, binding = manifests.pipeline_rbac("team-a", "deployer", "pipelines")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "team-a"
    assert binding["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": "deployer",
        "namespace": "pipelines",
    }


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("Models", "a", "b"), "--namespace 'Models': expected a Kubernetes name"),
        (("models", "a_b", "b"), "--service-account 'a_b': expected a Kubernetes name"),
        (("models", "a", "-b"), "--service-account '-b': expected a Kubernetes name"),
    ],
)
def test_names_kubernetes_would_refuse_are_refused(
    names: tuple[str, str, str], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        manifests.pipeline_rbac(*names)


def test_an_unknown_set_of_manifests_is_refused() -> None:
    with pytest.raises(SpecError, match="expected one of: runtime, rbac, all"):
        manifests.manifest_files("crds")
