"""`timonel kserve manifests`: the shipped manifests on stdout or into a folder, for any names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from timonel import cli
from timonel.kserve import manifests


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def kinds(text: str) -> list[str]:
    return [document["kind"] for document in yaml.safe_load_all(text)]


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("runtime", ["ClusterServingRuntime"]),
        ("rbac", ["Role", "RoleBinding"]),
        ("all", ["ClusterServingRuntime", "Role", "RoleBinding"]),
    ],
)
def test_manifests_print_as_one_yaml_stream(
    capsys: pytest.CaptureFixture[str], which: str, expected: list[str]
) -> None:
    code, out, err = run(capsys, "kserve", "manifests", which)
    assert (code, err) == (0, "")
    assert kinds(out) == expected


def test_the_defaults_print_the_package_data(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "kserve", "manifests", "rbac")
    assert out == (manifests.DATA_DIR / manifests.RBAC_FILE).read_text(encoding="utf-8")


def test_the_role_lands_in_the_namespace_and_binds_the_account_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(
        capsys, "kserve", "manifests", "rbac", "-n", "team-a", "--service-account", "ci"
    )
    role, binding = yaml.safe_load_all(out)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "team-a"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ci", "namespace": "team-a"}]
    _, out, _ = run(capsys, "kserve", "manifests", "rbac", "--service-account", "kfp/runner")
    assert list(yaml.safe_load_all(out))[1]["subjects"][0]["namespace"] == "kfp"


def test_output_dir_gets_one_file_per_manifest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "kserve", "manifests", "-o", str(tmp_path / "cluster"))
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "cluster").iterdir())
    assert written == ["pipeline-rbac.yaml", "tensorflow-serving-runtime.yaml"]
    assert out.count("wrote ") == 2
    runtime = (tmp_path / "cluster" / "tensorflow-serving-runtime.yaml").read_text()
    assert kinds(runtime) == ["ClusterServingRuntime"]


def test_a_bad_name_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "kserve", "manifests", "rbac", "--namespace", "Team_A")
    assert code == cli.EXIT_USER_ERROR and out == ""
    assert "--namespace 'Team_A': expected a Kubernetes name" in err
    assert len(err.strip().splitlines()) == 1
