"""Scale from zero and the router's cost on ``timonel local``, against floors measured in the run.

One ``timonel local`` in this process (API server over HTTPS with a token, the controller running
the real ``timonel serve`` per revision, the ingress on its own event loop thread) and half_plus_two
as the model:

- **Scale from zero**: an InferenceService with ``minReplicas: 0`` is left idle until the
  activator stops its revision; then one request goes through the ingress, timed from sending to
  its answer. The floor is the least any cold start can cost here: a fresh Python process that
  imports TensorFlow, loads the same SavedModel and answers once, timed from spawn to exit.
- **Router overhead**: ``wrk`` (C, closed loop, one connection per client) posts the same
  request to the revision's own REST port and through the ingress by Host, at 8 and 32 clients
  for ``BENCH_SECONDS`` (default 5) each: p50 through the router minus direct at 8 clients, and
  throughput through the router over direct at 32. Each point also reports the CPU time per
  request of this process (the ingress, with the API server and controller idle beside it) and
  of the revision's server, which the machine's other load does not change as it changes
  throughput and latency.

Prints the figures and the goals of the ingress issue, and rewrites the coldstart section of
``bench/README.md``. Every wait is bounded in time; the load generator runs ``BENCH_SECONDS``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

import localcluster  # noqa: E402  (tests/localcluster.py: kubeconfig and controller)
import tfmodels  # noqa: E402
import usage  # noqa: E402  (bench/usage.py)
from serve import PARTS, ensure_tool  # noqa: E402

from timonel.kube.client import Cluster  # noqa: E402
from timonel.kube.requests import create_object, delete_object, get_object  # noqa: E402
from timonel.kube.resources import INFERENCE_SERVICE  # noqa: E402
from timonel.local.apiserver import running as api_running  # noqa: E402
from timonel.local.ingress.router import Ingress, running  # noqa: E402
from timonel.local.revisions import RevisionKey  # noqa: E402

README = BENCH / "README.md"
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
RUNS = 3
IDLE_SECONDS = 2.0
TIMEOUT = 180.0
NAME = "cold"  # minReplicas 0: scaled to zero between cold requests
WARM = "warm"  # minReplicas 1: the router's load, which no idle window interrupts
BODY = {"instances": [1.0, 2.0]}
BEGIN, END = "<!-- bench/coldstart.py: begin -->", "<!-- bench/coldstart.py: end -->"
FLOOR = """
import sys, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
print(model.signatures["serving_default"](x=tf.constant([1.0, 2.0]))["y"].numpy())
"""


def floor_seconds(version_dir: Path) -> float:
    """A fresh Python process importing TensorFlow, loading the model and answering once."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", FLOOR, str(version_dir)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return time.perf_counter() - started


def manifest(name: str, uri: str, min_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "predictor": {
                "minReplicas": min_replicas,
                "maxReplicas": 1,  # one process: the autoscaler would add one at 32 clients
                "model": {"modelFormat": {"name": "tensorflow"}, "storageUri": uri},
            }
        },
    }


