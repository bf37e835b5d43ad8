"""The ingress port: REST and gRPC by Host, to the revision the traffic split picks.

One listener (127.0.0.1, the port ``timonel local up --ingress-port`` records, 8080 by default)
takes both protocols, as a cluster's gateway does. The first bytes of a connection decide:

- **HTTP/1.1** (REST): every request is routed on its own by ``Host`` and path
  (``timonel.local.ingress.routes``), so requests on one kept-alive connection follow the split
  as they would through Envoy. aiohttp parses the requests; bodies stream through in the chunks
  the sockets give, both ways, except when a request is mirrored (the mirror needs the request
  body and the primary's answer whole). Requests go out on a pool of kept-alive connections per
  revision server (aiohttp's connector, keyed by its address), as Envoy keeps its upstream
  connections. A request body of up to 64 KiB is read whole first, so that a request a pooled
  connection loses (the revision was stopped by a promote or a scale to zero, or closed an idle
  connection) is sent again on a fresh connection; a refused connect means the server is gone,
  so the request goes to the revision the split picks now, or to the same revision once the
  supervisor has restarted it. Larger bodies stream, and such a request fails with 503.
- **HTTP/2 cleartext** (gRPC): the connection is handed to ``timonel.local.ingress.grpc_proxy``,
  which routes every call (stream) on its own by ``:authority`` through the split, over kept-alive
  HTTP/2 connections to the revisions' gRPC ports.

A request whose Host no route knows gets 404 naming the host and the hosts that would work, except
``GET /metrics`` (the Prometheus text of ``timonel.local.ingress.metrics`` and the mirror counts)
and ``GET /mirror`` (the mirror counts as JSON).

Headers ``Timonel-Mirror-Revision`` and ``Timonel-Mirror-Percent`` (or the
``timonel.dev/mirror-revision`` and ``timonel.dev/mirror-percent`` annotations of the
InferenceService's record, the ConfigMap ``<isvc>-rollout`` of ``timonel.kube.records``) copy a
share of the requests to another revision of the same InferenceService
(``timonel.local.ingress.mirror``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import aiohttp
from aiohttp import web

from timonel.errors import SpecError
from timonel.kube.records import MIRROR_PERCENT
from timonel.local.autoscaler import DeciderSpec, decider_spec
from timonel.local.ingress import grpc_proxy, http1
from timonel.local.ingress.activator import Activator, Endpoint, Rerouted, Revisions, Unavailable
from timonel.local.ingress.grpc_proxy import CallRoute, Upstreams
from timonel.local.ingress.metrics import RequestMetrics
from timonel.local.ingress.mirror import (
    MIRROR_PERCENT_HEADER,
    MIRROR_REVISION_HEADER,
    Answer,
    MirrorRecords,
)
from timonel.local.ingress.routes import (
    Mirror,
    Route,
    RoutingTable,
    mirror_percent,
    routing_table,
)
from timonel.local.reconcile import DEFAULT_DOMAIN
from timonel.local.revisions import RevisionKey

log = logging.getLogger("timonel.local.ingress")

#: The port ``timonel local`` listens on for inference when none is given.
DEFAULT_INGRESS_PORT = 8080

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host"}
)  # fmt: skip
#: How many mirrored copies may be in flight at once; more are not sent (and not counted).
_MIRRORS_IN_FLIGHT = 64
#: Request bodies up to this size are read whole, so a request a stopping revision dropped can
#: be sent again; larger ones stream through and are not retried.
_REPLAYABLE_BYTES = 64 * 1024
#: How many times a lost or refused connection is retried (a lost pooled connection, then a
#: refused connect, then the restarted revision).
_CONNECT_ATTEMPTS = 4


class Ingress:
    """Routes requests to revisions; fed InferenceServices by the controller (``update``)."""

    def __init__(
        self,
        revisions: Revisions,
        *,
        domain: str = DEFAULT_DOMAIN,
        idle_seconds: float = 60.0,
        queue_depth: int = 100,
        timeout: float = 300.0,
        draw: Callable[[], float] = random.random,
        machine_replicas: int | None = None,
    ) -> None:
        self.activator = Activator(
            revisions,
            queue_depth=queue_depth,
            timeout=timeout,
            routable=lambda backend: backend in self._routable,
            machine=machine_replicas,
        )
        self.metrics = RequestMetrics()
        self.mirrors = MirrorRecords(self.metrics.registry)
        self._domain = domain
        self._idle_seconds = idle_seconds
        self._draw = draw
        self._lock = threading.Lock()
        self._isvcs: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._templates: dict[RevisionKey, Mapping[str, Any]] = {}
        self._records: dict[tuple[str, str], Mapping[str, str]] = {}
        self.table = RoutingTable()
        self._routable: set[RevisionKey] = set()
        #: the KPA's spec of each revision that may run more than one process
        self._deciders: dict[RevisionKey, DeciderSpec] = {}
        self._session: aiohttp.ClientSession | None = None
        self._server: asyncio.Server | None = None
        self._http: web.Server | None = None  # made on the event loop, in start()
        self._mirroring: set[asyncio.Task[None]] = set()
        self._proxying: set[asyncio.Task[bool]] = set()  # the fast path's requests in flight
        self._clients: set[asyncio.Transport] = set()  # the fast path's client connections
        self._idle_task: asyncio.Task[None] | None = None
        self._autoscale_task: asyncio.Task[None] | None = None
        self._upstreams = Upstreams()
        self._pool = http1.Pool()

    # --- the controller's side ---

    def update(
        self,
        key: tuple[str, str],
        isvc: dict[str, Any] | None,
        templates: dict[str, dict[str, Any]],
        record: Mapping[str, str] | None = None,
    ) -> None:
        """An InferenceService as last reconciled (None: gone) and its record's annotations;
        rebuilds the routing table."""
        namespace, name = key
        with self._lock:
            self._templates = {
                b: t for b, t in self._templates.items() if (b.namespace, b.isvc) != key
            }
            deciders = {b: d for b, d in self._deciders.items() if (b.namespace, b.isvc) != key}
            if isvc is None:
                self._isvcs.pop(key, None)
                self._records.pop(key, None)
            else:
                self._isvcs[key] = isvc
                self._records[key] = _mirror_settings(record or {})
                for revision, template in templates.items():
                    backend = RevisionKey(namespace, name, revision)
                    self._templates[backend] = template
                    decider = _decider(isvc, template)
                    if decider is not None:
                        deciders[backend] = decider
            self._deciders = deciders
            self.table = routing_table(
                self._isvcs.values(),
                domain=self._domain,
                templates=self._templates,
                records=self._records,
                idle_seconds=self._idle_seconds,
            )
            self._routable = self.table.backends()

    # --- serving ---

    async def start(self, port: int = DEFAULT_INGRESS_PORT, host: str = "127.0.0.1") -> int:
        """Listen on ``host:port`` (0: any free port); returns the port."""
        loop = asyncio.get_running_loop()
        self._http = web.Server(self._handle, access_log=None)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
        self._server = await loop.create_server(lambda: _Sniffer(self), host, port, backlog=1024)
        self._idle_task = asyncio.create_task(self._scale_down_loop())
        self._autoscale_task = asyncio.create_task(self._autoscale_loop())
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for task in (self._idle_task, self._autoscale_task):
            if task is not None:
                task.cancel()
        if self._server is not None and self._http is not None:
            self._server.close()
            await self._http.shutdown(2.0)
        if self._proxying:  # as aiohttp's shutdown: 2 s for the answers in flight, then cancel
            _, late = await asyncio.wait(set(self._proxying), timeout=2.0)
            for request in late:
                request.cancel()
        for client in list(self._clients):
            client.close()
        for task in list(self._mirroring):
            task.cancel()
        if self._session is not None:
            await self._session.close()
        self._upstreams.close()
        self._pool.close()

    async def _scale_down_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._idle_seconds / 4))
            for backend in self.activator.scale_down_idle(self.table):
                log.info("revision %s idle past its window: scaled to zero", backend)

    async def _autoscale_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0 - time.monotonic() % 1.0)  # early in each second
            for backend, replicas in self.activator.autoscale(self._deciders).items():
                log.info("revision %s scaled to %d processes", backend, replicas)

    # --- HTTP/1.1 ---

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self.table.lookup(request.host, request.path)
        if route is None:
            return self._own(request)
        target = route.pick(self._draw())
        if target is None:
            return _text(
                503,
                f"InferenceService {route.namespace}/{route.isvc} has no revision with traffic; "
                "check status.components.predictor.traffic",
            )
        try:
            mirror = _mirror_of(route, request.headers)
        except SpecError as exc:
            return _text(400, str(exc))
        if mirror is not None and self._draw() * 100 >= mirror.percent:
            mirror = None
        backend = target.backend
        started = time.perf_counter()
        self.metrics.started(backend)
        status = 502
        try:
            response, status = await self._forward(request, backend, mirror)
            return response
        except Unavailable as exc:
            status = 503
            return _text(503, str(exc))
        finally:
            self.metrics.finished(
                backend, route.tag or target.tag, status, time.perf_counter() - started
            )

    async def _forward(
        self, request: web.BaseRequest, backend: RevisionKey, mirror: Mirror | None
    ) -> tuple[web.StreamResponse, int]:
        assert self._session is not None
        headers = _forwarded(request.headers)
        body: Any = request.content.iter_any() if request.can_read_body else None
        if mirror is not None or (request.content_length or 0) <= _REPLAYABLE_BYTES:
            body = await request.read() if request.can_read_body else None
        avoid: Endpoint | None = None
        for attempt in range(1, _CONNECT_ATTEMPTS + 1):
            try:
                async with self.activator.hold(backend, avoid=avoid) as endpoint:
                    url = f"http://{endpoint.rest}{request.raw_path}"
                    try:
                        upstream = await self._session.request(
                            request.method, url, headers=headers, data=body, allow_redirects=False
                        )
                    except aiohttp.ClientError as exc:
                        replayable = body is None or isinstance(body, bytes)
                        if not isinstance(exc, aiohttp.ClientConnectorError) and not replayable:
                            message = f"revision {backend} dropped the request: {exc}"
                            raise Unavailable(message) from exc
                        if attempt == _CONNECT_ATTEMPTS:
                            message = f"revision {backend} refused the connection: {exc}"
                            raise Unavailable(message) from exc
                        if not isinstance(exc, aiohttp.ClientConnectorError):
                            continue  # a pooled connection lost: again on a fresh one
                        backend, avoid = self._again_for(
                            request.host, request.path, backend, endpoint
                        )
                        continue
                    async with upstream:
                        response, answer = await self._answer(
                            request, upstream, keep=mirror is not None
                        )
                    if mirror is not None and answer is not None:
                        self._send_mirror(request, body, backend, mirror, answer)
                    return response, upstream.status
            except Rerouted:
                if attempt == _CONNECT_ATTEMPTS:
                    raise
                backend, avoid = self._again_for(request.host, request.path, backend, None)
        raise AssertionError("unreachable")  # every attempt returns, continues or raises

    async def _answer(
        self, request: web.BaseRequest, upstream: aiohttp.ClientResponse, *, keep: bool
    ) -> tuple[web.StreamResponse, Answer | None]:
        """The revision's answer to the client: whole when it is small (one write), else
        streamed chunk by chunk; with ``keep``, also the answer for a mirror's comparison."""
        headers = _forwarded(upstream.headers)
        if (upstream.content_length or _REPLAYABLE_BYTES + 1) <= _REPLAYABLE_BYTES:
            body = await upstream.read()
            whole = web.Response(
                status=upstream.status, reason=upstream.reason, body=body, headers=headers
            )
            return whole, Answer(upstream.status, body) if keep else None
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        response.headers.update(headers)
        kept: list[bytes] = []
        with contextlib.suppress(ConnectionResetError):  # the client went away meanwhile
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
                if keep:
                    kept.append(chunk)
            await response.write_eof()
        return response, Answer(upstream.status, b"".join(kept)) if keep else None

    def _again_for(
        self, host: str, path: str, backend: RevisionKey, avoid: Endpoint | None
    ) -> tuple[RevisionKey, Endpoint | None]:
        """After a refused connect or a revision that left the routes: the split's pick now, or
        the same revision (restarted)."""
        route = self.table.lookup(host, path)
        target = route.pick(self._draw()) if route is not None else None
        if target is not None and target.backend != backend:
            return target.backend, None  # the split moved meanwhile
        return backend, avoid

    def _send_mirror(
        self,
        request: web.BaseRequest,
        body: bytes,
        primary: RevisionKey,
        mirror: Mirror,
        answer: Answer,
    ) -> None:
        if len(self._mirroring) >= _MIRRORS_IN_FLIGHT:
            return
        task = asyncio.create_task(
            self._mirror(
                request.method,
                request.raw_path,
                _forwarded(request.headers),
                body,
                primary,
                mirror.backend,
                answer,
            )
        )
        self._mirroring.add(task)
        task.add_done_callback(self._mirroring.discard)

    async def _mirror(
        self, method: str, path: str, headers: dict[str, str], body: bytes,
        primary: RevisionKey, backend: RevisionKey, answer: Answer,
    ) -> None:  # fmt: skip
        assert self._session is not None
        mirrored: Answer | None = None
        try:
            async with (
                self.activator.hold(backend) as endpoint,
                self._session.request(
                    method, f"http://{endpoint.rest}{path}", headers=headers, data=body
                ) as reply,
            ):
                mirrored = Answer(reply.status, await reply.read())
        except (TimeoutError, Unavailable, aiohttp.ClientError) as exc:
            log.info("mirroring to %s failed: %s", backend, exc)
        self.mirrors.record(primary, backend, answer, mirrored)

    def _own(self, request: web.BaseRequest) -> web.StreamResponse:
        """The ingress's own pages, for a Host no route knows."""
        if request.method == "GET" and request.path == "/metrics":
            return web.Response(body=self.metrics.exposition(), content_type="text/plain")
        if request.method == "GET" and request.path == "/mirror":
            counts = [dataclasses.asdict(count) for count in self.mirrors.snapshot()]
            return web.Response(text=json.dumps(counts), content_type="application/json")
        known = ", ".join(sorted(h for h in self.table.hosts if h.endswith(self._domain)))
        return _text(
            404,
            f"no InferenceService answers Host {request.host!r} and path {request.path!r}; "
            f"send the host of an InferenceService's status.url ({known or 'none yet'}), "
            "or /v1/models/NAME for one in the default namespace",
        )

    # --- HTTP/2 (gRPC) ---

    def _call_route(self, authority: str, path: str) -> CallRoute | None:
        """The route of one gRPC call, counted in the queue-proxy metrics as a request."""
        route = self.table.lookup(authority, path)
        target = route.pick(self._draw()) if route is not None else None
        if route is None or target is None:
            return None
        backend, tag = target.backend, route.tag or target.tag
        self.metrics.started(backend)

        def finished(status: int, seconds: float) -> None:
            self.metrics.finished(backend, tag, status, seconds)

        return CallRoute(target, lambda: self._hold_call(authority, path, backend), finished)

    @contextlib.asynccontextmanager
    async def _hold_call(
        self, authority: str, path: str, backend: RevisionKey
    ) -> AsyncIterator[Endpoint]:
        """The activator's hold for a gRPC call, picking from the split again when its revision
        left the routes before the call reached it."""
        for attempt in range(1, _CONNECT_ATTEMPTS + 1):
            stack = contextlib.AsyncExitStack()
            try:
                endpoint = await stack.enter_async_context(self.activator.hold(backend))
            except Rerouted:
                if attempt == _CONNECT_ATTEMPTS:
                    raise
                backend, _ = self._again_for(authority, path, backend, None)
                continue
            async with stack:
                yield endpoint
            return


