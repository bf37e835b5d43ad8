"""A rollout's report: ``report.json`` (the result, every number) and ``report.html``.

The HTML page is self-contained (inline CSS and SVG, no script, no network), so it opens from a
bucket, a pipeline's HTML artifact in the Kubeflow UI, or a laptop alike. It shows the outcome,
a chart of each phase's p99 latency, error rate and agreement for the stable and canary
revisions, and a table per phase and window: the canary's traffic, each source's requests,
error rates, latency percentiles and agreement, and the decision with its reason. Writing is
the only I/O; the page is built by pure functions of the result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from pathlib import Path

from timonel.rollouts.driver import PhaseRecord, RolloutResult
from timonel.rollouts.evidence import RevisionEvidence, WindowEvidence

_COLOURS = {"stable": "#4e79a7", "canary": "#f28e2b"}
_VERDICT_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "wait": "#9e9e9e"}

Metric = Callable[[WindowEvidence, str], float | None]


def _last_window(phase: PhaseRecord) -> tuple[WindowEvidence, ...]:
    return phase.windows[-1] if phase.windows else ()


def _p99(evidence: WindowEvidence, side: str) -> float | None:
    revision: RevisionEvidence = getattr(evidence, side)
    return revision.p99_ms


def _error_rate(evidence: WindowEvidence, side: str) -> float | None:
    revision: RevisionEvidence = getattr(evidence, side)
    return revision.error_rate * 100.0


def _agreement(evidence: WindowEvidence, side: str) -> float | None:
    if evidence.agreement is None:
        return None
    return 100.0 if side == "stable" else evidence.agreement.rate * 100.0


def _panel(
    phases: tuple[PhaseRecord, ...], title: str, unit: str, metric: Metric, top: float
) -> str:
    """One bar panel: a stable and a canary bar per phase (the first source's last window)."""
    width, height, left, bottom = 300, 170, 52, 40
    values = []
    for phase in phases:
        window = _last_window(phase)
        first = window[0] if window else None
        values.append(
            tuple(None if first is None else metric(first, side) for side in ("stable", "canary"))
        )
    peak = max([v for pair in values for v in pair if v is not None] + [top * 0.01, 1e-9])
    scale = max(top, peak) if unit == "%" else peak * 1.15
    slot = (width - left) / max(1, len(phases))
    bar = slot * 0.35
    parts = [
        f'<g class="panel"><text x="{left}" y="14" class="title">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#555"/>',
        f'<text x="{left - 4}" y="{24}" class="axis" text-anchor="end">{scale:.3g}{unit}</text>',
    ]
    for index, (phase, pair) in enumerate(zip(phases, values, strict=True)):
        x = left + index * slot + slot * 0.12
        for offset, (side, value) in enumerate(zip(("stable", "canary"), pair, strict=True)):
            if value is None:
                continue
            h = (height - bottom - 24) * min(1.0, value / scale) if scale else 0
            parts.append(
                f'<rect x="{x + offset * bar:.1f}" y="{height - bottom - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{_COLOURS[side]}">'
                f"<title>{phase.name} {side}: {value:.3g}{unit}</title></rect>"
            )
        colour = _VERDICT_COLOURS[phase.decision.verdict.value]
        parts.append(
            f'<text x="{x + bar:.1f}" y="{height - bottom + 14}" class="axis" '
            f'text-anchor="middle" fill="{colour}">{escape(phase.name)}</text>'
            f'<text x="{x + bar:.1f}" y="{height - bottom + 28}" class="axis" '
            f'text-anchor="middle">{phase.percent}%</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def chart(result: RolloutResult) -> str:
    """The inline SVG chart: p99 latency, error rate and agreement per phase."""
    panels = [
        ("p99 latency", " ms", _p99, 0.0),
        ("error rate", "%", _error_rate, 5.0),
        ("agreement", "%", _agreement, 100.0),
    ]
    groups = [
        f'<g transform="translate({index * 320},0)">'
        f"{_panel(result.phases, title, unit, metric, top)}</g>"
        for index, (title, unit, metric, top) in enumerate(panels)
    ]
    legend = "".join(
        f'<rect x="{10 + i * 90}" y="178" width="10" height="10" fill="{colour}"/>'
        f'<text x="{24 + i * 90}" y="187" class="axis">{side}</text>'
        for i, (side, colour) in enumerate(_COLOURS.items())
    )
    return (
        '<svg id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 960 195" '
        'width="960" height="195" role="img" aria-label="latency, errors and agreement per '
        f'phase">{"".join(groups)}{legend}</svg>'
    )


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _rows(phase: PhaseRecord) -> str:
    rows = []
    for number, (window, decision) in enumerate(
        zip(phase.windows, phase.decisions, strict=True), 1
    ):
        for evidence in window:
            agreement = evidence.agreement
            agreed = (
                "n/a"
                if agreement is None
                else f"{agreement.agreed}/{agreement.compared} ({agreement.rate:.2%})"
            )
            cells = [escape(phase.name), str(number), f"{phase.percent}%", escape(evidence.source)]
            for side in (evidence.stable, evidence.canary):
                cells += [
                    f"{side.requests}",
                    f"{side.error_rate:.2%}",
                    " / ".join(_number(v) for v in (side.p50_ms, side.p90_ms, side.p99_ms)),
                ]
            cells.append(agreed)
            rows.append("<td>" + "</td><td>".join(cells) + "</td>")
        verdict = decision.verdict.value
        rows.append(
            f'<td colspan="11" class="decision {verdict}"><b>{verdict}</b>: '
            f"{escape(decision.reason)}</td>"
        )
    return "".join(
        f'<tr class="phase" data-phase="{escape(phase.name)}">{row}</tr>' for row in rows
    )


def _queries(result: RolloutResult) -> str:
    shown = {
        key: query
        for phase in result.phases
        for window in phase.windows
        for evidence in window
        for key, query in evidence.queries.items()
    }
    if not shown:
        return ""
    items = "".join(f"<li>{escape(k)}: <code>{escape(q)}</code></li>" for k, q in shown.items())
    return f"<h2>Where the numbers come from</h2><ul>{items}</ul>"


def render_html(result: RolloutResult) -> str:
    before = (
        f"<p>Passed before this run resumed: {escape(', '.join(result.passed_before))}</p>"
        if result.passed_before
        else ""
    )
    header = (
        "<tr><th>phase</th><th>window</th><th>canary traffic</th><th>source</th>"
        "<th>stable requests</th><th>stable errors</th><th>stable p50/p90/p99 ms</th>"
        "<th>canary requests</th><th>canary errors</th><th>canary p50/p90/p99 ms</th>"
        "<th>agreement</th></tr>"
    )
    body = "".join(_rows(phase) for phase in result.phases)
    outcome = escape(result.outcome)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Rollout of {escape(result.name)}: {outcome}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin-top: 12px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td.decision {{ text-align: left; }}
.pass {{ color: {_VERDICT_COLOURS["pass"]}; }} .fail {{ color: {_VERDICT_COLOURS["fail"]}; }}
.wait {{ color: {_VERDICT_COLOURS["wait"]}; }}
svg .title {{ font: bold 12px sans-serif; }} svg .axis {{ font: 10px sans-serif; }}
</style></head><body>
<h1>Rollout of {escape(result.namespace)}/{escape(result.name)}</h1>
<p id="outcome" class="{"pass" if result.promoted else "fail"}"><b>{outcome}</b>:
{escape(result.storage_uri)}: {escape(result.reason)}</p>
{before}
{chart(result)}
<table id="phases">{header}{body}</table>
{_queries(result)}
</body></html>
"""


def report_metrics(result: RolloutResult) -> dict[str, float]:
    """The numbers a pipeline's ``Metrics`` artifact shows: whether it was promoted, the phases
    passed, and per phase the canary's error rate, p99 and agreement as each source last saw
    them (``<phase>_<source>_<measure>``)."""
    metrics: dict[str, float] = {
        "promoted": float(result.promoted),
        "phases_passed": float(
            len(result.passed_before)
            + sum(phase.decision.verdict.value == "pass" for phase in result.phases)
        ),
    }
    for phase in result.phases:
        for evidence in _last_window(phase):
            prefix = f"{phase.name}_{evidence.source}"
            metrics[f"{prefix}_requests"] = float(evidence.canary.requests)
            metrics[f"{prefix}_error_rate"] = evidence.canary.error_rate
            if evidence.canary.p99_ms is not None:
                metrics[f"{prefix}_p99_ms"] = evidence.canary.p99_ms
            if evidence.agreement is not None:
                metrics[f"{prefix}_agreement"] = evidence.agreement.rate
    return metrics


def write_report(result: RolloutResult, folder: str | Path) -> Path:
    """Write ``report.json`` and ``report.html`` into ``folder``; return the HTML's path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    page = out / "report.html"
    page.write_text(render_html(result), encoding="utf-8")
    return page
