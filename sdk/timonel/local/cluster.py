"""Starting, stopping and inspecting the local cluster's daemon from any process.

``up`` starts ``python -m timonel.local.daemon`` in its own session (it outlives the command),
waits until it has written ``daemon.json`` and answers on its API, and returns; calling it again
while the daemon runs returns the same cluster. ``down`` sends SIGTERM to the recorded pid (after
checking that pid is still a Timonel daemon) and waits for it to exit. Ports are remembered in
``settings.json`` so the URL in the kubeconfig stays the same across restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel.errors import ClusterUnreachable, SpecError, WaitTimeout
from timonel.local.home import Home

#: How long ``up`` waits for the daemon to serve, and ``down`` for it to exit.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
_DAEMON_MODULE = "timonel.local.daemon"


@dataclass(frozen=True)
class LocalStatus:
    """What ``timonel local status`` reports."""

    running: bool
    home: Path
    kubeconfig: Path
    pid: int | None = None
    url: str | None = None
    api_port: int | None = None
    ingress_port: int | None = None
    started: str | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_daemon(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) ``timonel.local.daemon`` process."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and _DAEMON_MODULE.encode() in cmdline


def _answers(url: str, token: str, ca: Path) -> bool:
    import httpx

    try:
        response = httpx.get(
            f"{url}/version",
            headers={"Authorization": f"Bearer {token}"},
            timeout=2.0,
            verify=ssl.create_default_context(cafile=str(ca)),
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def status(home: Home | None = None) -> LocalStatus:
    """Whether the local cluster runs, and where."""
    home = home or Home.default()
    daemon = _read_json(home.daemon_file)
    settings = _read_json(home.settings_file)
    pid = daemon.get("pid")
    running = isinstance(pid, int) and _is_daemon(pid)
    if not running:
        return LocalStatus(
            False,
            home.root,
            home.kubeconfig,
            api_port=settings.get("apiPort"),
            ingress_port=settings.get("ingressPort"),
        )
    return LocalStatus(
        True,
        home.root,
        home.kubeconfig,
        pid=pid,
        url=daemon.get("url"),
        api_port=daemon.get("apiPort"),
        ingress_port=daemon.get("ingressPort"),
        started=daemon.get("started"),
    )


def _check_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SpecError(
                f"port {port} on 127.0.0.1 is in use ({exc.strerror}); pass --api-port with a "
                "free port, or 0 to pick one",
                field="api_port",
            ) from exc


#: The ports ``up`` accepts: the API port may be 0 (any free port, picked when it binds); the
#: ingress port is kept for the router, so it must be a port one can reach.
_PORT_RANGES = {
    "api_port": (0, "from 1 to 65535, or 0 for any free port"),
    "ingress_port": (1, "from 1 to 65535"),
}


def _check_port(option: str, port: int | None) -> None:
    if port is None:
        return
    lowest, expected = _PORT_RANGES[option]
    if not lowest <= port <= 65535:
        flag = "--" + option.replace("_", "-")
        raise SpecError(
            f"{flag} {port} is out of range: expected a port {expected}; pass {flag} with a "
            "port in that range, or leave it out to reuse the last one",
            field=option,
        )


def _check_unchanged(option: str, asked: int | None, actual: int | None) -> None:
    """Refuse to ``up`` a running cluster with another port than the one it runs with."""
    if asked in (None, 0, actual):
        return
    flag = "--" + option.replace("_", "-")
    runs = f"with {flag} {actual}" if actual is not None else f"without {flag}"
    raise SpecError(
        f"the local cluster already runs {runs}; to use {flag} {asked}, run `timonel local down` "
        f"first, then `timonel local up {flag} {asked}`",
        field=option,
    )


def _log_tail(home: Home, lines: int = 15) -> str:
    try:
        text = home.log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])


def up(
    api_port: int | None = None,
    ingress_port: int | None = None,
    *,
    home: Home | None = None,
    timeout: float = START_TIMEOUT,
) -> LocalStatus:
    """Start the local cluster in the background (or find it running) and return its status.

    ``api_port``/``ingress_port`` None reuse the ports of the last start (any free API port the
    first time). Raises SpecError for a port out of range (the API port may be 0: any free port)
    or when a running cluster uses other ports, ClusterUnreachable when the daemon exits and
    WaitTimeout when it does not answer in time (both with the end of its log).
    """
    _check_port("api_port", api_port)
    _check_port("ingress_port", ingress_port)
    home = home or Home.default()
    current = status(home)
    if current.running:
        _check_unchanged("api_port", api_port, current.api_port)
        _check_unchanged("ingress_port", ingress_port, current.ingress_port)
        return current
    home.root.mkdir(parents=True, exist_ok=True)
    home.daemon_file.unlink(missing_ok=True)
    settings = _read_json(home.settings_file)
    port = api_port if api_port is not None else int(settings.get("apiPort") or 0)
    ingress = ingress_port if ingress_port is not None else settings.get("ingressPort")
    if port:
        _check_free(port)
    command = [sys.executable, "-m", _DAEMON_MODULE, "--home", str(home.root)]
    command += ["--api-port", str(port)]
    if ingress is not None:
        command += ["--ingress-port", str(ingress)]
    with open(home.log, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    token = home.token()
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ClusterUnreachable(
                f"the local cluster did not start (exit code {process.returncode}); the end of "
                f"{home.log}:\n{_log_tail(home)}"
            )
        daemon = _read_json(home.daemon_file)
        if daemon.get("pid") == process.pid and _answers(str(daemon["url"]), token, home.ca):
            break
        if time.monotonic() > deadline:
            process.terminate()
            raise WaitTimeout(
                f"the local cluster did not answer within {timeout:.0f}s; see {home.log}:\n"
                f"{_log_tail(home)}"
            )
        time.sleep(0.1)
    home.settings_file.write_text(
        json.dumps({"apiPort": daemon["apiPort"], "ingressPort": ingress}) + "\n",
        encoding="utf-8",
    )
    return status(home)


def down(*, home: Home | None = None, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the local cluster; returns False when it was not running. State is kept."""
    home = home or Home.default()
    current = status(home)
    if not current.running or current.pid is None:
        home.daemon_file.unlink(missing_ok=True)
        return False
    os.kill(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_daemon(current.pid):
        if time.monotonic() > deadline:
            os.kill(current.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    home.daemon_file.unlink(missing_ok=True)
    return True
