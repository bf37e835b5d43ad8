"""gRPC through the ingress: every call (HTTP/2 stream) routed on its own, as Envoy routes them.

A client's HTTP/2 connection ends here; each stream's ``:authority`` and ``:path`` pick a route and
the split picks a revision per call, so one channel's calls follow the traffic split (and a tag
host reaches its revision only), as through a cluster's gateway. The call goes out on a stream of
a kept-alive HTTP/2 connection to the revision's gRPC port (one per revision server, shared by
every call to it), and the answer's headers, messages and trailers come back on the client's
stream. Flow control is kept on both legs: data waits for the peer's window.

A call whose host no route knows ends with ``UNIMPLEMENTED`` (Envoy's 404 becomes that in a gRPC
client); one the activator cannot give a revision (queue full, the revision cannot start) ends
with ``UNAVAILABLE`` and the activator's message, as Knative's activator answers 503.

HTTP/2 framing and HPACK are python-hyper's ``h2`` (a proxy is a client and a server at once, with
flow control both ways); ``timonel serve``'s own gRPC server frames HTTP/2 itself for speed, but a
proxy's cost is dominated by the hop, not the framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from timonel.local.ingress.activator import Endpoint, Unavailable
from timonel.server.grpc_server import percent_encode

if TYPE_CHECKING:
    from timonel.local.ingress.routes import Target

#: How much a peer may send ahead, per stream and per connection.
_WINDOW = 16 * 1024 * 1024
_HEADERS = list[tuple[bytes, bytes]]
_GRPC_UNIMPLEMENTED, _GRPC_UNAVAILABLE = "12", "14"


@dataclass
class CallRoute:
    """What the ingress decided for one call: the target, and where to count it."""

    target: Target
    hold: Callable[[], contextlib.AbstractAsyncContextManager[Endpoint]]
    finished: Callable[[int, float], None]


#: The ingress's side: the route of a call from its ``:authority`` and ``:path``; None for none.
Router = Callable[[str, str], CallRoute | None]


class _Peer(asyncio.Protocol):
    """One HTTP/2 connection: h2's state, the transport, and data waiting for a window."""

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self._pending: dict[int, list[bytes | _HEADERS | None]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
        self.conn.increment_flow_control_window(_WINDOW)
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
                self._send_pending()
            self.on_event(event)
        self.flush()

    def on_event(self, event: h2.events.Event) -> None:
        raise NotImplementedError

    def send(self, stream_id: int, item: bytes | _HEADERS | None) -> None:
        """Queue data (bytes), trailers (headers, ending the stream) or the end (None)."""
        self._pending.setdefault(stream_id, []).append(item)
        self._send_pending()
        self.flush()

    def reset(self, stream_id: int) -> None:
        self._pending.pop(stream_id, None)
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self.flush()

    def _send_pending(self) -> None:
        for stream_id, queue in list(self._pending.items()):
            try:
                while queue:
                    item = queue[0]
                    if isinstance(item, bytes):
                        window = self.conn.local_flow_control_window(stream_id)
                        size = min(window, self.conn.max_outbound_frame_size, len(item))
                        if size == 0 and item:
                            break
                        self.conn.send_data(stream_id, item[:size])
                        if size < len(item):
                            queue[0] = item[size:]
                            continue
                    elif item is None:
                        self.conn.end_stream(stream_id)
                    else:
                        self.conn.send_headers(stream_id, item, end_stream=True)
                    queue.pop(0)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                queue.clear()
            if not queue:
                del self._pending[stream_id]

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


@dataclass
class _Call:
    """One client stream: what came before its revision's stream opened, and how it ends."""

    headers: _HEADERS
    early: list[bytes | None] = field(default_factory=list)
    upstream: _Upstream | None = None
    upstream_id: int = 0
    answered: bool = False
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class _Upstream(_Peer):
    """A kept-alive connection to one revision's gRPC port, shared by every call to it."""

    def __init__(self, on_lost: Callable[[_Upstream], None]) -> None:
        super().__init__(
            h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=True, header_encoding=None)
            )
        )
        self._calls: dict[int, tuple[_Downstream, int, _Call]] = {}
        self._on_lost = on_lost

    def open(self, downstream: _Downstream, stream_id: int, call: _Call) -> int:
        upstream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(upstream_id, call.headers)
        self._calls[upstream_id] = (downstream, stream_id, call)
        self.flush()
        return upstream_id

    def on_event(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", 0)
        found = self._calls.get(stream_id)
        if found is None:
            return
        downstream, down_id, call = found
        if isinstance(event, h2.events.ResponseReceived):
            call.answered = True
            downstream.answer(down_id, event.headers, end=event.stream_ended is not None)
        elif isinstance(event, h2.events.DataReceived):
            downstream.send(down_id, event.data)
        elif isinstance(event, h2.events.TrailersReceived):
            downstream.send(down_id, list(event.headers))
        if isinstance(event, h2.events.StreamReset):
            downstream.reset(down_id)
            self._end(stream_id, 502)
        elif getattr(event, "stream_ended", None) is not None:
            self._end(stream_id, 200)

    def _end(self, stream_id: int, status: int) -> None:
        found = self._calls.pop(stream_id, None)
        if found is not None and not found[2].done.done():
            found[2].done.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self)
        for stream_id, (downstream, down_id, call) in list(self._calls.items()):
            if call.answered:
                downstream.reset(down_id)
            else:
                downstream.fail(
                    down_id, _GRPC_UNAVAILABLE, "the revision's server closed the connection"
                )
            self._end(stream_id, 503)


