"""Deploy latency: ``timonel deploy --wait`` to return, minus the revision server's own readiness.

One ``timonel local`` (its API server over HTTPS with a token, and its controller) runs in this
process; every deployment is a fresh InferenceService of the same published half_plus_two
release, so each one starts a real ``timonel serve``. For each deployment, an observer in this
process watches the InferenceService, takes the revision's server process start time from
``/proc`` and probes the server's own REST status every few milliseconds, which gives the time
the server itself needed to become ready (start → model AVAILABLE). What is left is what the
deploy path adds: CLI start-up, apply, reconcile, storage initializer, status, and noticing it.

Peers, measured in the same run on the same cluster:

- ``timonel deploy --wait``: the command, as a user runs it (a new Python process);
- ``timonel.deploy(spec, wait=True)``: the Python API in this process (no start-up);
- KServe's SDK: ``KServeClient`` creates the same InferenceService and ``wait_isvc_ready`` with
  its default ``polling_interval`` (10 s), the way its docs wait.

Prints the figures and the ratio of the peers' overhead to ours (goal: ``timonel deploy --wait``
overhead <= 1 s), and rewrites this benchmark's section of ``bench/README.md``.
"""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RUNS = int(os.environ.get("BENCH_DEPLOY_RUNS", "3"))
GOAL_OVERHEAD = 1.0
TIMEOUT = 180.0
NAMESPACE = "default"

sys.path.insert(0, str(ROOT / "tests"))
import readme  # noqa: E402  (bench/readme.py)
import tfmodels  # noqa: E402  (the test suite's SavedModels)
import usage  # noqa: E402  (bench/usage.py)

from timonel.kube.client import Cluster  # noqa: E402


@dataclass(frozen=True)
class Run:
    peer: str
    total: float  # seconds from the deploy call to its return
    server: float  # seconds the revision's server took from process start to AVAILABLE
    before: float = 0.0  # seconds from the deploy call to the server process start
    after: float = 0.0  # seconds from the server's AVAILABLE to the deploy's return

    @property
    def overhead(self) -> float:
        return self.total - self.server


def process_start(pid: int) -> float:
    """A process's start as ``time.time()``, from ``/proc`` (10 ms resolution)."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    started_after_boot = int(fields[19]) / ticks
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - started_after_boot)


class ServerObserver(threading.Thread):
    """Finds a new InferenceService's first revision server and times its own readiness."""

    def __init__(self, cluster: Cluster, controller: Any, name: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.controller, self.name = cluster, controller, name
        self.seconds: float | None = None
        self.started = self.ready = 0.0  # time.time() of the server's start and AVAILABLE
        self.pid = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.seconds = self._measure()
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def _measure(self) -> float:
        from timonel.local.revisions import RevisionKey

        revision = f"{self.name}-predictor-00001"
        key = RevisionKey(NAMESPACE, self.name, revision)
        deadline = time.monotonic() + TIMEOUT
        while (state := self.controller.revision_state(key)) is None or not state.rest:
            if time.monotonic() > deadline:
                raise RuntimeError(f"revision {revision} never got a server")
            time.sleep(0.003)  # the controller in this process, not the API
        endpoint = {"rest": f"http://{state.rest}"}
        pid = self.controller.revision_pid(NAMESPACE, self.name, revision)
        if pid is None:
            raise RuntimeError(f"no process for revision {revision}")
        self.pid = pid
        started = self.started = process_start(pid)
        url = f"{endpoint['rest']}/v1/models/{self.name}"
        deadline = time.monotonic() + TIMEOUT
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                try:
                    reply = client.get(url)
                    states = [v.get("state") for v in reply.json().get("model_version_status", [])]
                    if reply.status_code == 200 and "AVAILABLE" in states:
                        self.ready = time.time()
                        return self.ready - started
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.003)  # probing the server under test, not the API
        raise RuntimeError(f"{url} never became AVAILABLE")


