"""Connections to the local API server: a watch whose client leaves, and closing with clients on.

Both are read from the kernel's socket table (``/proc/net/tcp``): a socket the server still holds
open stays ESTABLISHED, or CLOSE_WAIT once its client has gone.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest

from timonel.local.apiserver import running

from .kubeapi import GROUP, PLURAL, TOKEN, VERSION, isvc

_HELD = {"01": "ESTABLISHED", "08": "CLOSE_WAIT"}


def held_by_server(port: int) -> list[str]:
    """States of the server side's sockets on ``port`` that are still open."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if int(local.split(":")[1], 16) == port and state in _HELD:
            found.append(_HELD[state])
    return found


def wait_until_released(port: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (held := held_by_server(port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return held


def test_a_watch_whose_client_leaves_ends_at_once_without_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with running(tmp_path, TOKEN, tls=True) as server:
        assert server.ca is not None
        verify = ssl.create_default_context(cafile=str(server.ca))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        path = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
        with (
            httpx.Client(base_url=server.url, headers=headers, verify=verify) as client,
            client.stream("GET", path, params={"watch": "true"}) as watch,
        ):
            assert watch.status_code == 200
        # The client is gone: the server lets go of the connection without waiting for an event
        # to write, and the events that follow are no error for it.
        assert wait_until_released(server.port) == []
        with httpx.Client(base_url=server.url, headers=headers, verify=verify) as client:
            assert client.post(path, json=isvc("after")).status_code == 201
        time.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == []


@pytest.mark.timeout(60)  # a close that waited for its clients to leave would hang: they stay
def test_close_ends_every_connection_though_its_clients_stay(tmp_path: Path) -> None:
    with contextlib.ExitStack() as clients:
        with running(tmp_path, TOKEN, tls=True) as server:
            assert server.ca is not None
            verify = ssl.create_default_context(cafile=str(server.ca))
            address = ("127.0.0.1", server.port)
            clients.enter_context(socket.create_connection(address))  # never says hello
            idle = clients.enter_context(socket.create_connection(address))
            clients.enter_context(verify.wrap_socket(idle, server_hostname="127.0.0.1"))
            watching = clients.enter_context(
                httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, verify=verify
                )
            )
            path = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
            watch = clients.enter_context(watching.stream("GET", path, params={"watch": "true"}))
            assert watch.status_code == 200
            assert held_by_server(server.port) == ["ESTABLISHED"] * 3
        # close() has returned with every client still connected, and has let go of each socket.
        assert held_by_server(server.port) == []
