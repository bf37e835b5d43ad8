"""The revision supervisor: fetch, start, probe, restart with back-off, stop (stand-in server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from timonel.local.reconcile import Phase, RevisionObservation
from timonel.local.revisions import RevisionKey, RevisionStore
from timonel.local.storage_initializer import InitializerArgs, initializer_command
from timonel.local.supervisor import Backoff, RevisionSpec, Supervisor

from .standin_server import standin_command, write_model

KEY = RevisionKey("models", "half", "half-predictor-00001")


class Changes:
    """Counts on_change calls and lets a test wait for a condition on the supervisor."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, key: RevisionKey) -> None:
        self.event.set()

    def wait_for(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting for the supervisor"
            self.event.wait(min(remaining, 0.5))
            self.event.clear()


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def supervisor(tmp_path: Path, changes: Changes) -> Iterator[Supervisor]:
    running = Supervisor(
        RevisionStore(tmp_path / "state"),
        initializer_command,
        changes,
        command=standin_command,
        backoff=Backoff(initial=0.1, cap=1.0),
        probe_interval=0.05,
    )
    yield running
    running.stop_all()


def observe(supervisor: Supervisor) -> RevisionObservation:
    return supervisor.observation(KEY, has_been_ready=False)


def test_revision_starts_from_a_copy_and_answers(
    supervisor: Supervisor, changes: Changes, tmp_path: Path
) -> None:
    model = write_model(tmp_path / "repo" / "half", version=3)
    supervisor.ensure(KEY, RevisionSpec("half", str(model)))
    changes.wait_for(lambda: observe(supervisor).phase is Phase.READY)

    seen = observe(supervisor)
    assert seen.has_been_ready and seen.restarts == 0 and seen.last_failure is None
    reply = httpx.post(f"http://{seen.rest}/v1/models/half:predict", json={"instances": [1]})
    assert reply.json() == {"predictions": [3]}
    state = tmp_path / "state" / "revisions" / "models" / "half" / KEY.revision
    assert (state / "model" / "3" / "saved_model.pb").read_bytes() == b"graph"
    assert "copying" in (state / "storage-initializer.log").read_text()
    assert "serving half version 3" in (state / "server.log").read_text()


def test_replicas_run_side_by_side_and_the_extra_ones_drain_before_they_stop(
    tmp_path: Path, changes: Changes
) -> None:
    drained: list[tuple[RevisionKey, str, list[int]]] = []
    pids: list[int] = []

    def drain(key: RevisionKey, rest: str) -> None:
        drained.append((key, rest, list(supervisor.replicas(key))))
        os.kill(pids[0], 0)  # still running while it drains

    supervisor = Supervisor(
        RevisionStore(tmp_path / "state"),
        initializer_command,
        changes,
        command=standin_command,
        probe_interval=0.05,
        drain=drain,
    )
    try:
        spec = RevisionSpec("half", str(write_model(tmp_path / "m")))
        supervisor.ensure(KEY, spec, replicas=2)
        changes.wait_for(
            lambda: [s.phase for s in supervisor.replicas(KEY).values()] == [Phase.READY] * 2
        )
        first, second = supervisor.replicas(KEY).values()
        assert first.rest != second.rest
        for seen in (first, second):
            reply = httpx.post(
                f"http://{seen.rest}/v1/models/half:predict", json={"instances": [1]}
            )
            assert reply.json() == {"predictions": [1]}
        state = tmp_path / "state" / "revisions" / "models" / "half" / KEY.revision
        assert "serving half" in (state / "server-1.log").read_text()
        pids.append(supervisor.pid(KEY, 1) or 0)

        supervisor.ensure(KEY, spec, replicas=1)

        # Taken out of the replicas before its drain, and stopped after it.
        assert drained == [(KEY, second.rest, [0])]
        with pytest.raises(ProcessLookupError):
            os.kill(pids[0], 0)
        assert supervisor.observation(KEY, has_been_ready=False).rest == first.rest
    finally:
        supervisor.stop_all()


def test_killed_process_is_restarted(
    supervisor: Supervisor, changes: Changes, tmp_path: Path
) -> None:
    supervisor.ensure(KEY, RevisionSpec("half", str(write_model(tmp_path / "m"))))
    changes.wait_for(lambda: observe(supervisor).phase is Phase.READY)
    first = supervisor.pid(KEY)
    assert first is not None

    os.kill(first, signal.SIGKILL)
    changes.wait_for(lambda: observe(supervisor).restarts == 1)
    changes.wait_for(lambda: observe(supervisor).phase is Phase.READY)

    seen = observe(supervisor)
    assert supervisor.pid(KEY) not in (None, first)
    assert seen.has_been_ready
    assert seen.last_failure is not None and seen.last_failure.exit_code == 128 + signal.SIGKILL
    assert httpx.get(f"http://{seen.rest}/v1/models/half").status_code == 200


def test_missing_model_fails_in_the_storage_initializer(
    supervisor: Supervisor, changes: Changes, tmp_path: Path
) -> None:
    missing = tmp_path / "nothing-here"
    supervisor.ensure(KEY, RevisionSpec("half", str(missing)))
    changes.wait_for(lambda: observe(supervisor).last_failure is not None)

    failure = observe(supervisor).last_failure
    assert failure is not None and failure.in_initializer
    assert failure.message.startswith(f"Failed to fetch model. No model found in {missing}")
    assert not observe(supervisor).has_been_ready


def test_server_that_cannot_load_reports_its_last_words(
    supervisor: Supervisor, changes: Changes, tmp_path: Path
) -> None:
    model = write_model(tmp_path / "m", version=2, graph=b"corrupt bytes")
    supervisor.ensure(KEY, RevisionSpec("half", str(model)))
    changes.wait_for(lambda: observe(supervisor).restarts >= 2)

    failure = observe(supervisor).last_failure
    assert failure is not None and not failure.in_initializer
    assert failure.exit_code == 1
    assert failure.message == "Failed to load servable half version 2: bad graph"


def test_stop_terminates_the_process(
    supervisor: Supervisor, changes: Changes, tmp_path: Path
) -> None:
    supervisor.ensure(KEY, RevisionSpec("half", str(write_model(tmp_path / "m"))))
    changes.wait_for(lambda: observe(supervisor).phase is Phase.READY)
    pid = supervisor.pid(KEY)
    assert pid is not None

    supervisor.stop(KEY)

    assert supervisor.pid(KEY) is None
    assert KEY not in supervisor.running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert supervisor.observation(KEY, has_been_ready=True).phase is Phase.STOPPED


def test_backoff_doubles_to_its_cap() -> None:
    backoff = Backoff(initial=1.0, cap=10.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


STALLED = """
import os, sys, time
from pathlib import Path
log = Path(sys.argv[1])
log.parent.mkdir(parents=True, exist_ok=True)
log.write_text(f"copying from an unreachable bucket, pid {os.getpid()}\\n")
time.sleep(600)
"""


def stalled_initializer(args: InitializerArgs) -> list[str]:
    """A storage initializer stuck on an unreachable bucket: it never finishes on its own. Its
    log's first line ends with its pid."""
    return [sys.executable, "-c", STALLED, str(args.log_path)]


def stalled_pid(log: Path, timeout: float = 20.0) -> int:
    """The pid of a started stalled initializer, once it has written its log."""
    deadline = time.monotonic() + timeout
    while not (log.is_file() and log.read_text().endswith("\n")):
        assert time.monotonic() < deadline, "the storage initializer never started"
        time.sleep(0.02)
    return int(log.read_text().split()[-1])


def assert_ended_by_stop(pid: int, log: Path) -> None:
    """The initializer process is gone (reaped, not a zombie), and its log says how it ended."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert log.read_text().splitlines()[-1] == (
        "--- stopped: the revision was stopped before its copy finished; the storage "
        "initializer ended with SIGTERM (exit code 143)"
    )


@pytest.mark.timeout(60)  # a stop that waited for the copy would hang for 600 s
def test_stop_ends_a_stalled_storage_initializer(changes: Changes, tmp_path: Path) -> None:
    store = RevisionStore(tmp_path)
    supervisor = Supervisor(store, stalled_initializer, changes)
    supervisor.ensure(KEY, RevisionSpec("half", "gs://unreachable/half/v1"))
    changes.wait_for(lambda: observe(supervisor).phase is Phase.INITIALIZING)
    pid = stalled_pid(store.initializer_log(KEY))

    supervisor.stop_all()

    assert KEY not in supervisor.running()
    assert_ended_by_stop(pid, store.initializer_log(KEY))


SUPERVISING = """
import sys, time
from pathlib import Path
from local.standin_server import standin_command
from timonel.local.revisions import RevisionKey, RevisionStore
from timonel.local.storage_initializer import InitializerArgs, initializer_command
from timonel.local.supervisor import RevisionSpec, Supervisor

key = RevisionKey("models", "half", "half-predictor-00001")
supervisor = Supervisor(
    RevisionStore(Path(sys.argv[1])), initializer_command, lambda _: None, command=standin_command
)
supervisor.ensure(key, RevisionSpec("half", sys.argv[2]))
while supervisor.observation(key, has_been_ready=False).phase.value != "Ready":
    time.sleep(0.05)
print(supervisor.pid(key), flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_revision_processes_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    model = write_model(tmp_path / "repo" / "half")
    tests = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen(
        [sys.executable, "-c", SUPERVISING, str(tmp_path / "state"), str(model)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), *sys.path])},
    )
    try:
        assert parent.stdout is not None
        revision = int(parent.stdout.readline())
        os.kill(revision, 0)  # it runs
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    try:
        while _alive(revision):
            assert time.monotonic() < deadline, f"revision {revision} outlived its supervisor"
            time.sleep(0.05)
    finally:
        if _alive(revision):
            os.killpg(revision, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