def measure(
    peer: str, name: str, cluster: Cluster, controller: Any, deploy: Callable[[], None]
) -> Run:
    observer = ServerObserver(cluster, controller, name)
    observer.start()
    started, wall = time.monotonic(), time.time()
    deploy()
    total, returned = time.monotonic() - started, time.time()
    observer.join(TIMEOUT)
    if observer.error is not None or observer.seconds is None:
        raise SystemExit(f"{peer}: could not time the revision server: {observer.error}")
    import timonel

    timonel.delete(name, cluster=cluster, wait=True, timeout=60)
    gone = time.monotonic() + 60
    while Path(f"/proc/{observer.pid}").exists() and time.monotonic() < gone:
        time.sleep(0.05)  # the next deployment starts on a controller that is done stopping this
    run = Run(peer, total, observer.seconds, observer.started - wall, returned - observer.ready)
    print(
        f"  {peer:<28} total {run.total:6.2f} s   server {run.server:6.2f} s   "
        f"overhead {run.overhead:5.2f} s (before the server {run.before:5.2f} s, "
        f"after it {run.after:5.2f} s)",
        flush=True,
    )
    return run


def manifest(name: str, uri: str) -> dict[str, Any]:
    import timonel

    spec = timonel.ServingSpec(model=timonel.Model(name=name, storage_uri=uri))
    return timonel.render(spec)


def main() -> None:
    usage.parse_command_line("deploy.py", __doc__)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kubernetes import config as kube_config

    from timonel.local.apiserver.runner import running
    from timonel.local.controller import Controller
    from timonel.releases.package import package

    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="timonel-bench-") as scratch:
        work = Path(scratch)
        print("publishing half_plus_two ...", flush=True)
        model = tfmodels.write_half_plus_two(work / "savedmodel")
        uri = package(model, name="half", repo=f"file://{work / 'repo'}", version=1).uri
        with running(work / "cluster", token, tls=True) as server:
            kubeconfig = work / "kubeconfig"
            from timonel.local import kubeconfig as local_kubeconfig

            assert server.ca is not None
            local_kubeconfig.write(kubeconfig, server.url, token, ca_pem=server.ca.read_bytes())
            api_client = kube_config.new_client_from_config(str(kubeconfig), persist_config=False)
            controller = Controller(api_client, work / "controller")
            controller.start()
            env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
            try:
                costs = startup_costs(env)
                with Cluster.connect(kubeconfig=kubeconfig) as cluster:
                    runs = run_all(cluster, controller, uri, kubeconfig, env)
            finally:
                controller.stop()
                api_client.close()
    report(runs, costs)


STARTUP = {
    "python": "pass",
    "import timonel": "import timonel",
    "import timonel, kubernetes": "import timonel, kubernetes",
}


def startup_costs(env: dict[str, str]) -> dict[str, float]:
    """Medians of what a new ``timonel`` process pays before its first request."""
    costs: dict[str, float] = {}
    commands = {label: ["-c", code] for label, code in STARTUP.items()}
    commands["timonel deploy --help"] = ["-m", "timonel", "deploy", "--help"]
    for label, args in commands.items():
        seconds = []
        for _ in range(RUNS):
            started = time.monotonic()
            subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
            seconds.append(time.monotonic() - started)
        costs[label] = statistics.median(seconds)
        print(f"  start-up, {label}: {costs[label]:.2f} s", flush=True)
    return costs


