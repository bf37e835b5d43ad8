"""Progressive rollouts end to end on ``timonel local``: the API server, the controller running
the stand-in's toy classifier (``local.standin_server``) per revision, and the ingress (splits,
tag routes, mirroring).

``timonel.rollout`` moves the InferenceService through the kube API and judges what the probes
(through the tag hosts) and the mirrored live traffic show; the windows last a second or two.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from local.standin_server import DIFFERS, ERRORS, GOOD, Behaviour

import timonel
from rollouts.localrollouts import LiveClients, LocalCluster, probe_file
from timonel.cli import main
from timonel.kube.status import read_status
from timonel.rollouts.driver import ABORTED, PROMOTED, ROLLED_BACK, RolloutResult
from timonel.rollouts.plan import Gates, RolloutPlan
from timonel.rollouts.state import read_state

pytestmark = pytest.mark.slow

# The p99 of a window's 50 probes is about its slowest request, and a two-core machine busy with
# other test runs delays single requests by hundreds of milliseconds: the slack keeps that from
# reading as a regression, while the slow model adds a second to every answer.
GATES = Gates(min_requests=20, latency_slack_ms=600.0)
SLOW = Behaviour(delay=1.0)
STEPS = RolloutPlan(steps=(20, 60, 100), interval=1.5, gates=GATES)
SHADOW_FIRST = RolloutPlan(steps=(20, 60, 100), interval=1.5, shadow=2.0, gates=GATES)
#: For the tests of interruptions, whose good release must not meet the machine's hiccups.
UNTIMED = RolloutPlan(
    steps=(20, 60, 100),
    interval=1.5,
    gates=Gates(min_requests=20, max_latency_ratio=None, max_p99_latency_ms=None),
)


def start(cluster: LocalCluster, name: str, candidate: Behaviour) -> str:
    """``name`` serving a good v1; the storage URI of a v2 with the candidate's behaviour."""
    cluster.deploy(name, cluster.release(name, 1, GOOD))
    return cluster.release(name, 2, candidate)


def roll(cluster: LocalCluster, name: str, uri: str | None, plan: RolloutPlan, tmp_path: Path,
         **options: Any) -> RolloutResult:  # fmt: skip
    return timonel.rollout(
        name,
        uri,
        plan=plan,
        probe_data=probe_file(tmp_path),
        gateway=cluster.gateway,
        report_dir=tmp_path / "report",
        cluster=cluster.api,
        timeout=60,
        **options,
    )


def served(cluster: LocalCluster, name: str) -> list[tuple[str, int | None]]:
    """Each revision taking traffic and its percent (a rolled-back canary stays at 0%, as
    KServe's rollback leaves it)."""
    return [(t.revision, t.percent) for t in read_status(cluster.read(name)).traffic if t.percent]


def failed_gates(report: Path) -> list[dict[str, Any]]:
    data = json.loads((report / "report.json").read_text())
    last = data["phases"][-1]["windows"][-1]
    return [gate for gate in last["gates"] if gate["verdict"] == "fail"]


def shadowed(
    toy_cluster: LocalCluster, name: str, candidate: Behaviour, tmp_path: Path
) -> tuple[str, RolloutResult, LiveClients]:
    """A rollout with a shadow phase while clients use the service: the candidate's URI, the
    result, and the clients' answers."""
    v2 = start(toy_cluster, name, candidate)
    with LiveClients(toy_cluster.gateway, name) as clients:
        result = roll(toy_cluster, name, v2, SHADOW_FIRST, tmp_path)
    return v2, result, clients


@pytest.fixture(scope="module")
def good_shadowed(
    toy_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, RolloutResult, LiveClients, Path]:
    """A good release rolled out through the shadow phase while clients use the service: the
    service's name, the release's URI, the result, the clients and the report's folder."""
    name, folder = "good", tmp_path_factory.mktemp("good")
    v2, result, clients = shadowed(toy_cluster, name, GOOD, folder)
    return name, v2, result, clients, folder / "report"


