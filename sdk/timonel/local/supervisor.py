"""A revision's ``timonel serve`` processes (replicas): fetch, start, probe, restart, drain, stop.

This plays the kubelet for the local controller, and the ReplicaSet for a revision's Deployment:
``ensure(key, spec, replicas=N)`` keeps N processes of the revision, numbered from 0 (each its own
ports, its own log, ``server.log`` then ``server-1.log``..., its own restart back-off), starting
the missing ones and stopping the highest-numbered extra ones. Each replica gets a thread that

1. runs the storage initializer once, as a process of its own (the model lands in the revision's
   ``model/`` folder, as KServe's init container fills ``/mnt/models``), or, for a local folder,
   in this thread (``storage_initializer.copy_here``);
2. starts ``python -m timonel serve`` on two free loopback ports, output appended to the
   revision's ``server.log``;
3. probes ``GET /v1/models/<isvc>`` (the readiness probe of KServe's TF Serving runtime) until the
   model is AVAILABLE;
4. when the process exits, or reports that its model failed to load, records how it ended (exit
   code and the tail of its log, as ``terminationMessagePolicy: FallbackToLogsOnError`` does) and
   starts it again after an exponential back-off (CrashLoopBackOff: doubling, capped, reset once
   a process stayed up).

The replicas of a revision share its model copy: the first to start runs the storage initializer
and the others wait for it, as pods on one node would share a cached model.

Every change of state is reported through ``on_change`` so the controller reconciles at once
instead of polling. A replica that stops (``stop``, a scale-down in ``ensure``) is first taken out
of ``replicas`` so that no new request is routed to it, then drained as Kubernetes drains a
terminating pod's endpoint: ``drain(key, rest)`` (the ingress's count of requests in flight to
that address) returns once none is left, and only then is the process terminated (SIGTERM, then
SIGKILL), the storage initializer's included, so a stop never waits for a copy stalled on the
network (a copy in this thread ends at its next chunk); a copy ended that way says so at the end
of the initializer's log. ``stop_all`` (the controller's shutdown) does not drain.

On Linux every process is started with a parent-death signal (``PR_SET_PDEATHSIG``): if the
process running the supervisor is killed outright (SIGKILL, a crash), its revisions die with it
instead of living on in their own sessions. The kernel sends it when the thread that started the
child ends; each revision's thread outlives its processes, so that is the supervisor's death.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from timonel.errors import TimonelError
from timonel.local.reconcile import Failure, Phase, RevisionObservation
from timonel.local.revisions import RevisionKey, RevisionStore
from timonel.local.storage_initializer import (
    COMPLETE_MARKER,
    CopyStopped,
    InitializerArgs,
    copy_here,
)

log = logging.getLogger(__name__)

#: Kubernetes keeps at most this much of a log as a termination message (FallbackToLogsOnError).
TERMINATION_MESSAGE_BYTES = 2048
TERMINATION_MESSAGE_LINES = 80

#: The command of a revision's storage initializer (``initializer_command``, or a stand-in), or
#: None to copy in the supervisor's process with ``copy_here``.
Initializer = Callable[[InitializerArgs], Sequence[str] | None]

#: Waits until no request is in flight to a revision's process at a REST address (host:port).
Drain = Callable[[RevisionKey, str], None]

#: ``prctl`` option: the signal a process gets when its parent (thread) ends.
_PR_SET_PDEATHSIG = 1


def no_drain(key: RevisionKey, rest: str) -> None:
    """For a supervisor no ingress routes through: nothing is in flight to wait for."""


@dataclass(frozen=True)
class ServeArgs:
    """What KServe's TF Serving runtime passes to the server, with local ports."""

    model_name: str
    model_base_path: Path
    grpc_port: int
    rest_port: int
    #: The predictor container's own ``args``, which KServe appends to the runtime's.
    extra: tuple[str, ...] = ()


def serve_command(args: ServeArgs) -> list[str]:
    """``timonel serve`` with the flags of KServe's ``kserve-tensorflow-serving`` runtime."""
    return [
        sys.executable,
        "-m",
        "timonel",
        "serve",
        f"--port={args.grpc_port}",
        f"--rest_api_port={args.rest_port}",
        f"--model_name={args.model_name}",
        f"--model_base_path={args.model_base_path}",
        "--rest_api_timeout_in_ms=60000",
        *args.extra,
    ]