def run_all(
    cluster: Cluster, controller: Any, uri: str, kubeconfig: Path, env: dict[str, str]
) -> list[Run]:
    import timonel

    runs = []
    print("timonel deploy --wait (CLI) ...", flush=True)
    for i in range(RUNS):
        name = f"cli-{i}"

        def cli(name: str = name) -> None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "timonel",
                    "deploy",
                    name,
                    "--storage-uri",
                    uri,
                    "--wait",
                    "--timeout",
                    str(TIMEOUT),
                ],
                env=env,
                capture_output=True,
                check=True,
            )

        runs.append(measure("timonel deploy --wait", name, cluster, controller, cli))

    print("timonel.deploy(wait=True) (Python API) ...", flush=True)
    for i in range(RUNS):
        name = f"api-{i}"
        spec = timonel.ServingSpec(model=timonel.Model(name=name, storage_uri=uri))

        def api(spec: timonel.ServingSpec = spec) -> None:
            timonel.deploy(spec, cluster=cluster, timeout=TIMEOUT)

        runs.append(measure("timonel.deploy(wait=True)", name, cluster, controller, api))

    print("KServeClient.create + wait_isvc_ready (polling_interval 10 s) ...", flush=True)
    from kserve import KServeClient

    kserve = KServeClient(config_file=str(kubeconfig))
    name = "kserve-0"
    body = manifest(name, uri)

    def peer() -> None:
        group, version = body["apiVersion"].split("/")
        kserve.api_instance.create_namespaced_custom_object(
            group, version, NAMESPACE, "inferenceservices", body
        )
        kserve.wait_isvc_ready(name, NAMESPACE, timeout_seconds=int(TIMEOUT))

    runs.append(measure("KServe SDK wait_isvc_ready", name, cluster, controller, peer))
    return runs


PEERS = ("timonel deploy --wait", "timonel.deploy(wait=True)", "KServe SDK wait_isvc_ready")


def report(runs: list[Run], costs: dict[str, float]) -> None:
    def median(peer: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs if r.peer == peer)

    fields = ("total", "server", "overhead", "before", "after")
    rows = [
        f"| {p} | {sum(r.peer == p for r in runs)} | "
        + " | ".join(f"{median(p, f):.2f}" for f in fields)
        + " |"
        for p in PEERS
    ]
    ours, api, peer = (median(p, "overhead") for p in PEERS)
    met = "yes" if ours <= GOAL_OVERHEAD else "no"
    versions = ", ".join(
        f"{package} {metadata.version(package)}" for package in ("kubernetes", "kserve")
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    startup = "; ".join(f"{label} {seconds:.2f} s" for label, seconds in costs.items())
    lines = [
        "## Deploying: `timonel deploy --wait` against KServe's SDK wait",
        "",
        "`python bench/deploy.py` measures and rewrites this section. One `timonel local` (API "
        "server over HTTPS with a token, and the controller) in the benchmark's process; each "
        "deployment is a fresh InferenceService of the same half_plus_two release, so each starts "
        "a real `timonel serve`. *server* is that server's own time from process start (`/proc`) "
        "to model AVAILABLE (probed every 3 ms); *overhead* = total - server, what the deploy "
        "path adds: *before* the server starts (CLI start-up, apply, reconcile, storage "
        "initializer) and *after* it is AVAILABLE (the controller's probe, the status write, the "
        f"watch event, exiting). Medians of {RUNS} runs (1 for the KServe SDK); each deployment "
        "starts after the previous one's server has exited. The release is in a file:// "
        "repository, which the storage initializer copies in the controller's process (a bucket's "
        "copy gets a process of its own); `timonel deploy` and `timonel.deploy(spec)` read the "
        "release's manifest to check it, as they do for every release URI.",
        "",
        f"Machine: {os.cpu_count()} vCPU, Linux {platform.release()}, Python "
        f"{platform.python_version()}, {versions}; load average at the end {load}. "
        f"Run: {time.strftime('%Y-%m-%d')}.",
        "",
        "| peer | runs | total s | server s | overhead s | before s | after s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"A new process's start-up, part of the CLI's *before*: {startup}.",
        "",
        "| ratio | measured | goal | met |",
        "| --- | ---: | ---: | :---: |",
        f"| `timonel deploy --wait` overhead (s) | {ours:.2f} | <= {GOAL_OVERHEAD:g} | {met} |",
        f"| KServe SDK overhead / `timonel deploy --wait` overhead | {peer / ours:.1f} | | |",
        f"| KServe SDK overhead / `timonel.deploy` overhead | {peer / api:.1f} | | |",
    ]
    section = "\n".join(lines)
    print()
    print(section)
    readme.write_section("bench/deploy.py", section)
    print(f"\nwrote {readme.README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