class Upstreams:
    """The kept-alive connections, one per revision server's gRPC address."""

    def __init__(self) -> None:
        self._open: dict[str, asyncio.Future[_Upstream]] = {}

    async def get(self, address: str) -> _Upstream:
        found = self._open.get(address)
        if found is None:
            found = self._open[address] = asyncio.ensure_future(self._connect(address))
        try:
            return await asyncio.shield(found)
        except OSError:
            self._open.pop(address, None)
            raise

    async def _connect(self, address: str) -> _Upstream:
        host, port = address.rsplit(":", 1)

        def lost(upstream: _Upstream) -> None:
            with contextlib.suppress(asyncio.InvalidStateError):
                if self._open.get(address) is not None and self._open[address].result() is upstream:
                    del self._open[address]

        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(lambda: _Upstream(lost), host, int(port))
        return upstream

    def close(self) -> None:
        for future in self._open.values():
            if future.done() and not future.cancelled() and future.exception() is None:
                transport = future.result().transport
                if transport is not None:
                    transport.close()
        self._open.clear()


class _Downstream(_Peer):
    """A client's HTTP/2 connection to the ingress: each stream routed on its own."""

    def __init__(self, router: Router, upstreams: Upstreams) -> None:
        super().__init__(
            h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=False, header_encoding=None)
            )
        )
        self._router = router
        self._upstreams = upstreams
        self._calls: dict[int, _Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            opened = _Call(list(event.headers))
            self._calls[event.stream_id] = opened
            if event.stream_ended is not None:
                opened.early.append(None)
            task = asyncio.create_task(self._run(event.stream_id, opened))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        call = self._calls.get(getattr(event, "stream_id", 0))
        if call is None:
            return
        if isinstance(event, h2.events.DataReceived):
            self._forward(call, event.data)
        if isinstance(event, h2.events.StreamReset):
            if call.upstream is not None:
                call.upstream.reset(call.upstream_id)
            if not call.done.done():
                call.done.set_result(499)
        elif getattr(event, "stream_ended", None) is not None:
            self._forward(call, None)

    def _forward(self, call: _Call, item: bytes | None) -> None:
        if call.upstream is None:
            call.early.append(item)
        else:
            call.upstream.send(call.upstream_id, item)

    async def _run(self, stream_id: int, call: _Call) -> None:
        headers = {name: value for name, value in call.headers}
        authority = (headers.get(b":authority") or headers.get(b"host") or b"").decode()
        route = self._router(authority, headers.get(b":path", b"").decode())
        if route is None:
            self.fail(
                stream_id, _GRPC_UNIMPLEMENTED, f"no InferenceService answers host {authority!r}"
            )
            return
        started = time.perf_counter()
        status = 503
        try:
            async with route.hold() as endpoint:
                upstream = await self._upstreams.get(endpoint.grpc)
                call.upstream = upstream
                call.upstream_id = upstream.open(self, stream_id, call)
                for item in call.early:
                    upstream.send(call.upstream_id, item)
                call.early.clear()
                status = await call.done
        except (Unavailable, OSError) as exc:
            self.fail(stream_id, _GRPC_UNAVAILABLE, str(exc))
        finally:
            self._calls.pop(stream_id, None)
            route.finished(status, time.perf_counter() - started)

    def answer(self, stream_id: int, headers: Any, *, end: bool) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.conn.send_headers(stream_id, list(headers), end_stream=end)
        self.flush()

    def fail(self, stream_id: int, code: str, message: str) -> None:
        """A trailers-only answer with a gRPC status."""
        headers = [
            (b":status", b"200"),
            (b"content-type", b"application/grpc"),
            (b"grpc-status", code.encode()),
            (b"grpc-message", percent_encode(message).encode()),
        ]
        self.answer(stream_id, headers, end=True)

    def connection_lost(self, exc: Exception | None) -> None:
        for call in self._calls.values():
            if call.upstream is not None:
                call.upstream.reset(call.upstream_id)
            if not call.done.done():
                call.done.set_result(499)


def downstream(router: Router, upstreams: Upstreams) -> _Downstream:
    """The protocol for a client's HTTP/2 connection."""
    return _Downstream(router, upstreams)
