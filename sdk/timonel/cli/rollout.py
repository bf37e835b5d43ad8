"""``timonel rollout``: a progressive rollout that promotes or rolls back by itself.

Parses the flags into a ``RolloutPlan`` and calls ``timonel.rollout``; prints each decision as it
is made and the outcome. Exit codes come from the error table in ``timonel.cli``: 0 promoted,
3 rolled back (``RolloutFailed``), 2 bad input.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def rollout(
        name: str = typer.Argument(..., help="InferenceService name."),
        storage_uri: str | None = typer.Option(
            None, "--storage-uri", help="The release to roll out (not with --resume/--abort)."
        ),
        shadow: str = typer.Option(
            "0", "--shadow", help="Mirror live traffic to the candidate first for this long (5m)."
        ),
        shadow_percent: float = typer.Option(
            100.0, "--shadow-percent", help="Share of live requests mirrored in the shadow phase."
        ),
        steps: str = typer.Option("10,25,50,100", "--steps", help="Canary percentages."),
        interval: str = typer.Option("60s", "--interval", help="Evidence window of each step."),
        max_error_rate: float = typer.Option(
            0.01, "--max-error-rate", help="Errors the canary may add over stable's (fraction)."
        ),
        max_p99_latency_ms: float | None = typer.Option(
            None, "--max-p99-latency-ms", help="Absolute limit on the canary's p99 latency."
        ),
        max_latency_ratio: float | None = typer.Option(
            None, "--max-latency-ratio", help="Canary p99 / stable p99 limit (default 1.2)."
        ),
        min_agreement: float = typer.Option(
            0.99, "--min-agreement", help="Share of examples answered alike (argmax or value)."
        ),
        min_requests: int = typer.Option(
            20, "--min-requests", help="Requests per revision and window before deciding."
        ),
        probe_data: Path | None = typer.Option(
            None, "--probe-data", help="JSON TF Serving predict bodies (default: warmup records)."
        ),
        prometheus_url: str | None = typer.Option(
            None, "--prometheus-url", help="Also judge queue-proxy metrics from this Prometheus."
        ),
        gateway: str | None = typer.Option(
            None, "--gateway", help="Ingress URL the tag hosts are reached through."
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Write report.json and report.html into this folder."
        ),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted rollout."),
        abort: bool = typer.Option(False, "--abort", help="Roll an interrupted rollout back."),
        namespace: str | None = typer.Option(None, "--namespace", "-n", help="Namespace."),
        context: str | None = typer.Option(None, "--context", help="Kubeconfig context."),
    ) -> None:
        """Roll a release out step by step; promote it when every gate passes, roll it back at
        the first that fails (exit 3)."""
        from timonel.cli import stderr, stdout
        from timonel.errors import SpecError
        from timonel.kube.client import Cluster
        from timonel.rollouts.plan import plan_of
        from timonel.rollouts.run import rollout as run_rollout

        if resume and abort:
            raise SpecError("give --resume or --abort, not both")
        plan = plan_of(
            steps=steps,
            interval=interval,
            shadow=shadow,
            shadow_percent=shadow_percent,
            max_error_rate=max_error_rate,
            max_p99_latency_ms=max_p99_latency_ms,
            max_latency_ratio=max_latency_ratio,
            min_agreement=min_agreement,
            min_requests=min_requests,
        )
        with Cluster.connect(context=context, namespace=namespace) as cluster:
            result = run_rollout(
                name,
                storage_uri,
                plan=plan,
                probe_data=probe_data,
                prometheus_url=prometheus_url,
                gateway=gateway,
                report_dir=report,
                resume=resume,
                abort_only=abort,
                cluster=cluster,
                progress=lambda line: stderr.print(line, markup=False),
            )
        stdout.print(f"{result.outcome}: {result.reason}", markup=False)
        if report is not None:
            stdout.print(f"report: {report.resolve() / 'report.html'}", markup=False)
        result.raise_for_outcome()