class _Sniffer(asyncio.Protocol):
    """Reads a connection's first bytes, then hands it to aiohttp (HTTP/1.1) or the gRPC proxy."""

    def __init__(self, ingress: Ingress) -> None:
        self._ingress = ingress
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        if len(self._buffer) < len(_PREFACE) and _PREFACE.startswith(self._buffer):
            return
        protocol: asyncio.Protocol
        if self._buffer.startswith(_PREFACE):
            protocol = grpc_proxy.downstream(self._ingress._call_route, self._ingress._upstreams)
        else:
            assert self._ingress._http is not None
            protocol = http1.Downstream(self._ingress, self._ingress._http)
        self._transport.set_protocol(protocol)
        protocol.connection_made(self._transport)
        protocol.data_received(self._buffer)


def _mirror_of(route: Route, headers: Mapping[str, str]) -> Mirror | None:
    revision = headers.get(MIRROR_REVISION_HEADER)
    if revision:
        percent = mirror_percent(headers.get(MIRROR_PERCENT_HEADER))
        return Mirror(RevisionKey(route.namespace, route.isvc, revision), percent)
    return route.mirror


def _decider(isvc: dict[str, Any], template: Mapping[str, Any]) -> DeciderSpec | None:
    """The KPA's spec for a revision that may run more than one process (``maxReplicas`` other
    than 1: 0 is KServe's "no limit"); None otherwise, or when its annotations do not parse
    (logged)."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    try:
        spec = decider_spec(template, annotations)
    except SpecError as exc:
        log.warning("%s: not autoscaling", exc)
        return None
    return None if spec.max_scale == 1 else spec


def _mirror_settings(record: Mapping[str, str]) -> Mapping[str, str]:
    """A record's annotations, or none when its mirror percent does not parse (logged)."""
    try:
        mirror_percent(record.get(MIRROR_PERCENT))
    except SpecError as exc:
        log.warning("%s: not mirroring", exc)
        return {}
    return record


def _forwarded(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


@dataclasses.dataclass
class RunningIngress:
    ingress: Ingress
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def running(ingress: Ingress, port: int = 0) -> Iterator[RunningIngress]:
    """The ingress serving on its own thread and event loop until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="timonel ingress", daemon=True)
    thread.start()
    try:
        bound = asyncio.run_coroutine_threadsafe(ingress.start(port), loop).result(timeout=10)
        yield RunningIngress(ingress, bound)
    finally:
        asyncio.run_coroutine_threadsafe(ingress.close(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
