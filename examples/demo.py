"""The whole flow on one machine: the ``train_and_deploy`` Kubeflow pipeline, run with kfp.local
against ``timonel local``, then the model it serves, over REST and gRPC.

``timonel local up``; run the pipeline for v1 (train, package, validate, deploy, smoke test);
predict the held-out digits through the local ingress over both APIs; run it again to canary v2
at 30%; roll v2 out from there progressively (``timonel.rollout``: promoted or rolled back by
its gates) and print its report's path; print the status table. The local cluster is left
running for what to try next (the last line); ``--down`` stops it at the end instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import timonel
from timonel import cli, local
from timonel.kfp.run import run_local

NAME = "digits"
PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "train_and_deploy.py"
STARTED = time.monotonic()


def step(title: str) -> None:
    print(f"\n== {title}  [{time.monotonic() - STARTED:.0f} s]", flush=True)


def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits the training step leaves out (it trains on the first 1500), scaled alike."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data[1500:] / 16.0).astype(np.float32), digits.target[1500:]


def predict_both_ways(cluster: timonel.Cluster, gateway: str) -> None:
    """The held-out digits over REST, the first eight again over gRPC, through the ingress."""
    x, y = held_out_digits()
    where = timonel.find_endpoint(NAME, cluster=cluster, gateway=gateway)
    with timonel.Client(where.rest, host=where.host) as rest:
        scores = next(iter(rest.predict(NAME, x).values()))
    with timonel.Client(f"grpc://{where.grpc}", host=where.host) as grpc:
        again = next(iter(grpc.predict(NAME, x[:8]).values()))
    accuracy = float((scores.argmax(axis=1) == y).mean())
    print(f"REST {where.rest} (Host {where.host}): accuracy {accuracy:.3f} on {len(y)} digits")
    print(f"gRPC {where.grpc}: agrees with REST: {bool(np.allclose(again, scores[:8], atol=1e-4))}")


def roll_out_v2(cluster: timonel.Cluster, gateway: str, report_dir: Path) -> Any:
    """Take the canary the pipeline started to all the traffic step by step, probing both
    revisions with held-out digits. v2 trained ten epochs and v1 one, so they disagree on some
    digits by design: the agreement gate asks for half, and latency has an absolute limit."""
    from timonel.rollouts.plan import plan_of

    x, _ = held_out_digits()
    probes = report_dir.parent / "rollout-probes.json"
    probes.write_text(json.dumps([{"instances": x[i : i + 4].tolist()} for i in range(0, 40, 4)]))
    uri = timonel.status(NAME, cluster=cluster).storage_uri
    plan = plan_of(steps="60,100", interval="5s", min_agreement=0.5, max_p99_latency_ms=1000.0)
    return timonel.rollout(
        NAME, uri, plan=plan, probe_data=probes, gateway=gateway, report_dir=report_dir,
        cluster=cluster, timeout=300, progress=print,
    )  # fmt: skip


def show(status: timonel.ServiceStatus) -> None:
    split = ", ".join(
        f"{t.revision} {t.percent}%" + (f" [{t.tag}]" if t.tag else "") for t in status.traffic
    )
    print(f"ready={status.ready} url={status.url} traffic: {split}")


def main(argv: list[str]) -> None:
    print(f"timonel {timonel.__version__}")
    home = local.Home.default()
    repo = f"file://{home.root / 'models'}"

    step("timonel local up: Kubernetes, KServe and an ingress on this machine")
    running = local.up(home=home)
    gateway = f"http://127.0.0.1:{running.ingress_port}"
    print(f"API {running.url}, ingress {gateway}; kubeconfig {home.kubeconfig}")
    os.environ["KUBECONFIG"] = str(home.kubeconfig)
    try:
        step("pipeline train_and_deploy, v1: train, package, validate, deploy, smoke test")
        run_local(PIPELINE, {"repo": repo, "epochs": 1}, home=home)
        with timonel.Cluster.connect(kubeconfig=home.kubeconfig) as cluster:
            show(timonel.status(NAME, cluster=cluster))

            step("predictions over REST and gRPC")
            predict_both_ways(cluster, gateway)

            step("pipeline train_and_deploy, v2 as a canary: 30% of the traffic")
            run_local(PIPELINE, {"repo": repo, "epochs": 10, "canary_percent": 30}, home=home)
            show(timonel.status(NAME, cluster=cluster))

            step("v2 rolled out progressively from its canary: 60%, then all, judged by gates")
            rolled = roll_out_v2(cluster, gateway, home.root / "rollout")
            print(f"{rolled.outcome}: {rolled.reason}")
            show(timonel.status(NAME, cluster=cluster))
            print(f"rollout report: {home.root / 'rollout' / 'report.html'}")
            if rolled.promoted:
                predict_both_ways(cluster, gateway)

        step("timonel status digits")
        cli.main(["status", NAME])
    finally:
        if "--down" in argv:
            local.down(home=home)
            print("timonel local down")
    print(f"\ndone in {time.monotonic() - STARTED:.0f} s.")
    print(
        "Next: `timonel pipeline run train_and_deploy --local -p canary_percent=50` canaries "
        f"another version, `timonel rollback {NAME}` returns to the one before, `timonel "
        "pipeline compile train_and_deploy` writes the YAML for the Kubeflow UI, and `timonel "
        "local down` stops the local cluster."
    )


if __name__ == "__main__":
    main(sys.argv[1:])
