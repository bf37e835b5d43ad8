"""Starting and stopping the API server: on a running event loop, or in a thread of its own.

The daemon behind ``timonel local up`` calls :func:`start` on its loop; tests and embedders use
:func:`running`, which serves from a background thread so synchronous clients (the
``kubernetes`` package, kubectl, KServeClient) can call it from the calling thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from timonel.kserve.manifests import serving_runtime
from timonel.kube.resources import CLUSTER_SERVING_RUNTIME
from timonel.local.apiserver import certs
from timonel.local.apiserver.http import BOOKMARK_INTERVAL, ApiServer
from timonel.local.apiserver.registry import Registry
from timonel.local.apiserver.store import DEFAULT_HISTORY, Store, resource_key
from timonel.local.apiserver.validation import validate
from timonel.local.revisions import RevisionStore

#: The SQLite file inside the state directory.
DATABASE = "cluster.db"
#: The namespace every cluster has.
DEFAULT_NAMESPACE = "default"


def open_registry(state_dir: Path, *, history: int = DEFAULT_HISTORY) -> Registry:
    """The registry over ``state_dir``'s database, validating InferenceServices as KServe does,
    with the ``default`` namespace and the TF Serving ClusterServingRuntime Timonel ships for
    GKE (``timonel.kserve.manifests.serving_runtime``), as installing KServe leaves a cluster."""
    state_dir.mkdir(parents=True, exist_ok=True)
    registry = Registry(Store(state_dir / DATABASE, history=history), validator=validate)
    registry.ensure_namespace(DEFAULT_NAMESPACE)
    runtime = serving_runtime()
    if registry.store.get(resource_key(CLUSTER_SERVING_RUNTIME), "", runtime["metadata"]["name"]):
        return registry
    registry.create(CLUSTER_SERVING_RUNTIME, "", runtime, manager="timonel-local")
    return registry


async def start(
    registry: Registry,
    token: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    bookmark_interval: float = BOOKMARK_INTERVAL,
    ssl_context: ssl.SSLContext | None = None,
    revisions: RevisionStore,
) -> Served:
    """Serve on the running loop until ``await served.close()``.

    ``revisions``: the controller's revision files, where ``kubectl logs`` reads a pod's output.
    """
    app = ApiServer(
        registry, token, bookmark_interval=bookmark_interval, revisions=revisions
    ).application()
    # handler_cancellation: a request whose client left is cancelled at once, so a watch ends
    # when its client disconnects instead of writing its next event to a closed connection.
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=_CLOSE_GRACE, handler_cancellation=True
    )
    await runner.setup()
    assert runner.server is not None  # set by setup()
    connections = _Connections(runner.server)
    # Created here rather than by aiohttp's TCPSite to bound the TLS close handshake (a client
    # that vanishes without close_notify would otherwise hold its connection for 30 s) and to
    # know every connection, so close() can end them all.
    server = await asyncio.get_running_loop().create_server(
        connections,
        host,
        port,
        ssl=ssl_context,
        ssl_shutdown_timeout=_TLS_SHUTDOWN if ssl_context else None,
    )
    return Served(runner, server, int(server.sockets[0].getsockname()[1]), connections)


#: Seconds a closing TLS connection waits for the client's close_notify.
_TLS_SHUTDOWN = 0.2
#: Seconds ``close`` lets requests, watches and connections end before it aborts them.
_CLOSE_GRACE = 1.0


class _Connections:
    """The protocol factory of the server: aiohttp's, plus the connections in their handshake.

    aiohttp closes the connections it knows (those past their TLS handshake) when it shuts down;
    one still in its handshake would stay open past the end of the event loop. The factory runs
    in the task that accepts the connection and performs its handshake, so that task is kept
    until it finishes, and cancelling it closes the connection.
    """

    def __init__(self, server: web.Server) -> None:
        self.server = server
        self._accepting: set[asyncio.Task[Any]] = set()

    def __call__(self) -> asyncio.BaseProtocol:
        task = asyncio.current_task()
        if task is not None:
            self._accepting.add(task)
            task.add_done_callback(self._accepting.discard)
        return self.server()

    def transports(self) -> list[asyncio.BaseTransport]:
        """The transports of the connections past their handshake."""
        found = (handler.transport for handler in self.server.connections)
        return [transport for transport in found if transport is not None]

    async def end_handshakes(self) -> None:
        """Close the connections still in their TLS handshake."""
        pending = list(self._accepting)
        for task in pending:
            task.cancel()  # asyncio closes the transport of a cancelled accept
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass(frozen=True)
class Served:
    """A server started by :func:`start`."""

    runner: web.AppRunner
    server: asyncio.Server
    port: int
    connections: _Connections

    async def close(self) -> None:
        """Stop accepting, end watches and requests, and close every connection (TLS or not).

        Returns once every accepted socket is closed: connections get ``_CLOSE_GRACE`` seconds to
        end well (requests finish, TLS close_notify), then the rest are aborted.
        """
        # Stop accepting first and let the connections accepted in this loop iteration start:
        # their accept tasks run on the next iteration, and on Python 3.11 one that runs after
        # close() fails (Server._attach asserts the server still listens) and leaves its socket
        # open and unknown to everyone.
        loop = asyncio.get_running_loop()
        for sock in self.server.sockets:
            loop.remove_reader(sock.fileno())
        # Waiting for the connections is wait_closed() started before close(): Python 3.11
        # returns at once when it is called after close().
        all_closed = asyncio.ensure_future(self.server.wait_closed())
        await asyncio.sleep(0)
        self.server.close()
        known = self.connections.transports()
        await self.runner.cleanup()
        await self.connections.end_handshakes()
        # Handshakes that completed during aiohttp's shutdown made connections it no longer sees.
        late = self.connections.transports()
        for transport in late:
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(all_closed), _CLOSE_GRACE)
        except TimeoutError:
            for transport in {*known, *late, *self.connections.transports()}:
                transport.abort()  # type: ignore[attr-defined]  # BaseTransport declares no abort; every socket transport has it
            await all_closed


@dataclass(frozen=True)
class Running:
    """A server started by :func:`running`."""

    url: str
    port: int
    token: str
    registry: Registry
    #: The CA certificate clients verify the server with (None: plain HTTP).
    ca: Path | None = None


@contextlib.contextmanager
def running(
    state_dir: Path,
    token: str,
    *,
    port: int = 0,
    history: int = DEFAULT_HISTORY,
    bookmark_interval: float = BOOKMARK_INTERVAL,
    tls: bool = False,
) -> Iterator[Running]:
    """Serve ``state_dir``'s cluster on 127.0.0.1 from a background thread until the block ends.

    With ``tls`` the server speaks HTTPS with a certificate from ``state_dir`` (kubectl sends its
    token only over HTTPS); ``Running.ca`` is the CA to verify it.
    """
    registry = open_registry(state_dir, history=history)
    found = certs.ensure(state_dir) if tls else None
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="timonel-apiserver", daemon=True)
    thread.start()
    try:
        started = start(
            registry,
            token,
            port=port,
            bookmark_interval=bookmark_interval,
            ssl_context=found.server_context() if found else None,
            revisions=RevisionStore(state_dir),
        )
        served = asyncio.run_coroutine_threadsafe(started, loop).result()
        scheme, bound = "https" if found else "http", served.port
        try:
            yield Running(
                f"{scheme}://127.0.0.1:{bound}", bound, token, registry, found.ca if found else None
            )
        finally:
            asyncio.run_coroutine_threadsafe(served.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        registry.store.close()
