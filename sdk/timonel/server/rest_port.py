"""The REST port: plain HTTP/1.1 requests read by hand, every other request by aiohttp.

The event loop, which answers every request, is what limits a small model's throughput, and
aiohttp's request and response objects cost it about a third of such a request. Nearly every
request is plain: HTTP/1.1, a ``GET`` or a ``POST`` whose body is framed by ``Content-Length``
(``timonel.codec.http1`` reads the head). ``RestConnection`` reads those itself and writes each
reply in one write, with the GIL released for the send (``SocketWriter``), held while handlers of
requests already read wait to start (``timonel.server.outbox``). The first request
that is not plain (another HTTP version, a chunked or compressed body, ``Expect: 100-continue``,
an upgrade, another method, a body above ``FAST_BYTES``) hands the connection, with the bytes
read so far, to aiohttp's low-level server for the rest of its life. Both paths answer through
``RestApi.answer``, so they differ only in aiohttp's ``Server`` header.

Requests on a connection are answered in order; one that is kept alive but idle for
``KEEPALIVE_SECONDS`` is closed (aiohttp's default, which also applies to the connections it
holds). A client that sends requests faster than it reads the answers is paused.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web

from timonel.codec.http1 import HEAD_END, RequestHead, parse_request_head
from timonel.server.outbox import HeldWrites, Outbox
from timonel.server.rest import BodyTooLarge, Reply, RestApi
from timonel.server.socket_writer import SocketWriter

log = logging.getLogger("timonel.server")

#: Requests with a larger body go to aiohttp, which streams them.
FAST_BYTES = 256 * 1024
#: A kept-alive connection idle this long is closed.
KEEPALIVE_SECONDS = 75.0
#: Unread requests a connection buffers while it answers, above which it stops reading.
_READ_LIMIT = 2 * FAST_BYTES
_FAST_METHODS = ("GET", "POST")


class RestPort:
    """The REST port's protocol factory (for ``loop.create_server``) and its shutdown."""

    def __init__(self, api: RestApi, outbox: Outbox | None = None) -> None:
        self.api = api
        self.outbox = outbox or Outbox()
        self.fast_bytes = min(FAST_BYTES, api.max_body_bytes)
        self._aiohttp = _aiohttp_server(api)
        self._connections: set[RestConnection] = set()
        self._closing = False
        self._sweeper = asyncio.get_running_loop().call_later(
            KEEPALIVE_SECONDS / 4, self._close_idle
        )

    def __call__(self) -> asyncio.Protocol:
        return RestConnection(self)

    def _close_idle(self) -> None:
        limit = time.monotonic() - KEEPALIVE_SECONDS
        for connection in list(self._connections):
            if connection.idle_since is not None and connection.idle_since < limit:
                connection.close()
        self._sweeper = asyncio.get_running_loop().call_later(
            KEEPALIVE_SECONDS / 4, self._close_idle
        )

    async def shutdown(self, grace: float) -> None:
        """Close idle connections now and the others after their answer; after ``grace``
        seconds, close what is left."""
        self._closing = True
        self._sweeper.cancel()
        deadline = time.monotonic() + grace
        answering = []
        for connection in list(self._connections):
            if connection.answering is None:
                connection.close()
            else:
                answering.append(connection.answering)
        if answering:
            await asyncio.wait(answering, timeout=grace)
        for connection in list(self._connections):
            connection.close()
        await self._aiohttp.shutdown(max(deadline - time.monotonic(), 0.0))


