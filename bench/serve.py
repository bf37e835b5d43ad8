"""Serving throughput and latency: ``timonel serve`` against KServe's Python server and the limit.

One run on this machine, same SavedModels (a small and a large MLP), same load generators, each
in its own process: ``wrk`` for REST (closed loop, one connection per client), a ``grpc.aio``
generator for gRPC, 1, 8 and 32 concurrent clients sending single-example requests for
``BENCH_SECONDS`` (default 5) each. Peers:

- ``timonel serve`` over REST, over gRPC, and over REST with ``--enable_batching``;
- KServe's own model server (``kserve.Model`` around the same SavedModel, V1 protocol);
- the limit: the model called in one process by the same number of threads, no network.

Prints throughput, p50 and p99 for each, and the ratios the serving issue sets as goals; writes
the figures and a plot into ``bench/README.md`` and ``bench/serve.png``. Servers run one at a
time, so on a small machine they never compete with each other for cores.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

import serving  # noqa: E402  (tests/serving.py: starts and stops servers)

PARTS = BENCH / "serve_parts"
README = BENCH / "README.md"
PLOT = BENCH / "serve.png"
LEVELS = (1, 8, 32)
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
MODELS = {"small": 64, "large": 1024}  # name → input features (serve_parts/models.py)
BATCHING = """\
max_batch_size { value: 32 }
batch_timeout_micros { value: 1000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 64 }
"""
PEERS = ("timonel REST", "timonel gRPC", "timonel REST batching", "KServe", "in-process")
BEGIN, END = "<!-- bench/serve.py: begin -->", "<!-- bench/serve.py: end -->"
ENV = serving.ENV


def ensure_tool(name: str) -> str:
    """wrk comes from Debian; install it on a fresh machine (the bench runs as root there)."""
    found = shutil.which(name)
    if found:
        return found
    print(f"installing {name} with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", name],
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


def wrk(url: str, body: Path, clients: int) -> dict[str, float]:
    def command(seconds: float) -> list[str]:
        script = str(PARTS / "post.lua")
        load = ["-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s"]
        return ["wrk", *load, "-s", script, url, "--", str(body)]

    subprocess.run(command(1), capture_output=True, check=True)  # warm up
    out = subprocess.run(
        command(SECONDS), capture_output=True, text=True, check=True, timeout=SECONDS + 60
    ).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    return {
        "requests": result["requests"],
        "errors": result["errors"] + result["non_2xx"],
        "seconds": result["seconds"],
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
    }


def grpc_load(target: str, request: Path, clients: int) -> dict[str, float]:
    command = [sys.executable, str(PARTS / "grpc_load.py"), target, str(request), str(clients)]
    subprocess.run([*command, "1"], capture_output=True, check=True, env=ENV)  # warm up
    out = subprocess.run(
        [*command, f"{SECONDS:g}"],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
        timeout=SECONDS + 60,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summary(result: dict[str, float]) -> dict[str, float]:
    return {**result, "rps": result["requests"] / result["seconds"]}


def measure(model: str, work: Path) -> dict[str, Any]:
    base, body, request = work / model, work / f"{model}.json", work / f"{model}.pb"
    points: dict[str, dict[int, dict[str, float]]] = {peer: {} for peer in PEERS}
    rss: dict[str, int] = {}
    print(f"\n== {model} model", flush=True)

    out = subprocess.run(
        [
            sys.executable,
            str(PARTS / "inprocess.py"),
            str(base / "1"),
            str(MODELS[model]),
            f"{SECONDS:g}",
            *map(str, LEVELS),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    ).stdout
    for line in out.splitlines():
        record = json.loads(line)
        if "rss_bytes" in record:
            rss["TensorFlow with the model"] = record["rss_bytes"]
        else:
            points["in-process"][record.pop("concurrency")] = summary(record)
    print("  in-process done", flush=True)

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
    ]
    status = f"http://127.0.0.1:{rest_port}/v1/models/{model}"
    with server(timonel, status, work / f"timonel-{model}.log") as process:
        for clients in LEVELS:
            points["timonel REST"][clients] = summary(wrk(f"{status}:predict", body, clients))
            points["timonel gRPC"][clients] = summary(
                grpc_load(f"127.0.0.1:{grpc_port}", request, clients)
            )
        rss["timonel serve"] = tree_rss(process.pid)
    print("  timonel serve done", flush=True)

    batching = work / "batching.config"
    batching.write_text(BATCHING)
    with server(
        [*timonel, "--enable_batching", "--batching_parameters_file", str(batching)],
        status,
        work / f"batching-{model}.log",
    ) as process:
        for clients in LEVELS:
            points["timonel REST batching"][clients] = summary(
                wrk(f"{status}:predict", body, clients)
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
    return {"points": points, "rss": rss}


def ratios(result: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(what, measured, goal, met) for each goal of the serving issue, at 32 clients."""
    p = {peer: result["points"][peer][32] for peer in PEERS}
    rss = result["rss"]
    rest = p["timonel REST"]["rps"] / p["KServe"]["rps"]
    p99 = p["timonel REST"]["p99_ms"] / p["KServe"]["p99_ms"]
    grpc = p["timonel gRPC"]["rps"] / p["KServe"]["rps"]
    batching = p["timonel REST batching"]["rps"] / p["in-process"]["rps"]
    memory = rss["timonel serve"] / rss["TensorFlow with the model"]
    return [
        ("REST throughput / KServe", rest, ">= 2", rest >= 2),
        ("REST p99 / KServe p99", p99, "<= 1", p99 <= 1),
        ("gRPC throughput / KServe", grpc, ">= 3", grpc >= 3),
        ("REST batching throughput / in-process", batching, ">= 0.5", batching >= 0.5),
        ("timonel serve RSS / TensorFlow RSS", memory, "<= 1.3", memory <= 1.3),
    ]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = psutil.virtual_memory().total / 2**30
    versions = [metadata.version(name) for name in ("tensorflow-cpu", "kserve", "grpcio")]
    wrk_version = (
        subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    )
    return (
        f"{os.cpu_count()} vCPU {cpu}, {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, TensorFlow {versions[0]}, kserve {versions[1]}, "
        f"grpcio {versions[2]}, {wrk_version}"
    )


