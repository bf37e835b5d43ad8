"""The storage initializer: which copies run in a process of their own, and a copy in this one."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from timonel.local.storage_initializer import (
    COMPLETE_MARKER,
    CopyStopped,
    InitializerArgs,
    copy_here,
    initializer_command,
)

from .standin_server import write_model, write_release


def args(uri: str, tmp_path: Path) -> InitializerArgs:
    return InitializerArgs(uri, tmp_path / "rev" / "model", tmp_path / "rev" / "init.log")


@pytest.mark.parametrize(
    ("uri", "own_process"),
    [
        ("/repo/half/v1", False),
        ("file:///repo/half/v1", False),
        ("relative/half/v1", False),
        ("gs://bucket/half/v1", True),
        ("s3://bucket/half", True),
    ],
)
def test_only_a_bucket_is_copied_by_a_process_of_its_own(
    tmp_path: Path, uri: str, own_process: bool
) -> None:
    given = args(uri, tmp_path)
    command = initializer_command(given)
    if not own_process:
        assert command is None
        return
    assert command == [
        sys.executable,
        "-m",
        "timonel.local.storage_initializer",
        uri,
        str(given.model_dir),
        str(given.log_path),
    ]


@pytest.mark.parametrize("layout", ["release", "version folders"])
def test_a_local_copy_here_publishes_the_model_whole(tmp_path: Path, layout: str) -> None:
    if layout == "release":
        uri = "file://" + write_release(tmp_path / "repo", "half", 3)
    else:
        uri = str(write_model(tmp_path / "repo" / "half", version=3))
    given = args(uri, tmp_path)
    copy_here(given, threading.Event())
    assert (given.model_dir / "3" / "saved_model.pb").read_bytes() == b"graph"
    assert (given.model_dir / COMPLETE_MARKER).exists()
    log = given.log_path.read_text().splitlines()
    assert log[0].endswith(f" copying {uri} to {given.model_dir}")
    assert log[-1].endswith(" done")


class StopsAfterTheFirstChunk(threading.Event):
    """A stop that arrives while the first chunk is being copied."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def is_set(self) -> bool:
        self.asked += 1
        return self.asked > 1  # the first ask is before anything is copied


def test_a_stop_ends_a_copy_here_at_the_next_chunk_and_publishes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo" / "half"
    write_model(repo, version=1)
    write_model(repo, version=2)
    given = args(str(repo), tmp_path)
    stopping = StopsAfterTheFirstChunk()
    with pytest.raises(CopyStopped, match=f"stopped while copying {repo}"):
        copy_here(given, stopping)
    assert stopping.asked >= 2
    assert list(given.model_dir.parent.iterdir()) == [given.log_path]  # no model, no staging
    assert (
        given.log_path.read_text()
        .splitlines()[-1]
        .endswith(" stopped: the revision was stopped before its copy finished")
    )


def test_a_copy_asked_to_stop_before_it_starts_touches_nothing(tmp_path: Path) -> None:
    stopping = threading.Event()
    stopping.set()
    given = args(str(write_model(tmp_path / "repo" / "half")), tmp_path)
    with pytest.raises(CopyStopped):
        copy_here(given, stopping)
    assert not given.model_dir.parent.exists()