class RestConnection(asyncio.Protocol):
    """One client connection on the fast path, until a request needs aiohttp."""

    def __init__(self, port: RestPort) -> None:
        self._port = port
        self._transport: asyncio.Transport | None = None
        self._remote: str | None = None
        self._buffer = b""
        self._closed = False
        self._reading = True
        self._writing = True
        #: the request being answered, if any
        self.answering: asyncio.Task[None] | None = None
        #: when the connection last had nothing to answer (None while it answers)
        self.idle_since: float | None = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._writer = SocketWriter(self._transport)
        self._outgoing = HeldWrites(self._port.outbox, self._write)
        peer = transport.get_extra_info("peername")
        self._remote = peer[0] if isinstance(peer, tuple) else None
        if self._port._closing:
            self._transport.close()
            return
        self._port._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._port._connections.discard(self)

    def pause_writing(self) -> None:
        self._writing = False

    def resume_writing(self) -> None:
        self._writing = True
        if self.answering is None and self._buffer:
            self._next()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self.answering is None:
            self._next()
        elif len(self._buffer) > _READ_LIMIT and self._transport is not None:
            self._transport.pause_reading()
            self._reading = False

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()

    def _next(self) -> None:
        """Answer the buffered request if it is whole; hand the connection to aiohttp if it is
        not for the fast path."""
        if not self._writing or self._closed:
            return
        end = self._buffer.find(HEAD_END)
        if end < 0:
            if len(self._buffer) > FAST_BYTES:
                self._hand_over()
            return
        head = parse_request_head(self._buffer[:end])
        if head is None or not self._fast(head):
            self._hand_over()
            return
        total = end + len(HEAD_END) + head.length
        if len(self._buffer) < total:
            return  # the body is still coming
        body = self._buffer[end + len(HEAD_END) : total]
        self._buffer = self._buffer[total:]
        self.idle_since = None
        self.answering = asyncio.get_running_loop().create_task(self._answer(head, body))
        self._port.outbox.created()
        self.answering.add_done_callback(self._answered)

    def _write(self, data: bytes) -> None:
        if not self._closed:  # held bytes may outlive the connection
            self._writer.write(data)

    def _fast(self, head: RequestHead) -> bool:
        return (
            head.method in _FAST_METHODS
            and head.length <= self._port.fast_bytes
            and head.target.startswith("/")
            and b"content-encoding" not in head.headers
        )

    async def _answer(self, head: RequestHead, body: bytes) -> None:
        self._port.outbox.started()

        async def read_body() -> bytes:
            return body

        reply = await self._port.api.answer(
            head.method,
            head.path,
            read_body,
            origin=head.headers.get(b"origin", b"").decode("latin-1"),
            remote=self._remote,
        )
        if self._transport is not None and not self._closed:
            close = head.close or self._port._closing
            self._outgoing.send(_reply_head(reply, close) + reply.body)
            if close:
                self._outgoing.flush()
                self._transport.close()

    def _answered(self, task: asyncio.Task[None]) -> None:
        self.answering = None
        self.idle_since = time.monotonic()
        if not task.cancelled() and (failed := task.exception()) is not None:
            log.error("answering a REST request failed", exc_info=failed)
            self.close()
            return
        if self._closed or self._transport is None:
            return
        if not self._reading:
            self._transport.resume_reading()
            self._reading = True
        if self._buffer:
            self._next()

    def _hand_over(self) -> None:
        """The rest of this connection goes to aiohttp, from the bytes buffered."""
        assert self._transport is not None
        self._port._connections.discard(self)
        if not self._reading:
            self._transport.resume_reading()
        protocol = cast(asyncio.Protocol, self._port._aiohttp())
        self._transport.set_protocol(protocol)
        protocol.connection_made(self._transport)
        buffered, self._buffer = self._buffer, b""
        protocol.data_received(buffered)


def _reply_head(reply: Reply, close: bool) -> bytes:
    """The status line and headers of a reply, as aiohttp writes them but its Server header."""
    lines = [
        f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}",
        f"Content-Type: {reply.content_type}",
        f"Content-Length: {len(reply.body)}",
        f"Date: {_date()}",
        *(f"{name}: {value}" for name, value in reply.headers.items()),
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_date_cache: tuple[int, str] = (0, "")


def _date() -> str:
    """The HTTP date of now, formatted once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def _aiohttp_server(api: RestApi) -> web.Server:
    """aiohttp's low-level server (no router, no middlewares) answering through ``api``."""
    loop = asyncio.get_running_loop()

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        async def read_body() -> bytes:
            return await _read_body(request, api.max_body_bytes)

        reply = await api.answer(
            request.method,
            request.raw_path.split("?", 1)[0],
            read_body,
            origin=request.headers.get("Origin", ""),
            remote=request.remote,
        )
        return web.Response(
            status=reply.status,
            body=reply.body,
            headers={"Content-Type": reply.content_type, **reply.headers},
        )

    def request_factory(
        message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=api.max_body_bytes
        )

    return web.Server(
        handle,
        request_factory=request_factory,
        access_log=None,
        keepalive_timeout=KEEPALIVE_SECONDS,
    )


async def _read_body(request: web.BaseRequest, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(length, limit)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyTooLarge(None, limit) from exc
