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

from aiohttp import web

from timonel.local.apiserver import certs
from timonel.local.apiserver.http import BOOKMARK_INTERVAL, ApiServer
from timonel.local.apiserver.registry import Registry
from timonel.local.apiserver.store import DEFAULT_HISTORY, Store
from timonel.local.apiserver.validation import validate

#: The SQLite file inside the state directory.
DATABASE = "cluster.db"
#: The namespace every cluster has.
DEFAULT_NAMESPACE = "default"


def open_registry(state_dir: Path, *, history: int = DEFAULT_HISTORY) -> Registry:
    """The registry over ``state_dir``'s database, validating InferenceServices as KServe does."""
    state_dir.mkdir(parents=True, exist_ok=True)
    registry = Registry(Store(state_dir / DATABASE, history=history), validator=validate)
    registry.ensure_namespace(DEFAULT_NAMESPACE)
    return registry


async def start(
    registry: Registry,
    token: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    bookmark_interval: float = BOOKMARK_INTERVAL,
    ssl_context: ssl.SSLContext | None = None,
) -> Served:
    """Serve on the running loop until ``await served.close()``."""
    app = ApiServer(registry, token, bookmark_interval=bookmark_interval).application()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    assert runner.server is not None  # set by setup()
    # Created here rather than by aiohttp's TCPSite to bound the TLS close handshake: a client
    # that vanishes without close_notify would otherwise hold its connection for 30 s.
    server = await asyncio.get_running_loop().create_server(
        runner.server,
        host,
        port,
        ssl=ssl_context,
        ssl_shutdown_timeout=_TLS_SHUTDOWN if ssl_context else None,
    )
    return Served(runner, server, int(server.sockets[0].getsockname()[1]))


#: Seconds a closing TLS connection waits for the client's close_notify.
_TLS_SHUTDOWN = 0.2


@dataclass(frozen=True)
class Served:
    """A server started by :func:`start`."""

    runner: web.AppRunner
    server: asyncio.Server
    port: int

    async def close(self) -> None:
        """Stop accepting, end watches and requests, close connections (TLS ones included)."""
        self.server.close()
        await self.runner.cleanup()
        await self.server.wait_closed()
        await asyncio.sleep(_TLS_SHUTDOWN * 2)


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
