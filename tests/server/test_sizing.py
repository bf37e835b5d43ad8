"""TensorFlow's pools and the runner's threads follow the CPUs, unless upstream's flags say."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from serverproc import StartServer

from timonel.server.options import ServerOptions
from timonel.server.sizing import ThreadSizing, thread_sizing


def options(**flags: Any) -> ServerOptions:
    return ServerOptions(model_base_path="/models/m", **flags)


@pytest.mark.parametrize(
    ("flags", "cpus", "sizing"),
    [
        # auto-configured: a runner thread per CPU the process may use, each op on one CPU
        ({}, 2, ThreadSizing(cpus=2, intra_op=1, inter_op=2, runner_threads=2)),
        ({}, 1, ThreadSizing(cpus=1, intra_op=1, inter_op=1, runner_threads=1)),
        ({}, 16, ThreadSizing(cpus=16, intra_op=1, inter_op=16, runner_threads=16)),
        # --tensorflow_session_parallelism sets both pools when neither of theirs is set
        (
            {"tensorflow_session_parallelism": 3},
            2,
            ThreadSizing(cpus=2, intra_op=3, inter_op=3, runner_threads=3),
        ),
        # one of the pair set: the other is auto-configured, session parallelism ignored
        (
            {"tensorflow_intra_op_parallelism": 1, "tensorflow_session_parallelism": 6},
            4,
            ThreadSizing(cpus=4, intra_op=1, inter_op=4, runner_threads=4),
        ),
        # three runner threads on 8 CPUs: each op on two of them
        (
            {"tensorflow_inter_op_parallelism": 3},
            8,
            ThreadSizing(cpus=8, intra_op=2, inter_op=3, runner_threads=3),
        ),
        # -1: calls run in their callers' threads, one runner thread per CPU
        (
            {"tensorflow_inter_op_parallelism": -1},
            2,
            ThreadSizing(cpus=2, intra_op=1, inter_op=-1, runner_threads=2),
        ),
    ],
)
def test_sizing_follows_the_cpus_and_the_flags(
    flags: dict[str, Any], cpus: int, sizing: ThreadSizing
) -> None:
    assert thread_sizing(options(**flags), cpus) == sizing


def test_with_batching_the_batch_threads_share_the_cpus_among_their_ops() -> None:
    assert thread_sizing(options(), 8, num_batch_threads=2) == ThreadSizing(
        cpus=8, intra_op=4, inter_op=8, runner_threads=8, batch_threads=2
    )
    assert thread_sizing(options(), 2, num_batch_threads=4).intra_op == 1


def test_batching_without_a_thread_count_has_one_batch_thread_per_cpu() -> None:
    sizing = thread_sizing(options(), 4, num_batch_threads=0)
    assert (sizing.batch_threads, sizing.intra_op) == (4, 1)


def test_the_start_up_line_names_the_cpus_and_every_pool() -> None:
    line = thread_sizing(options(), 2).describe()
    assert line == (
        "Sized for 2 CPUs: 2 runner threads, intra-op parallelism 1, inter-op parallelism 2"
    )
    batching = thread_sizing(options(), 2, num_batch_threads=1).describe()
    assert batching == (
        "Sized for 2 CPUs: 1 batch thread, intra-op parallelism 2, inter-op parallelism 2"
    )


@contextmanager
def affinity(cpus: set[int]) -> Iterator[None]:
    """Processes started in the block may use only ``cpus`` (a child inherits the mask)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.slow
def test_a_server_limited_to_one_cpu_sizes_for_it_where_no_flag_says_otherwise(
    server_factory: StartServer, model_repo: Path
) -> None:
    with affinity({min(os.sched_getaffinity(0))}):
        server = server_factory(
            f"--model_base_path={model_repo / 'hpt'}",
            "--model_name=hpt",
            "--tensorflow_inter_op_parallelism=3",
        )
    text = server.stderr.read_text()  # TensorFlow's own start-up lines are not JSON
    logged = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    sized = "Sized for 1 CPUs: 3 runner threads, intra-op parallelism 1, inter-op parallelism 3"
    assert {"level": "info", "logger": "timonel.server", "msg": sized} in [
        {key: entry.get(key) for key in ("level", "logger", "msg")} for entry in logged
    ]
    answer = httpx.post(f"{server.rest}/v1/models/hpt:predict", json={"instances": [1.0]})
    assert answer.status_code == 200
    # TensorFlow's inter-op pool, which names its threads tf_Compute, has the flag's size
    threads = Path(f"/proc/{server.process.pid}/task").glob("*/comm")
    assert [path.read_text().strip() for path in threads].count("tf_Compute") == 3
