"""Publishing throughput and memory: ``timonel.publish`` against a plain ``gcsfs`` put.

One run on this machine, one fake-gcs-server on loopback, the same SavedModel-sized folder
(``BENCH_PACKAGE_MB``, default 1100 MB: a saved_model.pb and random variable shards). Peers, each
in its own process so its peak RSS is its own:

- plain: gcsfs ``put_file`` of every file, one after the other (a single stream, gcsfs defaults);
- timonel: ``timonel.publish`` of the same files as a release (SHA-256 of every file, claim,
  parallel streamed uploads, manifest).

Prints seconds, MB/s, the throughput ratio (goal >= 2) and each process's peak RSS (goal for the
publish < 300 MB), and rewrites this benchmark's section of ``bench/README.md``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOTAL_MB = int(os.environ.get("BENCH_PACKAGE_MB", "1100"))
SHARD_MB = 128
GOAL_RATIO, GOAL_RSS_MB = 2.0, 300

sys.path.insert(0, str(ROOT / "tests"))
import emulators  # noqa: E402  (the test suite's emulator launcher)
import readme  # noqa: E402  (bench/readme.py)
import usage  # noqa: E402  (bench/usage.py)

from timonel.releases.storage import DEFAULT_WORKERS  # noqa: E402

PLAIN = """
import json, resource, sys, time
from pathlib import Path
from gcsfs.core import GCSFileSystem
folder, target, endpoint = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
fs = GCSFileSystem(endpoint_url=endpoint, token="anon")
start = time.perf_counter()
for path in sorted(p for p in folder.rglob("*") if p.is_file()):
    fs.put_file(str(path), f"{target}/{path.relative_to(folder).as_posix()}")
seconds = time.perf_counter() - start
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss_mb}))
"""

TIMONEL = """
import json, resource, sys, time
from pathlib import Path
import timonel
folder, repo, endpoint, workers = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
signature = timonel.SignatureDef(
    inputs={"x": timonel.TensorInfo("DT_FLOAT", (-1, 1024))},
    outputs={"y": timonel.TensorInfo("DT_FLOAT", (-1, 10))},
    method_name="tensorflow/serving/predict",
)
start = time.perf_counter()
release = timonel.publish(
    files, repo=repo, name="bench", version=1, signature_name="serving_default",
    signatures={"serving_default": signature}, tensorflow_version="2.21.0", source=str(folder),
    storage_options={"endpoint_url": endpoint, "token": "anon"}, workers=workers,
)
seconds = time.perf_counter() - start
assert release.manifest.size_bytes == sum(p.stat().st_size for p in files.values())
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss_mb}))
"""


def make_model_folder(folder: Path, total_mb: int) -> int:
    """A SavedModel's shape: saved_model.pb, variables.index and random variable shards."""
    shards = max(1, round(total_mb / SHARD_MB))
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(os.urandom(200 << 10))
    (folder / "variables" / "variables.index").write_bytes(os.urandom(64 << 10))
    remaining = total_mb << 20
    for index in range(shards):
        size = remaining // (shards - index)
        remaining -= size
        name = f"variables.data-{index:05d}-of-{shards:05d}"
        with (folder / "variables" / name).open("wb") as out:
            for _ in range(size >> 20):
                out.write(os.urandom(1 << 20))
            out.write(os.urandom(size & ((1 << 20) - 1)))
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_peer(code: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("STORAGE_EMULATOR_HOST", None)  # both peers get the endpoint explicitly
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if done.returncode != 0:
        raise SystemExit(f"peer failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    usage.parse_command_line("package.py", __doc__)
    with tempfile.TemporaryDirectory(prefix="timonel-bench-") as scratch:
        work = Path(scratch)
        folder = work / "model"
        print(f"writing a {TOTAL_MB} MB SavedModel-sized folder ...", flush=True)
        total = make_model_folder(folder, TOTAL_MB)
        (work / "gcs").mkdir()
        with emulators.gcs_emulator(work / "gcs") as gcs:
            print("plain gcsfs put, one file after another ...", flush=True)
            plain = run_peer(PLAIN, str(folder), gcs.uri("plain"), gcs.endpoint)
            print("timonel publish, one file at a time ...", flush=True)
            serial = run_peer(TIMONEL, str(folder), gcs.uri("serial"), gcs.endpoint, "1")
            print("timonel publish ...", flush=True)
            ours = run_peer(
                TIMONEL, str(folder), gcs.uri("repo"), gcs.endpoint, str(DEFAULT_WORKERS)
            )
    mb = total / 1e6
    ratio = plain["seconds"] / ours["seconds"]
    rows = [
        ("plain gcsfs put (single stream)", plain),
        ("timonel publish, 1 worker", serial),
        (f"timonel publish, {DEFAULT_WORKERS} workers (default)", ours),
    ]
    lines = [
        "## Packaging: `timonel publish` against a plain `gcsfs` put",
        "",
        "`python bench/package.py` measures and rewrites this section. One fake-gcs-server on "
        f"loopback; the same {mb:.0f} MB SavedModel-sized folder (saved_model.pb, "
        f"variables.index and {SHARD_MB} MB random variable shards) uploaded by each peer in its "
        "own process. The plain peer calls gcsfs `put_file` on each file in turn with gcsfs "
        "defaults; timonel's publish includes hashing every file, the claim and the manifest. "
        "Peak RSS is the process's `ru_maxrss`, imports included. Two things make the "
        "difference: each file goes up as one streamed request (gcsfs's put sends 50 MB "
        "resumable chunks, each read whole into memory, and the emulator re-handles every "
        "chunk), and several files go up at once (the 1-worker row separates the two).",
        "",
        f"Machine: {os.cpu_count()} vCPU, Linux {platform.release()}, Python "
        f"{platform.python_version()}, gcsfs {metadata.version('gcsfs')}, "
        f"fsspec {metadata.version('fsspec')}. Run: {time.strftime('%Y-%m-%d')}.",
        "",
        "| peer | seconds | MB/s | peak RSS MB |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {name} | {r['seconds']:.1f} | {mb / r['seconds']:.0f} | {r['rss_mb']:.0f} |"
            for name, r in rows
        ),
        "",
        "| measure | measured | goal | met |",
        "| --- | ---: | ---: | :---: |",
        f"| publish throughput / plain put | {ratio:.2f} | >= {GOAL_RATIO:g} | "
        f"{'yes' if ratio >= GOAL_RATIO else 'no'} |",
        f"| publish peak RSS (MB) | {ours['rss_mb']:.0f} | < {GOAL_RSS_MB} | "
        f"{'yes' if ours['rss_mb'] < GOAL_RSS_MB else 'no'} |",
    ]
    section = "\n".join(lines)
    print(section)
    readme.write_section("bench/package.py", section)


if __name__ == "__main__":
    main()