def tables(results: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for model, result in results.items():
        lines += [
            f"**{model} model** (`write_mlp` with {MODELS[model]} inputs)",
            "",
            "| server | clients | req/s | p50 ms | p99 ms | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for peer in PEERS:
            for clients, point in result["points"][peer].items():
                cells = (point["rps"], point["p50_ms"], point["p99_ms"], point["errors"])
                lines.append(
                    f"| {peer} | {clients} | {cells[0]:.0f} | {cells[1]:.2f} | {cells[2]:.2f} "
                    f"| {cells[3]:.0f} |"
                )
        lines += [
            "",
            "| ratio at 32 clients | measured | goal | met |",
            "| --- | ---: | ---: | :---: |",
        ]
        for what, value, goal, met in ratios(result):
            lines.append(f"| {what} | {value:.2f} | {goal} | {'yes' if met else 'no'} |")
        rss = ", ".join(f"{name} {value / 2**20:.0f} MiB" for name, value in result["rss"].items())
        lines += ["", f"Resident memory: {rss}.", ""]
    return "\n".join(lines)


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


def write_readme(results: dict[str, dict[str, Any]], about: str) -> None:
    section = "\n".join(
        [
            BEGIN,
            "## Serving: `timonel serve` against KServe's Python server and the in-process limit",
            "",
            "`make bench` (or `python bench/serve.py`) measures and rewrites this section. "
            f"Each point is {SECONDS:g} s of closed-loop load from a separate process (`wrk` "
            "for REST, a `grpc.aio` generator for gRPC), single-example requests; servers run "
            "one at a time. The in-process limit calls the SavedModel from the same number of "
            "threads, no network, one example per call as each client sends; batching merges "
            "calls, so it can pass this limit when the model's matmuls dominate. "
            f"Batching parameters: `{BATCHING.strip().replace(chr(10), ' ')}`.",
            "",
            f"Machine: {about}. Run: {time.strftime('%Y-%m-%d')}.",
            "",
            "![throughput and p99 latency](serve.png)",
            "",
            tables(results),
            END,
        ]
    )
    text = (
        README.read_text()
        if README.exists()
        else "# Benchmarks\n\nEach benchmark compares against a peer measured in the same run.\n"
    )
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text)


def main() -> None:
    ensure_tool("wrk")
    load_before = os.getloadavg()[0]
    about = machine()
    print(f"machine: {about}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="timonel-bench-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, str(PARTS / "models.py"), str(work)], check=True, env=ENV)
        for model in MODELS:
            results[model] = measure(model, work)
    about += (
        f"; 1-minute load average {load_before:.1f} before the run and "
        f"{os.getloadavg()[0]:.1f} after it (other work on the machine shares its cores)"
    )
    print()
    print(tables(results))
    plot(results)
    write_readme(results, about)
    print(f"wrote {README.relative_to(BENCH.parent)} and {PLOT.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
