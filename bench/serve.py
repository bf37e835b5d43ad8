"""Serving throughput and latency: ``timonel serve`` against KServe's Python server and the limit.

One run on this machine, same SavedModels (a small and a large MLP), same load generators, each
in its own process: ``wrk`` for REST and ``h2load`` for gRPC (both C, closed loop, one connection
per client, so the generator takes little of the cores the servers need), 1, 8 and 32 concurrent
clients sending single-example requests for ``BENCH_SECONDS`` (default 5) each. Peers:

- ``timonel serve`` over REST and gRPC, without and with ``--enable_batching``;
- KServe's own model server (``kserve.Model`` around the same SavedModel, V1 protocol);
- the limit: the model called in one process by the same number of threads, no network.

Prints throughput, p50 and p99 for each, and the ratios the serving issue sets as goals, among
them unbatched timonel at 32 clients against the in-process limit at 32 threads and against
itself at 8 clients, taken within ``BENCH_ROUNDS`` rounds (default 7) of those three peers, so
the machine's drift over a run does not enter a ratio; writes the figures, the goals
missed and why, and a plot into ``bench/README.md`` and ``bench/serve.png``, and adds the run's
CPU model, the CPU count the server sized its threads for and the unbatched figures to the table
of runs there, so runs on different machines stay side by side. Servers run one at a time, so
they never compete with each other for cores (the idle in-process limit stays loaded beside
them).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

import serving  # noqa: E402  (tests/serving.py: starts and stops servers)
import usage  # noqa: E402  (bench/usage.py)

PARTS = BENCH / "serve_parts"
README = BENCH / "README.md"
PLOT = BENCH / "serve.png"
LEVELS = (1, 8, 32)
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
#: Rounds of the unbatched points at 8 and 32 clients: the machine's speed drifts (other work
#: shares its cores), so a ratio is taken within a round and the medians are reported.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
#: The levels measured in rounds.
PAIRED = (8, 32)
#: A round's points in turn: each API's point at 32 clients sits between its own at 8 and the
#: limit's at 32, the two it is divided by; every other round runs them backwards, so a drift
#: that lasts the round tilts the ratios of one round up and of the next down.
ROUND_ORDER = (
    ("timonel gRPC", 8),
    ("timonel gRPC", 32),
    ("in-process", 32),
    ("timonel REST", 32),
    ("timonel REST", 8),
    ("in-process", 8),
)
MODELS = {"small": 64, "large": 1024}  # name → input features (serve_parts/models.py)
BATCHING = """\
max_batch_size { value: 32 }
batch_timeout_micros { value: 1000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 64 }
"""
PEERS = (
    "timonel REST",
    "timonel gRPC",
    "timonel REST batching",
    "timonel gRPC batching",
    "KServe",
    "in-process",
)
MONITORING = 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
GRPC_PREDICT = "/tensorflow.serving.PredictionService/Predict"
BEGIN, END = "<!-- bench/serve.py: begin -->", "<!-- bench/serve.py: end -->"
RUNS_BEGIN, RUNS_END = "<!-- bench/serve.py runs: begin -->", "<!-- bench/serve.py runs: end -->"
RUNS_HEADER = (
    "| run | CPU | sized for | load before, after | model | in-process 8, 32 | REST 8, 32 "
    "| gRPC 8, 32 | REST, gRPC / in-process at 32 | REST, gRPC 32 / 8 |\n"
    "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
)
ENV = serving.ENV


def ensure_tool(name: str, package: str) -> str:
    """wrk and h2load come from Debian; install them on a fresh machine (the bench runs as root
    there)."""
    found = shutil.which(name)
    if found:
        return found
    print(f"installing {name} with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        env={**ENV, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is still missing after apt-get install; install it by hand")
    return found


def tree_rss(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def server(
    command: list[str], ready: str, log: Path
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Start a server in its own process group; ready once ``ready`` answers 200 and no
    version is LOADING; stopped on exit."""
    return serving.running(command, log, serving.answers(ready, without="LOADING"), timeout=180)


