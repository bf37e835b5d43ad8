"""The router's fast path for plain HTTP/1.1 requests: bytes forwarded as they are, no objects.

Most requests through the ingress are small TF Serving calls: a ``POST`` with a
``Content-Length`` body and an answer with a ``Content-Length``. Building aiohttp's request and
response objects on both legs for those costs as much CPU as the model server spends answering
them (profiled with ``cProfile`` on the ingress's loop thread; the figures are in
``bench/README.md``), so this protocol parses only the request's head (to route it by Host and
path) and the answer's head (to know where it ends), and writes the bytes through unchanged, on
kept-alive upstream connections pooled by revision process.

Anything else is handed, with the bytes read so far, to the aiohttp path of
``timonel.local.ingress.router`` for the rest of the connection: another HTTP version, a chunked
or ``Expect``-ing request, one over ``FAST_BYTES``, an upgrade, a mirrored request, a Host no
route knows (the ingress's own pages and its 404). Like the aiohttp path, a request whose
upstream connection is lost before any byte of its answer reached the client is sent again on a
fresh connection, and a refused connect or a revision that left the routes picks from the split
again. Answers stream to the client as they arrive, with the upstream read paused while the
client's write buffer is full.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from timonel.codec.http1 import HEAD_END, parse_request_head
from timonel.local.ingress.activator import Endpoint, Rerouted, Unavailable
from timonel.local.ingress.mirror import MIRROR_REVISION_HEADER
from timonel.local.revisions import RevisionKey

if TYPE_CHECKING:
    from timonel.local.ingress.router import Ingress

log = logging.getLogger("timonel.local.ingress")

#: Requests with a larger body take the aiohttp path (which streams them).
FAST_BYTES = 64 * 1024
#: How many times a lost or refused upstream connection is tried again.
_ATTEMPTS = 4
#: The client's write buffer above which the upstream read pauses.
_HIGH_WATER = 1024 * 1024
_MIRROR = MIRROR_REVISION_HEADER.lower().encode()
_IDLE_PER_ENDPOINT = 64
#: ``_response_head``'s length of a chunked answer.
_CHUNKED = -1


@dataclass
class _Request:
    raw: bytes  # head and body, as the client sent them
    head_only: bool  # a HEAD request: the answer has no body whatever its Content-Length
    host: str
    path: str
    close: bool  # the client asked to close after the answer


class _Lost(Exception):
    """The upstream connection ended before any byte of the answer was forwarded."""


class Downstream(asyncio.Protocol):
    """One client connection on the fast path, until a request needs the aiohttp path."""

    def __init__(self, ingress: Ingress, fallback: Callable[[], asyncio.Protocol]) -> None:
        self._ingress = ingress
        self._fallback = fallback
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._busy = False
        self._closed = False
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=_HIGH_WATER)
        self._ingress._clients.add(self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._writable.set()
        if self._transport is not None:
            self._ingress._clients.discard(self._transport)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next()

    def _next(self) -> None:
        """Start the buffered request if it is whole; hand the connection over if it is not
        for the fast path."""
        end = self._buffer.find(HEAD_END)
        if end < 0:
            if len(self._buffer) > FAST_BYTES:
                self._hand_over()
            return
        request = _parse(self._buffer, end + 4)
        if request is None:
            self._hand_over()
            return
        length, parsed = request
        if len(self._buffer) < length:
            return  # the body is still coming
        route = self._ingress.table.lookup(parsed.host, parsed.path)
        target = route.pick(self._ingress._draw()) if route is not None else None
        if route is None or target is None or route.mirror is not None:
            self._hand_over()
            return
        self._buffer = self._buffer[length:]
        self._busy = True
        task = asyncio.get_running_loop().create_task(
            self._proxy(parsed, target.backend, route.tag or target.tag)
        )
        task.add_done_callback(self._done)
        self._ingress._proxying.add(task)
        task.add_done_callback(self._ingress._proxying.discard)

    def _done(self, task: asyncio.Task[bool]) -> None:
        self._busy = False
        failed = None if task.cancelled() else task.exception()
        if failed is not None:
            log.error("proxying a request failed", exc_info=failed)
        keep = not task.cancelled() and failed is None and task.result()
        if self._transport is None or self._closed:
            return
        if not keep:
            self._transport.close()
        elif self._buffer:
            self._next()

    def _hand_over(self) -> None:
        """The rest of this connection goes to the aiohttp path, from the bytes buffered."""
        assert self._transport is not None
        self._ingress._clients.discard(self._transport)  # aiohttp closes its own
        protocol = self._fallback()
        self._transport.set_protocol(protocol)
        protocol.connection_made(self._transport)
        buffered, self._buffer = self._buffer, b""
        protocol.data_received(buffered)

    async def _proxy(self, request: _Request, backend: RevisionKey, tag: str) -> bool:
        """Forward one request and its answer; True when the connection stays open."""
        ingress = self._ingress
        started = time.perf_counter()
        ingress.metrics.started(backend)
        status = 502
        try:
            status = await self._exchange(request, backend)
            return not request.close
        except Unavailable as exc:
            status = 503
            self._write(_text(503, str(exc)))
            return not request.close
        except _Broken:
            return False
        finally:
            ingress.metrics.finished(backend, tag, status, time.perf_counter() - started)

    async def _exchange(self, request: _Request, backend: RevisionKey) -> int:
        ingress = self._ingress
        avoid: Endpoint | None = None
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with ingress.activator.hold(backend, avoid=avoid) as endpoint:
                    try:
                        upstream = await ingress._pool.acquire(endpoint.rest)
                    except OSError as exc:
                        if attempt == _ATTEMPTS:
                            raise Unavailable(
                                f"revision {backend} refused the connection: {exc}"
                            ) from exc
                        backend, avoid = ingress._again_for(
                            request.host, request.path, backend, endpoint
                        )
                        continue
                    try:
                        status = await upstream.exchange(request, self)
                    except _Lost as exc:
                        if attempt == _ATTEMPTS:
                            raise Unavailable(f"revision {backend} dropped the request") from exc
                        continue  # a pooled connection lost: again on a fresh one
                    ingress._pool.release(endpoint.rest, upstream)
                    return status
            except Rerouted:
                if attempt == _ATTEMPTS:
                    raise
                backend, avoid = ingress._again_for(request.host, request.path, backend, None)
        raise AssertionError("unreachable")  # every attempt returns, continues or raises

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(data)


class _Broken(Exception):
    """The answer broke off after part of it reached the client: the connection must close."""


class Upstream(asyncio.Protocol):
    """A kept-alive connection to a revision's REST port, carrying one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = True
        self._client: Downstream | None = None
        self._head = b""
        self._remaining = -1  # body bytes still to come; -1 until the head is read
        self._until_close = False
        self._forwarded = False
        self._status = 0
        self._done: asyncio.Future[int] | None = None
        self._closed = False
        self._head_only = False
        self._chunks: _Chunks | None = None
        self._chunks_from = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.reusable = False
        if self._done is not None and not self._done.done():
            if self._until_close and self._forwarded:
                self._done.set_result(self._status)
            elif self._forwarded:
                self._done.set_exception(_Broken())
            else:
                self._done.set_exception(_Lost())

    async def exchange(self, request: _Request, client: Downstream) -> int:
        """Send the request and forward its answer to ``client``; the answer's status code."""
        if self._closed or self.transport is None:
            raise _Lost()
        self._client = client
        self._head, self._remaining, self._forwarded, self._until_close = b"", -1, False, False
        self._head_only = request.head_only
        self._chunks = None
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(request.raw)
        try:
            return await self._done
        finally:
            self._client = None

    def data_received(self, data: bytes) -> None:
        client = self._client
        if client is None or self._done is None or self._done.done():
            self.reusable = False  # bytes nobody asked for
            if self.transport is not None:
                self.transport.close()
            return
        if self._remaining < 0:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            status, length, keep = _response_head(self._head[: end + 4])
            self._status = status
            if self._head_only:
                length = 0
            elif length == _CHUNKED:
                self._chunks = _Chunks()
            elif length is None:
                self._until_close = True
                self.reusable = False
            self.reusable = self.reusable and keep
            data, self._head = self._head, b""
            self._remaining = end + 4 + (length if length and length > 0 else 0)
            if self._chunks is not None or self._until_close:
                self._chunks_from = end + 4
        self._forwarded = True
        client._write(data)
        if self._chunks is not None:
            self._chunks.feed(data[self._chunks_from :])
            self._chunks_from = 0
            complete = self._chunks.done
        else:
            self._remaining -= len(data)
            complete = self._remaining <= 0 and not self._until_close
        if complete:
            self._done.set_result(self._status)
        elif not client._writable.is_set() and self.transport is not None:
            self.transport.pause_reading()
            asyncio.get_running_loop().create_task(self._resume_when(client))

    async def _resume_when(self, client: Downstream) -> None:
        await client._writable.wait()
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()


