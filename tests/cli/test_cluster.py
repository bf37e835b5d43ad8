"""``timonel deploy | status | canary | promote | rollback | delete | list`` on ``timonel local``.

A controller with stand-in revision servers (no TensorFlow) makes InferenceServices ready, so the
commands' output and their waits run in about a second each, in Knative and in Standard mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local.standin_server import write_model, write_release
from localcluster import write_kubeconfig

from timonel import cli
from timonel.local.apiserver import Running


@pytest.fixture(scope="module")
def kubeconfig(local_api: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``KUBECONFIG`` set to a kubeconfig of the local API whose context's namespace is team."""
    local_api.registry.ensure_namespace("team")
    path = write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", local_api, namespace="team")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(path))
        yield path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Releases half/v1 and half/v2 published (exported by TensorFlow 2.21.0); half/v3 copied
    into place but never published (no timonel.json)."""
    root = tmp_path_factory.mktemp("repo")
    write_release(root, "half", 1)
    write_release(root, "half", 2)
    write_model(root / "half" / "v3", version=3)
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.usefixtures("kubeconfig")
def test_dry_run_deploy_stores_nothing(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, out, _ = run(
        capsys, "deploy", "dry", "--storage-uri", f"file://{repo}/half/v1", "--dry-run"
    )
    assert code == 0
    assert out.strip() == "team/dry: deployed (dry run: validated by the server, nothing stored)"
    code, _, err = run(capsys, "status", "dry")
    assert code == cli.EXIT_REFUSED
    assert err.startswith("error: inferenceservice team/dry was not found in namespace team")


@pytest.mark.usefixtures("kubeconfig")
def test_deploy_refuses_an_unpublished_release(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    unpublished = f"file://{repo}/half/v3"
    code, out, err = run(capsys, "deploy", "half3", "--storage-uri", unpublished, "--dry-run")
    assert code == cli.EXIT_USER_ERROR
    assert out == ""
    assert err == (
        f"error: {repo}/half/v3/timonel.json: no release manifest; give a published release URI "
        "(<repo>/<model>/v<N>), or publish this one with `timonel package` (for --gpu auto, "
        "--model-size also does without it)\n"
    )


@pytest.mark.usefixtures("kubeconfig")
def test_deploy_checks_the_runtime_against_the_exporting_tensorflow(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    release = f"file://{repo}/half/v1"
    code, _, err = run(
        capsys,
        "deploy",
        "old",
        "--storage-uri",
        release,
        "--runtime-version",
        "2.19.0",
        "--dry-run",
    )
    assert code == cli.EXIT_USER_ERROR
    assert err.startswith(
        "error: --runtime-version: TF Serving 2.19.0 is older than TensorFlow 2.21.0, which "
        "exported the model"
    )
    code, out, err = run(capsys, "deploy", "new", "--storage-uri", release, "--dry-run")
    assert code == 0, err
    assert out.strip() == "team/new: deployed (dry run: validated by the server, nothing stored)"


@pytest.mark.usefixtures("kubeconfig")
def test_a_server_side_refusal_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "deploy", "bad", "--storage-uri", "ftp://nowhere/m", "--dry-run")
    assert code == cli.EXIT_USER_ERROR
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err


@pytest.mark.usefixtures("kubeconfig", "local_controller")
def test_the_lifecycle_through_the_commands(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    v1, v2 = f"file://{repo}/half/v1", f"file://{repo}/half/v2"
    deploy = ("deploy", "half", "--storage-uri", v1, "--tag-routing")
    code, out, _ = run(capsys, *deploy, "--wait", "--timeout", "60")
    assert code == 0, out
    assert out.startswith("team/half: deployed, served\n")
    assert "half-predictor-00001" in out and "100%" in out

    code, out, _ = run(capsys, *deploy)
    assert out.strip() == (
        "team/half: deployed (generation 1); `timonel status half` follows it, or pass --wait"
    ), "re-applying the same spec changes nothing"

    code, out, err = run(
        capsys,
        "canary",
        "half",
        "--storage-uri",
        v2,
        "--percent",
        "30",
        "--wait",
        "--timeout",
        "60",
    )
    assert code == 0, err
    status = as_json(capsys, "status", "half", "-o", "json")
    assert status["ready"] and status["canary_percent"] == 30
    assert [(t["percent"], t["tag"]) for t in status["traffic"]] == [(30, "latest"), (70, "prev")]

    listed = as_json(capsys, "list", "-o", "json")
    assert [s["name"] for s in listed] == ["half"]
    code, out, _ = run(capsys, "list")
    assert "30/70" in out

    assert run(capsys, "promote", "half", "--wait", "--timeout", "60")[0] == 0
    status = as_json(capsys, "status", "half", "-o", "json")
    assert [(t["revision"], t["percent"]) for t in status["traffic"]] == [
        ("half-predictor-00002", 100)
    ]
    assert status["previous_rolledout_revision"] == "half-predictor-00001"

    assert run(capsys, "rollback", "half", "--wait", "--timeout", "60")[0] == 0
    status = as_json(capsys, "status", "half", "-o", "json")
    assert status["storage_uri"] == v1
    assert [t["percent"] for t in status["traffic"]] == [100]
    assert status["latest_ready_revision"] == "half-predictor-00003"

    code, out, _ = run(capsys, "delete", "half", "--wait", "--timeout", "30")
    assert out.strip() == "team/half deleted"
    assert as_json(capsys, "list", "-o", "json") == []


@pytest.mark.usefixtures("kubeconfig")
@pytest.mark.parametrize("command", [("deploy", "t"), ("promote", "t"), ("delete", "t")])
def test_a_wait_needs_a_timeout_above_zero(
    capsys: pytest.CaptureFixture[str], repo: Path, command: tuple[str, ...]
) -> None:
    flags = ("--storage-uri", f"file://{repo}/half/v1") if command[0] == "deploy" else ()
    code, out, err = run(capsys, *command, *flags, "--wait", "--timeout", "-1")
    assert code == cli.EXIT_USER_ERROR
    assert out == ""
    assert err == (
        "error: --timeout -1: expected the number of seconds to wait, above 0; give one such as "
        "--timeout 600 (timeout=600 in Python), or leave it out for the default\n"
    )
    assert as_json(capsys, "list", "-o", "json") == []  # nothing was written


@pytest.mark.usefixtures("kubeconfig", "local_controller")
def test_deploy_wait_on_a_stopped_service_says_how_to_start_it(
    capsys: pytest.CaptureFixture[str], repo: Path, kube_client: Any
) -> None:
    from kubernetes import client

    deploy = ("deploy", "paused", "--storage-uri", f"file://{repo}/half/v1")
    assert run(capsys, *deploy)[0] == 0
    client.CustomObjectsApi(kube_client).patch_namespaced_custom_object(
        "serving.kserve.io",
        "v1beta1",
        "team",
        "inferenceservices",
        "paused",
        {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}},
    )
    try:
        code, out, err = run(capsys, *deploy, "--wait", "--timeout", "120")
        assert (code, out) == (cli.EXIT_USER_ERROR, "")
        assert err == (
            "error: inferenceservice team/paused is stopped (annotation serving.kserve.io/stop: "
            '"true"), so it will not become ready; start it by removing the annotation: kubectl '
            "annotate inferenceservice paused -n team serving.kserve.io/stop-\n"
        )
    finally:
        assert run(capsys, "delete", "paused", "--wait", "--timeout", "30")[0] == 0


@pytest.mark.usefixtures("kubeconfig")
def test_a_canary_share_out_of_range_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "canary", "half", "--storage-uri", "gs://b/half/v2", "--percent", "150"
    )
    assert (code, out) == (cli.EXIT_USER_ERROR, "")
    assert err == (
        "error: --percent: canary traffic percent 150 is out of range; expected an integer from "
        "0 to 100 (the share of requests the new model receives)\n"
    )


@pytest.mark.usefixtures("kubeconfig", "local_controller")
def test_the_standard_mode_lifecycle_through_the_commands(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    v1, v2 = f"file://{repo}/half/v1", f"file://{repo}/half/v2"
    wait = ("--wait", "--timeout", "60")
    canary = ("canary", "raw", "--storage-uri", v2, "--percent", "20", *wait)

    def split() -> list[tuple[str, int]]:
        status = as_json(capsys, "status", "raw", "-o", "json")
        assert status["mode"] == "Standard" and status["ready"]
        return [(t["revision"], t["percent"]) for t in status["traffic"]]

    code, out, err = run(capsys, "deploy", "raw", "--storage-uri", v1, "--mode", "standard", *wait)
    assert (code, err) == (0, "")
    assert out.startswith("team/raw: deployed, served\n")
    assert split() == [("raw-predictor", 100)]

    # A canary is a second predictor (spec.canary[]) beside the stable one, weighted at 20%.
    code, out, err = run(capsys, *canary)
    assert (code, err) == (0, "")
    assert out.startswith("team/raw: canary at 20%, served\n")
    assert split() == [("raw-predictor", 80), ("raw-canary-1-predictor", 20)]

    code, out, _ = run(capsys, "rollback", "raw", *wait)
    assert code == 0 and out.startswith("team/raw: rolled back, served\n")
    assert split() == [("raw-predictor", 100)]

    # Promoted, the canary's predictor is the stable one; the old Deployment goes.
    assert run(capsys, *canary)[0] == 0
    code, out, _ = run(capsys, "promote", "raw", *wait)
    assert code == 0 and out.startswith("team/raw: promoted, served\n")
    assert split() == [("raw-canary-1-predictor", 100)]
    assert as_json(capsys, "status", "raw", "-o", "json")["storage_uri"] == v2

    code, out, _ = run(capsys, "delete", "raw", "--wait", "--timeout", "30")
    assert out.strip() == "team/raw deleted"