@dataclass(frozen=True)
class Backoff:
    """CrashLoopBackOff: ``initial`` seconds doubling to ``cap``; reset after ``cap`` seconds up."""

    initial: float = 1.0
    cap: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.cap, self.initial * 2.0 ** max(0, failures - 1))


@dataclass(frozen=True)
class RevisionSpec:
    """What a revision's process needs: the model name TF Serving registers, the model URI and
    the container ``args`` of the predictor."""

    model_name: str
    storage_uri: str
    args: tuple[str, ...] = ()


class Supervisor:
    """Runs revisions' processes and keeps an observation of each for the reconciler."""

    def __init__(
        self,
        store: RevisionStore,
        initializer: Initializer,
        on_change: Callable[[RevisionKey], None],
        *,
        command: Callable[[ServeArgs], Sequence[str]] = serve_command,
        backoff: Backoff = Backoff(),
        probe_interval: float = 0.1,
        progress_deadline: float = 600.0,
        drain: Drain = no_drain,
    ) -> None:
        self._store = store
        self._initializer = initializer
        self._on_change = on_change
        self._command = command
        self._backoff = backoff
        self._probe_interval = probe_interval
        self._progress_deadline = progress_deadline
        self._drain = drain
        self._lock = threading.Lock()
        self._workers: dict[_Replica, _Worker] = {}
        self._observations: dict[_Replica, RevisionObservation] = {}
        self._copying: dict[RevisionKey, threading.Lock] = {}

    def observation(self, key: RevisionKey, *, has_been_ready: bool) -> RevisionObservation:
        """What the revision is doing: its first ready replica's state, else its first replica's,
        with the count of ready replicas; a revision with no process is Stopped (or never
        started)."""
        replicas = self.replicas(key)
        found = next(
            (seen for seen in replicas.values() if seen.phase is Phase.READY),
            next(iter(replicas.values()), None),
        )
        if found is None:
            return RevisionObservation(
                phase=Phase.STOPPED if has_been_ready else Phase.PENDING,
                has_been_ready=has_been_ready,
            )
        return dataclasses.replace(
            found,
            has_been_ready=has_been_ready or found.has_been_ready,
            ready_copies=sum(seen.phase is Phase.READY for seen in replicas.values()),
        )

    def replicas(self, key: RevisionKey) -> dict[int, RevisionObservation]:
        """The state of each of the revision's processes, by replica number, in order."""
        with self._lock:
            found = {r.index: seen for r, seen in self._observations.items() if r.key == key}
        return dict(sorted(found.items()))

    def running(self) -> set[RevisionKey]:
        """The revisions with at least one process."""
        with self._lock:
            return {replica.key for replica in self._workers}

    def pid(self, key: RevisionKey, replica: int = 0) -> int | None:
        """The server process of one of the revision's replicas, if it runs now."""
        with self._lock:
            worker = self._workers.get(_Replica(key, replica))
        return worker.pid() if worker else None

    def ensure(self, key: RevisionKey, spec: RevisionSpec, *, replicas: int = 1) -> None:
        """Run ``replicas`` processes of the revision: start the missing ones, and drain and stop
        the extra ones, highest-numbered first."""
        started: list[_Worker] = []
        with self._lock:
            for index in range(replicas):
                replica = _Replica(key, index)
                if replica not in self._workers:
                    worker = _Worker(self, replica, spec)
                    self._workers[replica] = worker
                    self._observations[replica] = RevisionObservation()
                    started.append(worker)
            extra = [r for r in self._workers if r.key == key and r.index >= replicas]
        for worker in started:
            worker.start()
        for replica in sorted(extra, key=lambda r: r.index, reverse=True):
            self._retire(replica)

    def stop(self, key: RevisionKey, replica: int | None = None) -> None:
        """Drain and terminate the revision's processes and forget their state (it was scaled
        to zero, or left the traffic); with ``replica``, that one only (its Pod was deleted: the
        next ``ensure`` starts it again)."""
        with self._lock:
            replicas = [r for r in self._workers if r.key == key and replica in (None, r.index)]
        for found in sorted(replicas, key=lambda r: r.index, reverse=True):
            self._retire(found)
        if replica is None:
            with self._lock:
                self._copying.pop(key, None)

    def stop_all(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.request_stop()
        for worker in workers:
            worker.stop()
        with self._lock:
            self._observations.clear()
            self._copying.clear()

    def _retire(self, replica: _Replica) -> None:
        """Take the replica out of ``replicas`` (no new request goes to it), let the requests in
        flight to it finish, then terminate it."""
        with self._lock:
            worker = self._workers.pop(replica, None)
            seen = self._observations.pop(replica, None)
        if worker is None:
            return
        self._on_change(replica.key)
        if seen is not None and seen.rest:
            self._drain(replica.key, seen.rest)
        worker.stop()

    # --- for the workers ---

    def _copy_lock(self, key: RevisionKey) -> threading.Lock:
        """One storage initializer per revision: its replicas share the copy."""
        with self._lock:
            return self._copying.setdefault(key, threading.Lock())

    def _report(self, replica: _Replica, **changes: object) -> None:
        with self._lock:
            if replica not in self._workers:
                return
            current = self._observations.get(replica, RevisionObservation())
            updated = dataclasses.replace(current, **changes)  # type: ignore[arg-type]  # the workers pass RevisionObservation's own field names
            if updated == current:
                return
            self._observations[replica] = updated
        self._on_change(replica.key)


@dataclass(frozen=True)
class _Replica:
    """One of a revision's processes: the revision and the replica's number."""

    key: RevisionKey
    index: int


class _Worker:
    """The life of one replica's process, on its own thread."""

    def __init__(self, owner: Supervisor, replica: _Replica, spec: RevisionSpec) -> None:
        self._owner = owner
        self._replica = replica
        self._key = replica.key
        self._spec = spec
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None  # the server
        self._initializing: subprocess.Popen[bytes] | None = None  # the storage initializer
        self._process_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"revision {replica.key} replica {replica.index}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def pid(self) -> int | None:
        with self._process_lock:
            process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def request_stop(self) -> None:
        self._stopping.set()
        self._terminate()

    def stop(self) -> None:
        self.request_stop()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        failures = 0
        restarts = 0
        while not self._stopping.is_set():
            failure, uptime = self._attempt(restarts)
            if self._stopping.is_set():
                return
            if failure is None:
                return
            if uptime >= self._owner._backoff.cap:
                failures = 0
            failures += 1
            restarts += 1
            self._owner._report(
                self._replica,
                phase=Phase.FAILED,
                last_failure=failure,
                restarts=restarts,
                rest="",
                grpc="",
            )
            log.warning("revision %s failed (%s); restarting", self._key, failure.message[-200:])
            if self._stopping.wait(self._owner._backoff.delay(failures)):
                return

    def _attempt(self, restarts: int) -> tuple[Failure | None, float]:
        """Initialize if needed and run the server to its end: (how it ended, seconds it ran)."""
        store = self._owner._store
        model_dir = store.model_dir(self._key)
        with self._owner._copy_lock(self._key):
            if not (model_dir / COMPLETE_MARKER).exists():
                self._owner._report(self._replica, phase=Phase.INITIALIZING)
                failure = self._initialize(model_dir)
                if failure is not None or self._stopping.is_set():
                    return failure, 0.0
        rest_port, grpc_port = _free_ports(2)
        args = ServeArgs(self._spec.model_name, model_dir, grpc_port, rest_port, self._spec.args)
        command = list(self._owner._command(args))
        log_path = store.server_log(self._key, self._replica.index)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(log_path, "ab") as output:
            output.write(f"--- start {restarts}: {' '.join(command)}\n".encode())
            output.flush()
            offset = output.tell()
            with self._process_lock:
                if self._stopping.is_set():
                    return None, 0.0
                self._process = _spawn(command, stdout=output, stderr=subprocess.STDOUT)
        self._owner._report(
            self._replica,
            phase=Phase.STARTING,
            rest=f"127.0.0.1:{rest_port}",
            grpc=f"127.0.0.1:{grpc_port}",
        )
        failure = self._watch(rest_port, started, log_path, offset)
        return failure, time.monotonic() - started

    def _initialize(self, model_dir: Path) -> Failure | None:
        """Run the storage initializer to its end; a Failure with its termination message."""
        log_path = self._owner._store.initializer_log(self._key)
        args = InitializerArgs(self._spec.storage_uri, model_dir, log_path)
        command = self._owner._initializer(args)
        if command is None:
            return self._copy_here(args)
        with self._process_lock:
            if self._stopping.is_set():
                return None
            process = _spawn(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._initializing = process
        _, said = process.communicate()
        if process.returncode == 0:
            return None
        if self._stopping.is_set():
            _append(
                log_path,
                f"--- stopped: the revision was stopped before its copy finished; the storage "
                f"initializer ended with {_ending(process.returncode)}\n",
            )
            return None
        message = said.decode("utf-8", errors="replace").strip() or (
            f"the storage initializer exited with code {process.returncode}; its log is {log_path}"
        )
        return Failure(message, exit_code=_exit_code(process.returncode), in_initializer=True)

    def _copy_here(self, args: InitializerArgs) -> Failure | None:
        """A local copy in this thread: no process start to pay; a stop ends it at a chunk."""
        try:
            copy_here(args, self._stopping)
        except CopyStopped:
            return None
        except TimonelError as exc:
            return Failure(str(exc), exit_code=1, in_initializer=True)
        return None

    def _watch(self, rest_port: int, started: float, log_path: Path, offset: int) -> Failure | None:
        """Probe until ready, then wait for an exit; a Failure unless we were asked to stop."""
        ready = False
        url = f"http://127.0.0.1:{rest_port}/v1/models/{self._spec.model_name}"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                with self._process_lock:
                    process = self._process
                if process is None:
                    return None
                code = process.poll()
                if code is not None:
                    if self._stopping.is_set():
                        return None
                    message = _termination_message(log_path, offset, code)
                    return Failure(message, exit_code=_exit_code(code))
                if not ready:
                    state, error = _probe(client, url)
                    if state == "AVAILABLE":
                        ready = True
                        self._mark_ready()
                    elif error:
                        self._terminate()
                        return Failure(error, exit_code=1)
                    elif time.monotonic() - started > self._owner._progress_deadline:
                        self._terminate()
                        return Failure(
                            f"{self._spec.model_name} was not AVAILABLE after "
                            f"{self._owner._progress_deadline:.0f} s (Knative's progress "
                            f"deadline); the server's log is {log_path}",
                            exit_code=1,
                        )
                if self._stopping.wait(self._owner._probe_interval if not ready else 0.5):
                    return None

    def _mark_ready(self) -> None:
        self._owner._report(self._replica, phase=Phase.READY, has_been_ready=True)

    def _terminate(self) -> None:
        with self._process_lock:
            processes = [self._initializing, self._process]
        for process in processes:
            if process is not None and process.poll() is None:
                _end(process)


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's session, then SIGKILL if it is still there after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _spawn(
    command: Sequence[str], *, stdout: IO[bytes] | int, stderr: int
) -> subprocess.Popen[bytes]:
    """Start a revision's process in its own session, set to die with this one."""
    return subprocess.Popen(
        command,
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")},
        start_new_session=True,
        preexec_fn=_death_signal(),
    )


def _death_signal() -> Callable[[], None] | None:
    """For ``preexec_fn``: ask Linux to SIGKILL the child when its parent thread ends.

    ``prctl`` is looked up in the parent, so the child makes two system calls before it execs; a
    parent that died before ``prctl`` took effect is caught by the ``getppid`` check.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal


@functools.cache
def _prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def _probe(client: httpx.Client, url: str) -> tuple[str, str]:
    """(state of the newest version, load error) from TF Serving's model status endpoint."""
    try:
        response = client.get(url)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return "", ""
    versions = body.get("model_version_status") if isinstance(body, dict) else None
    if not versions:
        return "", ""
    newest = max(versions, key=lambda item: int(item.get("version") or 0))
    state = str(newest.get("state", ""))
    status = newest.get("status") or {}
    error = str(status.get("error_message") or "")
    if state == "END" and status.get("error_code") not in (None, "", "OK"):
        return (
            state,
            error or f"model version {newest.get('version')} ended with {status.get('error_code')}",
        )
    return state, ""


def _termination_message(log_path: Path, offset: int, code: int) -> str:
    """The tail of this run's log, as Kubernetes keeps it; the exit code if it wrote nothing."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(offset, size - TERMINATION_MESSAGE_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        tail = ""
    lines = [line for line in tail.splitlines() if line.strip()]
    text = "\n".join(lines[-TERMINATION_MESSAGE_LINES:]).strip()
    return text or f"the server exited with code {code} and wrote nothing to {log_path}"


def _append(path: Path, text: str) -> None:
    """Add a line to a revision's log; a log removed with its revision is no error."""
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        log.debug("could not write to %s: %s", path, exc)


def _ending(code: int) -> str:
    """How a process ended, as a Popen return code says it: ``SIGTERM (exit code 143)``."""
    if code < 0:
        return f"{signal.Signals(-code).name} (exit code {_exit_code(code)})"
    return f"exit code {code}"


def _exit_code(code: int) -> int:
    """A negative Popen code (killed by signal N) becomes 128+N, as a container runtime reports."""
    return 128 - code if code < 0 else code


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