class _Chunks:
    """Where a chunked answer ends: chunk sizes read as they stream by."""

    def __init__(self) -> None:
        self.done = False
        self._line = b""
        self._need = 0  # bytes of the current chunk (and its CRLF) still to come
        self._trailer = False

    def feed(self, data: bytes) -> None:
        at = 0
        while at < len(data) and not self.done:
            if self._need:
                taken = min(self._need, len(data) - at)
                self._need -= taken
                at += taken
                continue
            newline = data.find(b"\n", at)
            if newline < 0:
                self._line += data[at:]
                return
            line = (self._line + data[at:newline]).strip()
            self._line = b""
            at = newline + 1
            if self._trailer:
                self.done = not line
                continue
            size = int(line.split(b";")[0] or b"0", 16)
            if size == 0:
                self._trailer = True
            else:
                self._need = size + 2


class Pool:
    """Idle upstream connections by REST address (host:port)."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Upstream]] = {}

    async def acquire(self, rest: str) -> Upstream:
        idle = self._idle.get(rest)
        while idle:
            found = idle.pop()
            if found.reusable and not found._closed:
                return found
        host, port = rest.rsplit(":", 1)
        _, protocol = await asyncio.get_running_loop().create_connection(Upstream, host, int(port))
        return protocol

    def release(self, rest: str, upstream: Upstream) -> None:
        idle = self._idle.setdefault(rest, [])
        if upstream.reusable and not upstream._closed and len(idle) < _IDLE_PER_ENDPOINT:
            idle.append(upstream)
        elif upstream.transport is not None:
            upstream.transport.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for upstream in idle:
                if upstream.transport is not None:
                    upstream.transport.close()
        self._idle.clear()


def _parse(buffer: bytes, head_end: int) -> tuple[int, _Request] | None:
    """(bytes of the whole request, the request) for a fast-path request; None for others."""
    head = parse_request_head(buffer[: head_end - 4])
    if head is None or head.length > FAST_BYTES or _MIRROR in head.headers:
        return None
    total = head_end + head.length
    request = _Request(
        raw=buffer[:total],
        head_only=head.method == "HEAD",
        host=head.headers.get(b"host", b"").decode("latin-1"),
        path=head.path,
        close=head.close,
    )
    return total, request


def _response_head(head: bytes) -> tuple[int, int | None, bool]:
    """(status code, body length or None when it ends with the connection, kept alive)."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 502
    keep = parts[0] == b"HTTP/1.1"
    length: int | None = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            length = _CHUNKED
        elif name == b"connection":
            keep = b"close" not in value.lower()
    if status < 200 or status in (204, 304):
        length = 0
    return status, length, keep


def _text(status: int, message: str) -> bytes:
    body = (message + "\n").encode()
    reason = {503: "Service Unavailable"}.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
