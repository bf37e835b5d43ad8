from __future__ import annotations

import pytest

from timonel.rollouts.evidence import Agreement, RevisionEvidence, WindowEvidence
from timonel.rollouts.gates import Verdict, judge
from timonel.rollouts.plan import Gates


def window(
    *,
    stable: tuple[int, int, float] = (100, 0, 20.0),
    canary: tuple[int, int, float] = (100, 0, 20.0),
    agreement: Agreement | None = Agreement(100, 100),
    source: str = "probes",
) -> WindowEvidence:
    """(requests, errors, p99 ms) for each revision."""
    return WindowEvidence(
        source,
        RevisionEvidence("v1", stable[0], stable[1], p99_ms=stable[2]),
        RevisionEvidence("v2", canary[0], canary[1], p99_ms=canary[2]),
        agreement,
    )


@pytest.mark.parametrize(
    ("gates", "evidence", "verdict", "failed", "words"),
    [
        (Gates(), window(), Verdict.PASS, (), "100/100 examples agree"),
        # errors: above the stable revision's rate by more than the limit
        (
            Gates(),
            window(canary=(100, 5, 20.0)),
            Verdict.FAIL,
            ("error-rate",),
            "0.0500 above stable",
        ),
        (Gates(), window(stable=(100, 5, 20), canary=(100, 5, 20)), Verdict.PASS, (), "within"),
        (Gates(), window(canary=(100, 1, 20.0)), Verdict.PASS, (), "within 0.0100"),
        # latency: ratio to stable, with slack for tiny latencies, or an absolute p99
        (Gates(), window(canary=(100, 0, 300.0)), Verdict.FAIL, ("latency",), "15.00x stable"),
        (
            Gates(),
            window(stable=(100, 0, 1.0), canary=(100, 0, 4.0)),
            Verdict.PASS,
            (),
            "ratio 4.00",
        ),
        (
            Gates(max_p99_latency_ms=50, max_latency_ratio=None),
            window(canary=(100, 0, 60.0)),
            Verdict.FAIL,
            ("latency",),
            "above the limit of 50.0 ms",
        ),
        # agreement
        (Gates(), window(agreement=Agreement(100, 90)), Verdict.FAIL, ("agreement",), "90/100"),
        (Gates(), window(agreement=None), Verdict.PASS, (), "error rate"),
        # too few requests: nothing decided
        (
            Gates(min_requests=50),
            window(canary=(10, 10, 20.0)),
            Verdict.WAIT,
            (),
            "too few requests",
        ),
        (Gates(), window(agreement=Agreement(5, 0)), Verdict.WAIT, (), "too few examples"),
        # a failure wins over a wait
        (
            Gates(),
            window(canary=(100, 50, 20.0), agreement=Agreement(5, 5)),
            Verdict.FAIL,
            ("error-rate",),
            "0.5000 above stable",
        ),
    ],
)
def test_gates_decide_with_the_numbers_in_the_reason(
    gates: Gates,
    evidence: WindowEvidence,
    verdict: Verdict,
    failed: tuple[str, ...],
    words: str,
) -> None:
    decision = judge(gates, [evidence])
    assert decision.verdict == verdict
    assert decision.failed_gates == failed
    assert words in decision.reason


def test_one_failing_source_fails_the_window() -> None:
    decision = judge(Gates(), [window(), window(canary=(100, 9, 20.0), source="prometheus")])
    assert decision.verdict == Verdict.FAIL
    assert decision.reason.startswith("prometheus error-rate:")


def test_no_evidence_decides_nothing() -> None:
    assert judge(Gates(), []).verdict == Verdict.WAIT


def test_revision_evidence_from_latency_samples() -> None:
    evidence = RevisionEvidence.from_samples("v2", [float(i) for i in range(1, 101)], errors=3)
    assert (evidence.requests, evidence.errors, evidence.error_rate) == (100, 3, 0.03)
    assert evidence.p50_ms == pytest.approx(50.5)
    assert evidence.p99_ms == pytest.approx(99.01)
