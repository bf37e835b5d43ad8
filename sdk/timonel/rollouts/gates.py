"""The gates: pure functions from one window's evidence to a decision and the reason, in numbers.

Each gate compares the canary with the stable revision measured in the same window (so a slow
hour or a burst of bad client requests weighs on both) and with the absolute limits of the plan.
A gate that sees fewer than ``min_requests`` requests (or compared examples) decides nothing: it
says ``wait``, and the driver gathers another window. A window passes when every gate of every
source passes; one failed gate fails it, whatever the others say.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from timonel.rollouts.evidence import WindowEvidence
from timonel.rollouts.plan import Gates


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"  # too few requests to decide


@dataclass(frozen=True)
class GateResult:
    """One gate on one source's window: its verdict, and why, with the numbers."""

    gate: str
    source: str
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Decision:
    """A window's decision: FAIL if any gate failed, else WAIT if any lacked requests, else PASS."""

    verdict: Verdict
    results: tuple[GateResult, ...]

    @property
    def reason(self) -> str:
        """The failed gates' reasons (or the waiting ones', or all of them when it passed)."""
        chosen = [r for r in self.results if r.verdict == self.verdict] or list(self.results)
        return "; ".join(f"{r.source} {r.gate}: {r.reason}" for r in chosen)

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return tuple(r.gate for r in self.results if r.verdict == Verdict.FAIL)


def _too_few(evidence: WindowEvidence, gates: Gates, gate: str) -> GateResult | None:
    low = [
        f"{side} {getattr(evidence, side).requests}"
        for side in ("stable", "canary")
        if getattr(evidence, side).requests < gates.min_requests
    ]
    if not low:
        return None
    return GateResult(
        gate,
        evidence.source,
        Verdict.WAIT,
        f"too few requests to judge ({', '.join(low)}; at least {gates.min_requests} each)",
    )


def error_rate_gate(gates: Gates, evidence: WindowEvidence) -> GateResult:
    waiting = _too_few(evidence, gates, "error-rate")
    if waiting:
        return waiting
    canary, stable = evidence.canary.error_rate, evidence.stable.error_rate
    excess = canary - stable
    text = (
        f"canary error rate {canary:.4f} ({evidence.canary.errors}/{evidence.canary.requests}) "
        f"vs stable {stable:.4f} ({evidence.stable.errors}/{evidence.stable.requests})"
    )
    if excess > gates.max_error_rate:
        return GateResult(
            "error-rate",
            evidence.source,
            Verdict.FAIL,
            f"{text}: {excess:.4f} above stable, over the limit of {gates.max_error_rate:.4f}",
        )
    return GateResult(
        "error-rate",
        evidence.source,
        Verdict.PASS,
        f"{text}: within {gates.max_error_rate:.4f} of stable",
    )


def latency_gate(gates: Gates, evidence: WindowEvidence) -> GateResult | None:
    """None when the plan limits no latency, or the source timed no request."""
    if not evidence.timed or (gates.max_p99_latency_ms is None and gates.max_latency_ratio is None):
        return None
    waiting = _too_few(evidence, gates, "latency")
    if waiting:
        return waiting
    canary, stable = evidence.canary.p99_ms, evidence.stable.p99_ms
    if canary is None:
        return GateResult(
            "latency", evidence.source, Verdict.FAIL, "no canary request succeeded to be timed"
        )
    failures = []
    notes = [f"canary p99 {canary:.1f} ms"]
    if gates.max_p99_latency_ms is not None:
        notes.append(f"limit {gates.max_p99_latency_ms:.1f} ms")
        if canary > gates.max_p99_latency_ms:
            failures.append(f"above the limit of {gates.max_p99_latency_ms:.1f} ms")
    if gates.max_latency_ratio is not None and stable is not None:
        ratio = canary / stable if stable > 0 else float("inf")
        allowed = max(stable * gates.max_latency_ratio, stable + gates.latency_slack_ms)
        notes.append(f"stable p99 {stable:.1f} ms, ratio {ratio:.2f}")
        if canary > allowed:
            failures.append(
                f"{ratio:.2f}x stable's {stable:.1f} ms, over the ratio limit of "
                f"{gates.max_latency_ratio:.2f} (allowed up to {allowed:.1f} ms)"
            )
    if failures:
        return GateResult(
            "latency",
            evidence.source,
            Verdict.FAIL,
            f"canary p99 {canary:.1f} ms " + "; ".join(failures),
        )
    return GateResult("latency", evidence.source, Verdict.PASS, ", ".join(notes))


def agreement_gate(gates: Gates, evidence: WindowEvidence) -> GateResult | None:
    """None for a source that sees no answers."""
    agreement = evidence.agreement
    if agreement is None:
        return None
    text = f"{agreement.agreed}/{agreement.compared} examples agree ({agreement.rate:.4f})"
    if agreement.compared < gates.min_requests:
        return GateResult(
            "agreement",
            evidence.source,
            Verdict.WAIT,
            f"too few examples compared to judge ({agreement.compared}; at least "
            f"{gates.min_requests})",
        )
    if agreement.rate < gates.min_agreement:
        return GateResult(
            "agreement",
            evidence.source,
            Verdict.FAIL,
            f"{text}, under the minimum of {gates.min_agreement:.4f}",
        )
    return GateResult(
        "agreement", evidence.source, Verdict.PASS, f"{text}, minimum {gates.min_agreement:.4f}"
    )


def judge(gates: Gates, windows: Iterable[WindowEvidence]) -> Decision:
    """Every gate on every source's evidence of one window."""
    results: list[GateResult] = []
    for evidence in windows:
        for result in (
            error_rate_gate(gates, evidence),
            latency_gate(gates, evidence),
            agreement_gate(gates, evidence),
        ):
            if result is not None:
                results.append(result)
    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        verdict = Verdict.FAIL
    elif Verdict.WAIT in verdicts or not results:
        verdict = Verdict.WAIT
    else:
        verdict = Verdict.PASS
    return Decision(verdict, tuple(results))