def wait(check: Any, what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while not (found := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return found


def cold_request(http: httpx.Client, controller: Any, key: RevisionKey) -> float:
    """Wait until the revision is at zero, then time one request through the ingress."""
    wait(lambda: controller.revision_pid(key.namespace, key.isvc, key.revision) is None, "zero")
    started = time.perf_counter()
    reply = http.post(f"/v1/models/{NAME}:predict", json=BODY)
    seconds = time.perf_counter() - started
    if reply.status_code != 200:
        raise SystemExit(f"the cold request failed: {reply.status_code} {reply.text}")
    return seconds


def wrk(url: str, body: Path, clients: int, host: str | None = None) -> dict[str, float]:
    load = ["-t1", f"-c{clients}", f"-d{SECONDS:g}s", "--timeout", "10s"]
    headers = ["-H", f"Host: {host}"] if host else []
    command = ["wrk", *load, *headers, "-s", str(PARTS / "post.lua"), url, "--", str(body)]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=SECONDS + 60
    ).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    return {
        "rps": result["requests"] / result["seconds"],
        "p50_ms": result["p50_us"] / 1000,
        "errors": result["errors"] + result["non_2xx"],
    }


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process has used so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(server: int, load: Any) -> dict[str, float]:
    """``load()``'s figures, with this process's and the server's CPU microseconds per request."""
    ours, theirs = time.process_time(), cpu_seconds(server)
    found: dict[str, float] = load()
    requests = max(1.0, found["rps"] * SECONDS)
    found["ingress_cpu_us"] = (time.process_time() - ours) / requests * 1e6
    found["server_cpu_us"] = (cpu_seconds(server) - theirs) / requests * 1e6
    return found


def measure(work: Path) -> dict[str, Any]:
    model = tfmodels.write_half_plus_two(work / "models" / NAME / "1")
    floors = [floor_seconds(model) for _ in range(RUNS)]
    body = work / "body.json"
    body.write_text(json.dumps(BODY))
    key = RevisionKey("default", NAME, f"{NAME}-predictor-00001")
    warm = RevisionKey("default", WARM, f"{WARM}-predictor-00001")
    with api_running(work / "cluster", localcluster.TOKEN, tls=True) as api:
        kubeconfig = localcluster.write_kubeconfig(work / "kubeconfig", api)
        with (
            Cluster.connect(kubeconfig=kubeconfig) as cluster,
            localcluster.controller(kubeconfig, work / "state", serve=True) as controller,
        ):
            router = Ingress(controller, idle_seconds=IDLE_SECONDS)
            controller.listen(router.update, drain=router.activator.drain)
            with running(router) as ingress:
                cluster.send(create_object(manifest(NAME, str(model.parent), 0)))
                wait(lambda: _ready(cluster, NAME), "the InferenceService to be Ready")
                with httpx.Client(
                    base_url=ingress.url,
                    headers={"Host": f"{NAME}.default.example.com"},
                    timeout=TIMEOUT,
                ) as http:
                    colds = [cold_request(http, controller, key) for _ in range(RUNS)]
                cluster.send(delete_object(INFERENCE_SERVICE, "default", NAME))
                cluster.send(create_object(manifest(WARM, str(model.parent), 1)))
                wait(lambda: _ready(cluster, WARM), "the warm InferenceService to be Ready")
                state = wait(lambda: controller.revision_state(warm), "the warm revision")
                direct = f"http://{state.rest}"
                host = f"{WARM}.default.example.com"
                server = controller.revision_pid("default", WARM, warm.revision)
                points = {
                    (path, clients): measured(
                        server,
                        lambda url=url, clients=clients, via=via: wrk(
                            f"{url}/v1/models/{WARM}:predict", body, clients, via
                        ),
                    )
                    for clients in (8, 32)
                    for path, url, via in (("direct", direct, None), ("router", ingress.url, host))
                }
                cluster.send(delete_object(INFERENCE_SERVICE, "default", WARM))
    return {"floors": floors, "colds": colds, "points": points}


def _ready(cluster: Cluster, name: str) -> bool:
    isvc = cluster.send(get_object(INFERENCE_SERVICE, "default", name))
    conditions = (isvc.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ratios(result: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    floor = statistics.median(result["floors"])
    cold = statistics.median(result["colds"])
    points = result["points"]
    overhead = points["router", 8]["p50_ms"] - points["direct", 8]["p50_ms"]
    share = points["router", 32]["rps"] / points["direct", 32]["rps"]
    return [
        ("scale from zero / floor", f"{cold / floor:.2f}", "<= 1.3", cold / floor <= 1.3),
        ("router p50 - direct p50 at 8 clients (ms)", f"{overhead:.2f}", "<= 1", overhead <= 1),
        ("router throughput / direct at 32 clients", f"{share:.2f}", ">= 0.9", share >= 0.9),
    ]


def section(result: dict[str, Any]) -> str:
    floor, cold = statistics.median(result["floors"]), statistics.median(result["colds"])
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    rows = [
        f"| {path} | {clients} | {p['rps']:.0f} | {p['p50_ms']:.2f} | {p['errors']:.0f} | "
        f"{p['ingress_cpu_us']:.0f} | {p['server_cpu_us']:.0f} |"
        for (path, clients), p in sorted(result["points"].items(), key=lambda i: (i[0][1], i[0][0]))
    ]
    goals = [
        f"| {name} | {value} | {goal} | {'yes' if met else 'no'} |"
        for name, value, goal, met in ratios(result)
    ]
    return "\n".join(
        [
            BEGIN,
            "## Scale from zero and the ingress's router on `timonel local`",
            "",
            "`python bench/coldstart.py` measures and rewrites this section. One `timonel "
            "local` in the benchmark's process (API server, controller running the real "
            "`timonel serve`, ingress); half_plus_two. *Scale from zero*: the first request "
            "through the ingress to a revision the activator stopped, sent to answered. *Floor*: "
            "a fresh Python process importing TensorFlow, loading the same SavedModel and "
            f"answering once, spawn to exit. Medians of {RUNS} runs. Router: `wrk` posting the "
            "same request to the revision's REST port (*direct*) and through the ingress by "
            f"Host (*router*), {SECONDS:g} s per point, one connection per client.",
            "",
            f"Machine: {os.cpu_count()} vCPU, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}; load average at the end {load}. Run: "
            f"{time.strftime('%Y-%m-%d')}.",
            "",
            f"Scale from zero {cold:.2f} s (runs: "
            + ", ".join(f"{s:.2f}" for s in result["colds"])
            + f"); floor {floor:.2f} s (runs: "
            + ", ".join(f"{s:.2f}" for s in result["floors"])
            + ").",
            "",
            "| path | clients | requests/s | p50 ms | errors | ingress CPU µs/request | "
            "server CPU µs/request |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "| measure | measured | goal | met |",
            "| --- | ---: | ---: | :---: |",
            *goals,
            END,
        ]
    )


def write_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN in readme:
        before, rest = readme.split(BEGIN, 1)
        readme = before + text + rest.split(END, 1)[1]
    else:
        readme = readme.rstrip("\n") + "\n\n" + text + "\n"
    README.write_text(readme)


def main() -> None:
    usage.parse_command_line("coldstart.py", __doc__)
    ensure_tool("wrk", "wrk")
    with tempfile.TemporaryDirectory(prefix="timonel-coldstart-") as tmp:
        result = measure(Path(tmp))
    text = section(result)
    print(text)
    write_readme(text)


if __name__ == "__main__":
    main()