def wrk(url: str, body: Path, clients: int, metrics_url: str | None = None) -> dict[str, float]:
    """wrk posting ``body``; with the server's ``metrics_url``, also its mean batch size."""

    def command(seconds: float) -> list[str]:
        script = str(PARTS / "post.lua")
        load = ["-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s"]
        return ["wrk", *load, "-s", script, url, "--", str(body)]

    subprocess.run(command(1), capture_output=True, check=True)  # warm up
    before = counters(metrics_url) if metrics_url else None
    out = subprocess.run(
        command(SECONDS), capture_output=True, text=True, check=True, timeout=SECONDS + 60
    ).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    point = {
        "requests": result["requests"],
        "errors": result["errors"] + result["non_2xx"],
        "seconds": result["seconds"],
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
    }
    if metrics_url and before is not None:
        point["mean_batch"] = mean_batch(before, counters(metrics_url))
    return point


def counters(metrics_url: str) -> dict[str, float]:
    """What the server counted so far: requests answered OK (TF Serving's request_count) and the
    rows and runs of its batches (processed_batch_size), to tell one load run's share."""
    text = httpx.get(metrics_url, timeout=10).text
    found = {"ok": 0.0, "batch_rows": 0.0, "batches": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(":tensorflow:serving:request_count{") and 'status="OK"' in name:
            found["ok"] += float(value)
        elif name.startswith(":tensorflow:serving:batching_session:processed_batch_size_sum{"):
            found["batch_rows"] += float(value)
        elif name.startswith(":tensorflow:serving:batching_session:processed_batch_size_count{"):
            found["batches"] += float(value)
    return found


def mean_batch(before: dict[str, float], after: dict[str, float]) -> float:
    """Mean rows per batch the server ran between two ``counters`` (0: it ran none)."""
    batches = after["batches"] - before["batches"]
    return (after["batch_rows"] - before["batch_rows"]) / batches if batches else 0.0


def grpc_load(target: str, frame: Path, clients: int, metrics_url: str) -> dict[str, float]:
    """h2load posting one gRPC frame per call; gRPC answers HTTP 200 even when a call fails
    (the status travels in trailers), so errors are the calls the server did not count OK."""

    def run(seconds: float, log: Path) -> tuple[str, dict[str, float], dict[str, float]]:
        log.unlink(missing_ok=True)  # h2load appends
        before = counters(metrics_url)
        command = [
            "h2load", "-c", str(clients), "-m", "1", "-t", "1", "-D", f"{seconds:g}",
            "-d", str(frame), "-H", "content-type: application/grpc", "-H", "te: trailers",
            "--log-file", str(log), f"http://{target}{GRPC_PREDICT}",
        ]  # fmt: skip
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
        return out, before, counters(metrics_url)

    log = frame.with_suffix(".log")
    run(1, log)  # warm up
    out, before, after = run(SECONDS, log)
    counted_ok = int(after["ok"] - before["ok"])
    finished = next(line for line in out.splitlines() if line.startswith("finished in"))
    elapsed = float(finished.split()[2].rstrip("s,"))
    rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    latencies_ms = sorted(int(row[2]) / 1000 for row in rows)
    done = len(rows)
    return {
        "requests": done,
        "errors": max(0, done - counted_ok) + sum(row[1] != "200" for row in rows),
        "seconds": elapsed,
        "p50_ms": latencies_ms[len(latencies_ms) // 2],
        "p99_ms": latencies_ms[min(done - 1, int(done * 0.99))],
        "mean_batch": mean_batch(before, after),
    }


def summary(result: dict[str, float]) -> dict[str, float]:
    return {**result, "rps": result["requests"] / result["seconds"]}


def measure(model: str, work: Path) -> dict[str, Any]:
    base, body = work / model, work / f"{model}.json"
    request = (work / f"{model}.pb").read_bytes()
    frame = work / f"{model}.grpc"  # the PredictRequest as one gRPC message: flag, length, bytes
    frame.write_bytes(b"\0" + len(request).to_bytes(4, "big") + request)
    monitoring = work / "monitoring.config"
    monitoring.write_text(MONITORING)
    points: dict[str, dict[int, dict[str, float]]] = {peer: {} for peer in PEERS}
    rss: dict[str, int] = {}
    print(f"\n== {model} model", flush=True)

    limit = InProcess(base / "1", MODELS[model])
    rss["TensorFlow with the model"] = limit.rss
    points["in-process"][1] = limit.point(1)

    grpc_port, rest_port = serving.free_port(), serving.free_port()
    timonel = [
        sys.executable,
        "-m",
        "timonel",
        "serve",
        "--port",
        str(grpc_port),
        "--rest_api_port",
        str(rest_port),
        "--model_name",
        model,
        "--model_base_path",
        str(base),
        "--monitoring_config_file",
        str(monitoring),
    ]
    status = f"http://127.0.0.1:{rest_port}/v1/models/{model}"
    metrics = f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics"
    unbatched = {
        "in-process": limit.point,
        "timonel REST": lambda clients: summary(wrk(f"{status}:predict", body, clients)),
        "timonel gRPC": lambda clients: summary(
            grpc_load(f"127.0.0.1:{grpc_port}", frame, clients, metrics)
        ),
    }
    rounds: dict[str, dict[int, list[dict[str, float]]]] = {
        peer: {clients: [] for clients in PAIRED} for peer in unbatched
    }
    with limit, server(timonel, status, work / f"timonel-{model}.log") as process:
        for peer in ("timonel REST", "timonel gRPC"):
            points[peer][1] = unbatched[peer](1)
        for number in range(ROUNDS):
            figures = []
            for peer, clients in ROUND_ORDER[:: -1 if number % 2 else 1]:
                rounds[peer][clients].append(point := unbatched[peer](clients))
                figures.append(f"{peer.removeprefix('timonel ')} {clients} {point['rps']:.0f}")
            print(f"  round {number + 1} of {ROUNDS}: {', '.join(figures)} req/s", flush=True)
        rss["timonel serve"] = tree_rss(process.pid)
    for peer, by_clients in rounds.items():
        for clients, taken in by_clients.items():
            points[peer][clients] = sorted(taken, key=lambda point: point["rps"])[len(taken) // 2]
    sized = sized_for(work / f"timonel-{model}.log")
    print(f"  timonel serve done ({sized})", flush=True)

    batching = work / "batching.config"
    batching.write_text(BATCHING)
    with server(
        [*timonel, "--enable_batching", "--batching_parameters_file", str(batching)],
        status,
        work / f"batching-{model}.log",
    ) as process:
        for clients in LEVELS:
            points["timonel REST batching"][clients] = summary(
                wrk(f"{status}:predict", body, clients, metrics)
            )
            points["timonel gRPC batching"][clients] = summary(
                grpc_load(f"127.0.0.1:{grpc_port}", frame, clients, metrics)
            )
        rss["timonel serve --enable_batching"] = tree_rss(process.pid)
    print("  timonel serve --enable_batching done", flush=True)

    kserve_port = serving.free_port()
    kserve = [
        sys.executable,
        str(PARTS / "kserve_model.py"),
        "--model_name",
        model,
        "--model_dir",
        str(base / "1"),
        "--http_port",
        str(kserve_port),
    ]
    kserve_url = f"http://127.0.0.1:{kserve_port}/v1/models/{model}"
    with server(kserve, kserve_url, work / f"kserve-{model}.log") as process:
        for clients in LEVELS:
            points["KServe"][clients] = summary(wrk(f"{kserve_url}:predict", body, clients))
        rss["KServe"] = tree_rss(process.pid)
    print("  KServe done", flush=True)
    return {"points": points, "rss": rss, "sized": sized, "rounds": rounds}


class InProcess(AbstractContextManager["InProcess"]):
    """The in-process limit's process (``serve_parts/inprocess.py``), model loaded, taking a
    point whenever asked."""

    def __init__(self, model_dir: Path, features: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(PARTS / "inprocess.py"), str(model_dir), str(features)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.rss = int(json.loads(self._readline())["rss_bytes"])

    def _readline(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise SystemExit(f"the in-process limit ended with {self._process.wait()}")
        return line

    def point(self, threads: int) -> dict[str, float]:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{threads} {SECONDS:g}\n")
        self._process.stdin.flush()
        return summary(json.loads(self._readline()))

    def __exit__(self, *exc: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=60)


def sized_for(log: Path) -> str:
    """The server's own start-up line saying the CPU count and threads it sized for."""
    for line in log.read_text().splitlines():
        if line.startswith("{") and "Sized for" in line:
            return str(json.loads(line)["msg"])
    raise SystemExit(f"timonel serve logged no sizing line in {log}")


def cpus_sized_for(result: dict[str, Any]) -> int:
    return int(result["sized"].split()[2])


def paired(result: dict[str, Any], peer: str) -> tuple[float, float]:
    """The peer's throughput at 32 clients over the in-process limit at 32 and over its own at 8,
    each taken within a round, median of the rounds."""
    rounds = result["rounds"]
    at32 = [point["rps"] for point in rounds[peer][32]]
    limit = [a / b["rps"] for a, b in zip(at32, rounds["in-process"][32], strict=True)]
    held = [a / b["rps"] for a, b in zip(at32, rounds[peer][8], strict=True)]
    return statistics.median(limit), statistics.median(held)


def ratios(result: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(what, measured, goal, met) for each goal of the serving issue, at 32 clients."""
    p = {peer: result["points"][peer][32] for peer in PEERS}
    rss = result["rss"]
    rest = p["timonel REST"]["rps"] / p["KServe"]["rps"]
    p99 = p["timonel REST"]["p99_ms"] / p["KServe"]["p99_ms"]
    grpc = p["timonel gRPC"]["rps"] / p["KServe"]["rps"]
    grpc_batching = p["timonel gRPC batching"]["rps"] / p["KServe"]["rps"]
    batching = p["timonel REST batching"]["rps"] / p["in-process"]["rps"]
    memory = rss["timonel serve"] / rss["TensorFlow with the model"]
    unbatched = []
    for api in ("REST", "gRPC"):
        limit, held = paired(result, f"timonel {api}")
        unbatched += [
            (f"{api} throughput / in-process at 32", limit, ">= 0.7", limit >= 0.7),
            (f"{api} throughput at 32 / at 8 clients", held, ">= 1", held >= 1),
        ]
    return [
        *unbatched,
        ("REST throughput / KServe", rest, ">= 2", rest >= 2),
        ("REST p99 / KServe p99", p99, "<= 1", p99 <= 1),
        ("gRPC throughput / KServe", grpc, ">= 3", grpc >= 3),
        ("gRPC batching throughput / KServe", grpc_batching, ">= 3", grpc_batching >= 3),
        ("REST batching throughput / in-process", batching, ">= 0.5", batching >= 0.5),
        ("timonel serve RSS / TensorFlow RSS", memory, "<= 1.3", memory <= 1.3),
    ]


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it."""
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )


def machine() -> str:
    cpu = cpu_model()
    memory = psutil.virtual_memory().total / 2**30
    versions = [metadata.version(name) for name in ("tensorflow-cpu", "kserve", "uvloop", "hpack")]
    wrk_version = (
        subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    )
    h2load_version = subprocess.run(
        ["h2load", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} vCPU {cpu}, {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, TensorFlow {versions[0]}, kserve {versions[1]}, "
        f"uvloop {versions[2]}, hpack {versions[3]}, {wrk_version}, {h2load_version}"
    )


def tables(results: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for model, result in results.items():
        lines += [
            f"**{model} model** (`write_mlp` with {MODELS[model]} inputs)",
            "",
            "| server | clients | req/s | p50 ms | p99 ms | errors | mean batch |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for peer in PEERS:
            for clients, point in result["points"][peer].items():
                cells = (point["rps"], point["p50_ms"], point["p99_ms"], point["errors"])
                batch = f"{point['mean_batch']:.1f}" if "batching" in peer else ""
                lines.append(
                    f"| {peer} | {clients} | {cells[0]:.0f} | {cells[1]:.2f} | {cells[2]:.2f} "
                    f"| {cells[3]:.0f} | {batch} |"
                )
        lines += [
            "",
            "| ratio at 32 clients | measured | goal | met |",
            "| --- | ---: | ---: | :---: |",
        ]
        for what, value, goal, met in ratios(result):
            lines.append(f"| {what} | {value:.2f} | {goal} | {'yes' if met else 'no'} |")
        _, drift = paired(result, "in-process")
        rss = ", ".join(f"{name} {value / 2**20:.0f} MiB" for name, value in result["rss"].items())
        lines += [
            "",
            f"The in-process limit at 32 threads over its own at 8, taken the same way: {drift:.2f}"
            " (no server and no network in it, so its distance from 1 is the machine's drift "
            "between points).",
            "",
            f"Resident memory: {rss}.",
            "",
        ]
    return "\n".join(lines)


def missed(results: dict[str, dict[str, Any]]) -> str:
    """A line for each goal not met, with what the same run says about why."""
    lines = []
    for model, result in results.items():
        p = {peer: result["points"][peer][32] for peer in PEERS}
        limit = p["in-process"]["rps"] / p["KServe"]["rps"]
        for what, value, goal, met in ratios(result):
            if met:
                continue
            why = ""
            rps = {peer: p[peer]["rps"] for peer in PEERS}
            if "in-process at 32" in what or "at 32 / at 8" in what:
                why = (
                    f" {result['sized']}; the load average (below) says how much of the "
                    "machine other work took during the run."
                )
            elif what.startswith("gRPC throughput") and limit < 3:
                why = (
                    " The model called in-process, with no server at all, does only "
                    f"{limit:.2f}x KServe at 32 clients ({rps['in-process']:.0f} against "
                    f"{rps['KServe']:.0f} req/s): no server making one model call per request "
                    "can reach 3x; merging calls can (batched gRPC, next row)."
                )
            elif what.startswith("gRPC throughput"):
                why = (
                    f" The model alone (in-process) does {limit:.2f}x KServe here "
                    f"({rps['in-process']:.0f} req/s), and unbatched gRPC gets "
                    f"{rps['timonel gRPC'] / rps['in-process']:.0%} of that limit: the server's "
                    "cost per call and the hand-off of each call to a TensorFlow thread come on "
                    "top of the model's (unbatched REST gets "
                    f"{rps['timonel REST'] / rps['in-process']:.0%}); merging calls avoids both "
                    "(batched gRPC, next row)."
                )
            elif what.startswith("gRPC batching"):
                grpc_batch = p["timonel gRPC batching"]["mean_batch"]
                rest_batch = p["timonel REST batching"]["mean_batch"]
                why = (
                    f" Batched gRPC does {rps['timonel gRPC batching'] / rps['timonel gRPC']:.2f}x "
                    f"unbatched gRPC, in batches of {grpc_batch:.1f} calls on average (batched "
                    f"REST does {rps['timonel REST batching']:.0f} req/s in batches of "
                    f"{rest_batch:.1f})."
                )
            elif what.startswith("REST throughput"):
                why = (
                    " The server's cost per request, not the model's, bounds it (see above); "
                    "the in-process limit is "
                    f"{limit:.2f}x KServe."
                )
            elif what.startswith("REST p99"):
                why = (
                    f" timonel REST's p50 is {p['timonel REST']['p50_ms']:.1f} ms against "
                    f"KServe's {p['KServe']['p50_ms']:.1f} ms; its tail is the requests queued "
                    "behind the one event loop while the two cores are shared with the load "
                    "generator and the machine's other work."
                )
            elif what.startswith("REST batching"):
                why = (
                    " Batched REST is bounded by the REST front end's own cost per request "
                    "(unbatched REST reaches "
                    f"{p['timonel REST']['rps']:.0f} req/s), not by the model."
                )
            lines.append(f"- {model} model: {what} is {value:.2f} (goal {goal}).{why}")
    if not lines:
        return "Every goal is met in this run.\n"
    return "Goals missed in this run:\n\n" + "\n".join(lines) + "\n"


def plot(results: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(results), figsize=(6 * len(results), 8), squeeze=False)
    for column, (model, result) in enumerate(results.items()):
        for peer in PEERS:
            points = result["points"][peer]
            axes[0][column].plot(
                list(points), [p["rps"] for p in points.values()], marker="o", label=peer
            )
            axes[1][column].plot(
                list(points), [p["p99_ms"] for p in points.values()], marker="o", label=peer
            )
        axes[0][column].set_title(f"{model} model: throughput")
        axes[0][column].set_ylabel("requests / s")
        axes[1][column].set_title(f"{model} model: p99 latency")
        axes[1][column].set_ylabel("ms")
        for row in (0, 1):
            axes[row][column].set_xscale("log", base=2)
            axes[row][column].set_yscale("log")
            axes[row][column].set_xticks(LEVELS, [str(level) for level in LEVELS])
            axes[row][column].set_xlabel("concurrent clients")
            axes[row][column].grid(True, which="both", alpha=0.3)
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(PLOT, dpi=90)


def run_rows(results: dict[str, dict[str, Any]], cpu: str, load: str) -> list[str]:
    """This run's rows of the table of runs: one per model, unbatched figures and ratios."""
    rows = []
    for model, result in results.items():
        inproc, rest, grpc = (
            (result["points"][peer][8]["rps"], result["points"][peer][32]["rps"])
            for peer in ("in-process", "timonel REST", "timonel gRPC")
        )
        (rest_limit, rest_held), (grpc_limit, grpc_held) = (
            paired(result, peer) for peer in ("timonel REST", "timonel gRPC")
        )
        rows.append(
            f"| {time.strftime('%Y-%m-%d')} | {cpu} | {cpus_sized_for(result)} | {load} "
            f"| {model} | {inproc[0]:.0f}, {inproc[1]:.0f} | {rest[0]:.0f}, {rest[1]:.0f} "
            f"| {grpc[0]:.0f}, {grpc[1]:.0f} "
            f"| {rest_limit:.2f}, {grpc_limit:.2f} | {rest_held:.2f}, {grpc_held:.2f} |"
        )
    return rows


def runs_table(text: str, rows: list[str]) -> str:
    """The table of runs in ``text`` (the README) with ``rows`` added after the earlier runs."""
    earlier = ""
    if RUNS_BEGIN in text and RUNS_END in text:
        earlier = text[text.index(RUNS_BEGIN) + len(RUNS_BEGIN) : text.index(RUNS_END)]
    header = RUNS_HEADER.splitlines()
    lines = [line for line in earlier.splitlines() if line.startswith("| ") and line not in header]
    return "\n".join([RUNS_BEGIN, RUNS_HEADER.rstrip("\n"), *lines, *rows, RUNS_END])


def write_readme(results: dict[str, dict[str, Any]], about: str, cpu: str, load: str) -> None:
    section = "\n".join(
        [
            BEGIN,
            "## Serving: `timonel serve` against KServe's Python server and the in-process limit",
            "",
            "`make bench` (or `python bench/serve.py`) measures and rewrites this section. "
            f"Each point is {SECONDS:g} s of closed-loop load from a separate process (`wrk` "
            "for REST, `h2load` for gRPC: both C, one connection per client), single-example "
            "requests; servers run one at a time. The in-process limit calls the SavedModel "
            "from the same number of threads, no network, one example per call as each client "
            "sends; batching merges calls, so it can pass this limit when the model's matmuls "
            "dominate. gRPC errors are the calls the server did not count as OK in its "
            "`request_count` metric (gRPC failures travel in trailers, which h2load does not "
            "read). KServe's server runs its V1 REST protocol (its gRPC speaks another API), so "
            "both gRPC ratios are against its REST figures. "
            f"Batching parameters: `{BATCHING.strip().replace(chr(10), ' ')}`.",
            "",
            f"The unbatched points at 8 and 32 clients are taken in {ROUNDS} rounds, as the "
            "machine's speed drifts over minutes (other work shares its cores): in a round, "
            "each API's point at 32 clients comes between its own at 8 and the in-process "
            "limit's at 32, and every other round runs backwards, so a drift over a round "
            "tilts one round's ratios up and the next one's down. The tables show each point's "
            "median round, and the ratios to the limit and to 8 clients are the medians of the "
            "ratios taken within a round.",
            "",
            "What limits the figures (profiled with py-spy and perf on this machine): both "
            "APIs run on one uvloop event loop (REST on `timonel.server.rest_port`, which reads "
            "plain HTTP/1.1 requests itself, gRPC on timonel's own HTTP/2 server, "
            "`timonel.server.grpc_server`), and that loop, holding the GIL, is what a small "
            "model's unbatched throughput is bounded by. A call to a servable whose calls are "
            "measured short runs on the loop, where handing it to a thread and back would cost "
            "the loop more than the call; a longer one runs on one of the runner's threads, one "
            "per CPU, each op on one CPU (`timonel.server.sizing`). Answers wait while "
            "handlers of requests already read wait to start, then leave one write per "
            "connection (`timonel.server.outbox`), so the clients' next requests come back "
            "together and the loop reads them in one poll. Answering a canned Predict "
            "at 32 clients, grpc's thread-pool server did about 4,100 calls/s, `grpc.aio` 8,100 "
            "and the `h2` library 5,900, against 18,600 for `grpc_server`. Batched calls from "
            "both APIs await the scheduler on the loop and share batches, and a finished batch "
            "wakes the loop once for all its calls; *mean batch* is the server's own count "
            "(`processed_batch_size`) over the run. Full garbage collections over TensorFlow's "
            "Python objects (~0.2 s each) made the p99 tail until the heap was frozen after "
            "each load.",
            "",
            f"Machine: {about}. Run: {time.strftime('%Y-%m-%d')}.",
            "",
            "Runs so far, on each machine the benchmark ran on: unbatched req/s at 8 and 32 "
            "clients (calls/s for the in-process limit), the server's CPU count as it sized its "
            "threads (`timonel.server.sizing`: affinity mask and cgroup quota), and the "
            "machine's 1-minute load average before and after the run (other work shares the "
            "cores, so compare ratios within a row). Goals: at least 0.7 of the in-process "
            "limit at 32, and 32 clients never below 8.",
            "",
            "RUNS_TABLE",
            "",
            "![throughput and p99 latency](serve.png)",
            "",
            tables(results),
            missed(results),
            END,
        ]
    )
    text = (
        README.read_text()
        if README.exists()
        else "# Benchmarks\n\nEach benchmark compares against a peer measured in the same run.\n"
    )
    section = section.replace("RUNS_TABLE", runs_table(text, run_rows(results, cpu, load)))
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text)


def main() -> None:
    usage.parse_command_line("serve.py", __doc__)
    ensure_tool("wrk", "wrk")
    ensure_tool("h2load", "nghttp2-client")
    load_before = os.getloadavg()[0]
    about = machine()
    print(f"machine: {about}", flush=True)
    print(f"CPU model: {cpu_model()}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="timonel-bench-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, str(PARTS / "models.py"), str(work)], check=True, env=ENV)
        for model in MODELS:
            results[model] = measure(model, work)
    load_after = os.getloadavg()[0]
    about += (
        f"; 1-minute load average {load_before:.1f} before the run and "
        f"{load_after:.1f} after it (other work on the machine shares its cores)"
    )
    print()
    for model, result in results.items():
        print(f"{model} model: {result['sized']}")
    print(tables(results))
    plot(results)
    write_readme(results, about, cpu_model(), f"{load_before:.1f}, {load_after:.1f}")
    print(f"wrote {README.relative_to(BENCH.parent)} and {PLOT.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