def test_a_good_release_is_promoted_through_the_shadow_phase_and_every_step(
    toy_cluster: LocalCluster, good_shadowed: tuple[str, str, RolloutResult, LiveClients, Path]
) -> None:
    name, v2, result, clients, report = good_shadowed
    assert result.outcome == PROMOTED, result.reason
    assert [p.name for p in result.phases] == ["shadow", "step-20", "step-60"]
    shadow = {e.source: e for e in result.phases[0].windows[-1]}
    assert set(shadow) == {"probes", "mirror"}
    mirrored = shadow["mirror"]
    assert mirrored.canary.requests >= GATES.min_requests
    assert mirrored.agreement is not None and mirrored.agreement.rate == 1.0
    assert all(set(e.source for e in p.windows[-1]) == {"probes"} for p in result.phases[1:])
    assert toy_cluster.storage_uri(name) == v2
    assert served(toy_cluster, name) == [(f"{name}-predictor-00002", 100)]
    assert read_state(toy_cluster.record(name)) is None
    assert {status for status, _ in clients.answers} == {200}
    assert (report / "report.html").is_file()


def test_a_rollout_through_the_shadow_phase_makes_no_revision_but_the_candidate(
    toy_cluster: LocalCluster, good_shadowed: tuple[str, str, RolloutResult, LiveClients, Path]
) -> None:
    name, _, result, _, _ = good_shadowed
    assert result.outcome == PROMOTED, result.reason
    mirrored = next(e for e in result.phases[0].windows[-1] if e.source == "mirror")
    assert mirrored.canary.revision == f"{name}-predictor-00002"
    predictor = toy_cluster.read(name)["status"]["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == f"{name}-predictor-00002"
    assert predictor["latestRolledoutRevision"] == f"{name}-predictor-00002"
    assert toy_cluster.record(name) is None


@pytest.mark.parametrize(
    ("candidate", "gate", "numbers"),
    [
        (ERRORS, "error-rate", r"canary error rate 0\.3\d+ \(\d+/\d+\) vs stable 0\.0000"),
        (SLOW, "latency", r"canary p99 1\d{3}\.\d ms .*over the ratio limit of 1\.20"),
    ],
    ids=["errors", "slow"],
)
def test_a_bad_release_is_rolled_back_at_the_first_step_whose_gate_it_fails(
    toy_cluster: LocalCluster, tmp_path: Path, candidate: Behaviour, gate: str, numbers: str
) -> None:
    name = f"bad-{gate}"
    v2 = start(toy_cluster, name, candidate)
    result = roll(toy_cluster, name, v2, STEPS, tmp_path)
    assert result.outcome == ROLLED_BACK
    assert [p.name for p in result.phases] == ["step-20"]
    assert result.failed_phase is not None and gate in result.failed_phase.decision.failed_gates
    failed = [g for g in failed_gates(tmp_path / "report") if g["gate"] == gate]
    assert failed and failed[0]["source"] == "probes"
    assert any(re.search(numbers, g["reason"]) for g in failed), failed
    assert served(toy_cluster, name) == [(f"{name}-predictor-00001", 100)]
    assert read_state(toy_cluster.record(name)) is None


def test_a_release_that_predicts_differently_is_caught_in_the_shadow_phase_unseen(
    toy_cluster: LocalCluster, tmp_path: Path
) -> None:
    name = "differs"
    _, result, clients = shadowed(toy_cluster, name, DIFFERS, tmp_path)
    assert result.outcome == ROLLED_BACK
    assert [p.name for p in result.phases] == ["shadow"]
    assert result.phases[0].percent == 0
    failed = {(g["source"], g["gate"]): g["reason"] for g in failed_gates(tmp_path / "report")}
    assert set(failed) == {("probes", "agreement"), ("mirror", "agreement")}
    assert failed["probes", "agreement"].startswith("0/")
    mirrored = next(e for e in result.phases[0].windows[-1] if e.source == "mirror")
    assert mirrored.canary.requests >= GATES.min_requests and mirrored.agreement is not None
    assert mirrored.agreement.agreed == 0
    # Every client was answered by v1, the candidate's answers were only compared.
    assert clients.answers and all(
        status == 200 and body == [[x, pytest.approx(1 - x)]]
        for status, (x, body) in clients.answers
    )
    assert served(toy_cluster, name) == [(f"{name}-predictor-00001", 100)]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C at the start of a step."""


def interrupt_at(phase: str):  # type: ignore[no-untyped-def]  # a progress callback
    def progress(line: str) -> None:
        if line.startswith(f"{phase}: canary at"):
            raise Interrupted(line)

    return progress


def interrupted(
    toy_cluster: LocalCluster,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """A good v2's rollout stopped by Ctrl-C as step-60 begins, which ``timonel status``
    reports; returns its URI."""
    v2 = start(toy_cluster, name, GOOD)
    try:
        ended = roll(toy_cluster, name, v2, UNTIMED, tmp_path, progress=interrupt_at("step-60"))
    except Interrupted:
        pass
    else:
        pytest.fail(f"the rollout ended before step-60: {ended.reason}")
    state = read_state(toy_cluster.record(name))
    assert state is not None and state.phase_name == "step-60" and state.passed == ("step-20",)
    assert dict(served(toy_cluster, name)) == {
        f"{name}-predictor-00002": 20,
        f"{name}-predictor-00001": 80,
    }
    monkeypatch.setenv("KUBECONFIG", str(toy_cluster.kubeconfig))
    monkeypatch.setenv("COLUMNS", "400")
    capsys.readouterr()
    assert main(["status", name]) == 0
    assert (
        f"unfinished rollout of {v2} at step-60 (1 of 2 phases passed): continue with "
        f"`timonel rollout {name} --resume` or roll back with `timonel rollout {name} --abort`"
    ) in " ".join(capsys.readouterr().out.split())
    assert main(["status", name, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rollout"].startswith("unfinished rollout of")
    return v2


def test_an_interrupted_rollout_is_resumed_from_the_step_it_reached(
    toy_cluster: LocalCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "resumed"
    v2 = interrupted(toy_cluster, name, tmp_path, monkeypatch, capsys)
    result = roll(toy_cluster, name, None, UNTIMED, tmp_path, resume=True)
    assert result.outcome == PROMOTED, result.reason
    assert result.passed_before == ("step-20",)
    assert [p.name for p in result.phases] == ["step-60"]
    assert toy_cluster.storage_uri(name) == v2
    assert read_state(toy_cluster.record(name)) is None


def test_an_interrupted_rollout_is_aborted_back_to_the_stable_release(
    toy_cluster: LocalCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "aborted"
    interrupted(toy_cluster, name, tmp_path, monkeypatch, capsys)
    result = roll(toy_cluster, name, None, UNTIMED, tmp_path, abort_only=True)
    assert result.outcome == ABORTED
    assert "aborted at step-60" in result.reason
    assert served(toy_cluster, name) == [(f"{name}-predictor-00001", 100)]
    assert toy_cluster.record(name) is None


def test_the_record_of_an_unfinished_rollout_goes_with_its_inference_service(
    toy_cluster: LocalCluster, tmp_path: Path
) -> None:
    from timonel.kube.rollout import delete

    name = "deleted-midway"
    v2 = start(toy_cluster, name, GOOD)
    with pytest.raises(Interrupted):
        roll(toy_cluster, name, v2, UNTIMED, tmp_path, progress=interrupt_at("step-60"))
    assert read_state(toy_cluster.record(name)) is not None
    delete(name, cluster=toy_cluster.api, namespace="default", wait=True, timeout=60)
    assert toy_cluster.record(name) is None


def test_the_kfp_component_rolls_out_and_outputs_metrics_and_the_html_report(
    toy_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kfp import dsl

    from timonel.kfp import components

    def output(kind: type[dsl.Artifact], path: Path) -> Any:
        made = kind(uri=str(path))
        made.path = str(path)  # type: ignore[misc]  # a local path, as KFP's executor sets it
        return made

    name = "piped"
    v2 = start(toy_cluster, name, ERRORS)
    monkeypatch.setenv("KUBECONFIG", str(toy_cluster.kubeconfig))
    metrics, report = output(dsl.Metrics, tmp_path / "metrics"), output(dsl.HTML, tmp_path / "r")
    outcome = components.progressive_rollout.python_func(
        name=name,
        release=dsl.Model(uri=v2),
        metrics=metrics,
        report=report,
        steps="50,100",
        interval="1s",
        min_requests=20,
        probe_data=str(probe_file(tmp_path)),
        gateway=toy_cluster.gateway,
        timeout_seconds=60.0,
    )
    assert outcome == ROLLED_BACK
    assert metrics.metadata["promoted"] == 0.0
    assert metrics.metadata["step-50_probes_error_rate"] > 0.3
    page = (tmp_path / "r").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="chart"' in page and "error-rate" in page
    assert served(toy_cluster, name) == [(f"{name}-predictor-00001", 100)]
