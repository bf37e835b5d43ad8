"""A gRPC server for unary methods, on the event loop that also runs the REST API.

gRPC is HTTP/2 (RFC 9113) with length-prefixed protobuf messages and the status in trailers
(grpc/doc/PROTOCOL-HTTP2.md). TF Serving's services are all unary, so this speaks exactly that:
one request message in, one response message or a status out, on as many concurrent streams and
connections as clients open, with HTTP/2 flow control both ways, PING, SETTINGS, CONTINUATION,
padding, RST_STREAM, GOAWAY, ``grpc-timeout`` deadlines and gzip/deflate request compression.
Header blocks go through ``hpack``; the frames themselves are read and written here.

Why not grpc's own servers: every request pays the front end's cost on top of the model's, and
grpc's servers (the thread-pool one and ``grpc.aio``) wake threads for each call, a context
switch that is most of what a small model's latency is made of; a server on the REST API's own
event loop does none of that. bench/README.md has the measurements behind this choice.

What a connection sends goes through its ``HeldWrites``: held while handlers of requests already
read wait to start, then sent together (``timonel.server.outbox``).

Response headers carry no dynamic-table entries (indexed or never-indexed literals only), so the
encoder is stateless and a header block can be built once and reused for every call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import hpack
from google.protobuf.message import DecodeError

from timonel.errors import ServingError
from timonel.server.channel_arguments import ConnectionLimits
from timonel.server.header_blocks import HeaderBlockDecoder
from timonel.server.outbox import HeldWrites, Outbox

log = logging.getLogger("timonel.server")

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
_PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
_NO_ERROR, _PROTOCOL_ERROR, _FLOW_CONTROL_ERROR, _STREAM_CLOSED = 0x0, 0x1, 0x3, 0x5
_FRAME_SIZE_ERROR, _REFUSED_STREAM, _COMPRESSION_ERROR, _ENHANCE_YOUR_CALM = 0x6, 0x7, 0x9, 0xB
_SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
_SETTINGS_INITIAL_WINDOW_SIZE, _SETTINGS_MAX_FRAME_SIZE = 0x4, 0x5
_SETTINGS_MAX_HEADER_LIST_SIZE = 0x6
#: the header list ``hpack.Decoder`` takes (its default), advertised so clients fail a larger
#: one themselves; a header block (with CONTINUATIONs) may be twice that before it is refused
_MAX_HEADER_LIST = 65_536
_DEFAULT_WINDOW = 65_535
_MAX_WINDOW = 2**31 - 1
_NO_DEADLINE_MS = 2**31 - 1
#: what this server lets a peer send ahead, per stream and per connection; topped up at half
_RECEIVE_WINDOW = 16 * 1024 * 1024
_MAX_FRAME = 16_384  # the size every peer accepts; larger requests simply take more frames
_GRPC_CONTENT_TYPE = re.compile(r"application/grpc([+;].*)?")

#: canonical codes in the order of the numbers gRPC carries (grpc/doc/statuscodes.md)
_CODES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)  # fmt: skip
STATUS_NUMBERS = {name: number for number, name in enumerate(_CODES)}
#: zlib's window bits for each grpc-encoding a request may use
_WBITS = {"gzip": 31, "deflate": 15}
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


@dataclass(frozen=True)
class Rpc:
    """What a handler knows of the call it answers."""

    peer: str
    #: ``loop.time()`` by which the client wants an answer (None: no deadline)
    deadline: float | None

    def timeout_ms(self) -> int:
        """The time left before the deadline as a session run timeout (0: none). TF Serving
        saturates it at ``INT_MAX`` milliseconds (24 days), which also means none."""
        if self.deadline is None:
            return 0
        left = int((self.deadline - asyncio.get_running_loop().time()) * 1000)
        return 0 if left >= _NO_DEADLINE_MS else max(1, left)

    def past_deadline(self) -> bool:
        return self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline


Handler = Callable[[Any, Rpc], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    """A unary method: how to parse its request, and the coroutine that answers it. The
    handler raises ``ServingError`` to answer a status other than OK."""

    request_type: Any
    handler: Handler


_ACCEPT_ENCODING = "identity,deflate,gzip"


def _header_block(headers: list[tuple[str, str]]) -> bytes:
    # A fresh encoder with never-indexed literals writes nothing to the peer's dynamic table.
    return hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(n, v) for n, v in headers])


_RESPONSE_HEADERS = _header_block(
    [(":status", "200"), ("content-type", "application/grpc"),
     ("grpc-accept-encoding", _ACCEPT_ENCODING)]
)  # fmt: skip
_OK_TRAILERS = _header_block([("grpc-status", "0")])


def _status_block(code: str, message: str) -> bytes:
    """A trailers-only response: a failed call answers its status and no message."""
    headers = [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-accept-encoding", _ACCEPT_ENCODING),
        ("grpc-status", str(STATUS_NUMBERS.get(code, STATUS_NUMBERS["UNKNOWN"]))),
    ]
    if message:
        headers.append(("grpc-message", percent_encode(message)))
    return _header_block(headers)


def percent_encode(message: str) -> str:
    """``grpc-message`` encoding: UTF-8, with bytes outside printable ASCII and ``%`` escaped."""
    return "".join(
        chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}"
        for b in message.encode("utf-8", "backslashreplace")
    )


def parse_timeout(value: str) -> float:
    """Seconds of a ``grpc-timeout`` header: up to 8 digits and a unit (H M S m u n)."""
    digits, unit = value[:-1], value[-1:]
    if not (digits.isdigit() and len(digits) <= 8 and unit in _TIMEOUT_UNITS):
        raise ValueError(f"malformed grpc-timeout {value!r}")
    return int(digits) * _TIMEOUT_UNITS[unit]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes((kind, flags))
        + stream_id.to_bytes(4, "big")
        + payload
    )


def server_preface(max_concurrent_streams: int) -> bytes:
    """The server's first frames: its settings, and the connection window raised to match."""
    settings = {
        _SETTINGS_MAX_CONCURRENT_STREAMS: max_concurrent_streams,
        _SETTINGS_INITIAL_WINDOW_SIZE: _RECEIVE_WINDOW,
        _SETTINGS_MAX_HEADER_LIST_SIZE: _MAX_HEADER_LIST,
    }
    payload = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings.items())
    return frame(_SETTINGS, 0, 0, payload) + frame(
        _WINDOW_UPDATE, 0, 0, (_RECEIVE_WINDOW - _DEFAULT_WINDOW).to_bytes(4, "big")
    )


#: bytes queued in a transport past which the connection stops reading: a peer that does not
#: read its answers (nor PING and SETTINGS acknowledgements) cannot make the server buffer more
_WRITE_BUFFER_HIGH = 4 * 1024 * 1024


class _ProtocolError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class _Stream:
    id: int
    path: str = ""
    encoding: str = "identity"
    deadline: float | None = None
    body: bytearray = field(default_factory=bytearray)
    unacked: int = 0  # bytes received since the last stream WINDOW_UPDATE
    receive_window: int = _RECEIVE_WINDOW  # what the client may still send on this stream
    send_window: int = _DEFAULT_WINDOW
    pending: bytearray = field(default_factory=bytearray)  # DATA waiting for window
    trailers: bytes | None = None  # sent once ``pending`` is out
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    answered: bool = False
    ended: bool = False  # the client sent END_STREAM: the request is whole
    started: bool = False  # its handler has begun (the outbox no longer counts it)


class _Connection(asyncio.Protocol):
    """One client connection: frames in, handler tasks out, responses framed back."""

    def __init__(self, server: GrpcServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.buffer = bytearray()
        self.preface_seen = False
        self.decoder = HeaderBlockDecoder()
        self.streams: dict[int, _Stream] = {}
        self.last_stream = 0
        self.headers_in_progress: tuple[int, int, bytearray] | None = None  # CONTINUATION
        self.peer_window = _DEFAULT_WINDOW  # initial window of new streams we send on
        self.peer_max_frame = _MAX_FRAME
        self.send_window = _DEFAULT_WINDOW  # the connection's
        self.unacked = 0
        self.blocked: dict[int, _Stream] = {}  # streams with DATA waiting for window
        self.going_away = False
        self.closed = False
        self.limits = server.limits
        self.opened = self.idle_since = self.last_received = self.loop.time()
        self.ping_sent: float | None = None  # a keepalive PING not acknowledged yet
        self.receive_window = _RECEIVE_WINDOW  # what the client may still send on the connection
        self.opened_in_read = 0  # streams opened by the frames of one ``data_received``
        self.outgoing = HeldWrites(server.outbox, self._write)

    # ---- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.peer = _peer(
            self.transport.get_extra_info("peername"), self.transport.get_extra_info("sockname")
        )
        self.transport.set_write_buffer_limits(high=_WRITE_BUFFER_HIGH)
        self.server.connections.add(self)

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        for stream in self.streams.values():
            self._forget(stream)
        self.streams.clear()
        self.server.check_idle()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last_received = self.loop.time()
        self.opened_in_read = 0
        out: list[bytes] = []
        try:
            if not self.preface_seen:
                if not self._read_preface():
                    return
                out.append(self.server.preface)  # only now: an HTTP/1 client gets an answer
                if self.server.stopping:
                    self.going_away = True
                    out.append(frame(_GOAWAY, 0, 0, bytes(4) + _NO_ERROR.to_bytes(4, "big")))
            self._read_frames(out)
        except _ProtocolError as exc:
            self._fail(exc.code, str(exc), out)
        if out:
            self.outgoing.send(b"".join(out))

    def _read_preface(self) -> bool:
        if len(self.buffer) < len(_PREFACE):
            if not _PREFACE.startswith(bytes(self.buffer)):
                self._refuse_http1()
            return False
        if bytes(self.buffer[: len(_PREFACE)]) != _PREFACE:
            self._refuse_http1()
            return False
        del self.buffer[: len(_PREFACE)]
        self.preface_seen = True
        return True

    def _refuse_http1(self) -> None:
        """A client that is not speaking HTTP/2 (curl, a browser, the REST port's clients)."""
        body = (
            b"This is a gRPC port: it speaks HTTP/2 only. Send REST requests to the REST API "
            b"port (--rest_api_port, 8501 by default).\n"
        )
        self.outgoing.send(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.abort()
        self.buffer.clear()

    def _fail(self, code: int, message: str, out: list[bytes]) -> None:
        """A connection error: GOAWAY with the code and why, then close."""
        log.warning("gRPC connection from %s closed: %s", self.peer, message)
        debug = message.encode()[:256]
        out.append(
            frame(
                _GOAWAY, 0, 0, self.last_stream.to_bytes(4, "big") + code.to_bytes(4, "big") + debug
            )
        )
        self.outgoing.send(b"".join(out))
        out.clear()
        self.abort()
        self.buffer.clear()

    # ---- frames in ---------------------------------------------------------------------------

    def _read_frames(self, out: list[bytes]) -> None:
        buffer = self.buffer
        start, end = 0, len(buffer)
        while end - start >= 9:
            length = int.from_bytes(buffer[start : start + 3], "big")
            if length > _MAX_FRAME:
                raise _ProtocolError(
                    _FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds {_MAX_FRAME}"
                )
            if end - start < 9 + length:
                break
            kind, flags = buffer[start + 3], buffer[start + 4]
            stream_id = int.from_bytes(buffer[start + 5 : start + 9], "big") & 0x7FFFFFFF
            payload = bytes(buffer[start + 9 : start + 9 + length])
            start += 9 + length
            if self.headers_in_progress is not None and kind != _CONTINUATION:
                raise _ProtocolError(_PROTOCOL_ERROR, "header block interrupted by another frame")
            if kind == _DATA:
                self._on_data(stream_id, flags, payload, out)
            elif kind == _HEADERS:
                self._on_headers(stream_id, flags, payload, out)
            elif kind == _CONTINUATION:
                self._on_continuation(stream_id, flags, payload, out)
            elif kind == _RST_STREAM:
                self._reset(stream_id, None, out)
            elif kind == _SETTINGS:
                self._on_settings(flags, payload, out)
            elif kind == _PING:
                if length != 8 or stream_id:
                    raise _ProtocolError(_FRAME_SIZE_ERROR, "PING must be 8 bytes on stream 0")
                if not flags & _ACK:
                    out.append(frame(_PING, _ACK, 0, payload))
                else:
                    self.ping_sent = None
            elif kind == _WINDOW_UPDATE:
                self._on_window_update(stream_id, payload, out)
            elif kind == _GOAWAY:
                self.going_away = True
            elif kind == _PUSH_PROMISE:
                raise _ProtocolError(_PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")
            # PRIORITY and unknown frame types carry nothing this server acts on
        del buffer[:start]

    def _on_data(self, stream_id: int, flags: int, payload: bytes, out: list[bytes]) -> None:
        self.receive_window -= len(payload)
        if self.receive_window < 0:
            raise _ProtocolError(
                _FLOW_CONTROL_ERROR, "DATA past the connection's flow-control window"
            )
        self.unacked += len(payload)
        if self.unacked >= _RECEIVE_WINDOW // 2:
            out.append(frame(_WINDOW_UPDATE, 0, 0, self.unacked.to_bytes(4, "big")))
            self.receive_window += self.unacked
            self.unacked = 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.task is not None:
            return  # reset, refused or already answered: its data only counts for the window
        stream.receive_window -= len(payload)
        if stream.receive_window < 0:
            raise _ProtocolError(
                _FLOW_CONTROL_ERROR, f"DATA past the flow-control window of stream {stream_id}"
            )
        stream.unacked += len(payload)
        if flags & _PADDED:
            payload = _unpad(payload)
        stream.body += payload
        body = stream.body
        size = int.from_bytes(body[1:5], "big") if len(body) >= 5 else 0
        if max(size, len(body) - 5) > self.server.max_message_bytes:
            self._answer_status(
                stream,
                "RESOURCE_EXHAUSTED",
                f"Received message larger than max ({max(size, len(body) - 5)} vs. "
                f"{self.server.max_message_bytes})",
                out,
            )
            return
        if flags & _END_STREAM:
            stream.ended = True
            self._dispatch(stream, out)
        elif stream.unacked >= _RECEIVE_WINDOW // 2 and len(body) < 5 + size:
            # window only for the rest of the one message a unary call carries: a client that
            # goes on sending past it runs out of window and into FLOW_CONTROL_ERROR
            out.append(frame(_WINDOW_UPDATE, 0, stream_id, stream.unacked.to_bytes(4, "big")))
            stream.receive_window += stream.unacked
            stream.unacked = 0

    def _on_headers(self, stream_id: int, flags: int, payload: bytes, out: list[bytes]) -> None:
        if flags & _PADDED:
            payload = _unpad(payload)
        if flags & _PRIORITY_FLAG:
            payload = payload[5:]
        if flags & _END_HEADERS:
            self._on_header_block(stream_id, flags, payload, out)
        else:
            self.headers_in_progress = (stream_id, flags, bytearray(payload))

    def _on_continuation(
        self, stream_id: int, flags: int, payload: bytes, out: list[bytes]
    ) -> None:
        if self.headers_in_progress is None or self.headers_in_progress[0] != stream_id:
            raise _ProtocolError(_PROTOCOL_ERROR, "CONTINUATION without a header block to continue")
        block = self.headers_in_progress[2]
        block += payload
        if len(block) > 2 * _MAX_HEADER_LIST:
            raise _ProtocolError(
                _ENHANCE_YOUR_CALM, f"header block over {2 * _MAX_HEADER_LIST} bytes"
            )
        if flags & _END_HEADERS:
            first_flags = self.headers_in_progress[1]
            self.headers_in_progress = None
            self._on_header_block(stream_id, first_flags, bytes(block), out)

    def _on_header_block(self, stream_id: int, flags: int, block: bytes, out: list[bytes]) -> None:
        try:
            headers = self.decoder.decode(block)
        except hpack.HPACKError as exc:
            raise _ProtocolError(_COMPRESSION_ERROR, f"undecodable header block: {exc}") from exc
        if stream_id in self.streams:  # trailers from the client: a unary request ends here
            stream = self.streams[stream_id]
            if flags & _END_STREAM and stream.task is None:
                stream.ended = True
                self._dispatch(stream, out)
            return
        if stream_id % 2 == 0:
            raise _ProtocolError(_PROTOCOL_ERROR, f"a client cannot open stream {stream_id}")
        if stream_id <= self.last_stream:  # a stream this server already answered or reset
            out.append(frame(_RST_STREAM, 0, stream_id, _STREAM_CLOSED.to_bytes(4, "big")))
            return
        self.last_stream = stream_id
        self.opened_in_read += 1
        if self.opened_in_read > 2 * self.limits.max_concurrent_streams:
            # nginx's answer to HTTP/2 rapid reset (CVE-2023-44487): a client that opens (and
            # resets) more streams in one read than twice the streams it may hold is flooding
            raise _ProtocolError(
                _ENHANCE_YOUR_CALM,
                f"more than {2 * self.limits.max_concurrent_streams} streams opened in one read",
            )
        if (
            self.going_away
            or self.server.stopping
            or len(self.streams) >= self.limits.max_concurrent_streams
        ):
            out.append(frame(_RST_STREAM, 0, stream_id, _REFUSED_STREAM.to_bytes(4, "big")))
            return
        self.idle_since = self.loop.time()
        stream = _Stream(stream_id, send_window=self.peer_window, ended=bool(flags & _END_STREAM))
        self.streams[stream_id] = stream
        content_type = ""
        for name, value in headers:
            if name == b":path":
                stream.path = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"grpc-encoding":
                stream.encoding = value.decode("latin-1")
            elif name == b"grpc-timeout":
                try:
                    stream.deadline = self.loop.time() + parse_timeout(value.decode("latin-1"))
                except ValueError:
                    self._answer_status(
                        stream, "INTERNAL", f"Invalid grpc-timeout header {value!r}", out
                    )
                    return
        if not _GRPC_CONTENT_TYPE.fullmatch(content_type):
            message = (
                f"Content-Type {content_type!r} is not a gRPC content type: send application/grpc"
            )
            block = _header_block(
                [(":status", "415"), ("content-type", "text/plain"),
                 ("grpc-status", str(STATUS_NUMBERS["INTERNAL"])),
                 ("grpc-message", percent_encode(message))]
            )  # fmt: skip
            self._answer_status(stream, "INTERNAL", message, out, block=block)
            return
        if stream.ended:
            self._dispatch(stream, out)

    def _on_settings(self, flags: int, payload: bytes, out: list[bytes]) -> None:
        if flags & _ACK:
            return
        if len(payload) % 6:
            raise _ProtocolError(_FRAME_SIZE_ERROR, "SETTINGS payload is not a multiple of 6")
        for offset in range(0, len(payload), 6):
            key = int.from_bytes(payload[offset : offset + 2], "big")
            value = int.from_bytes(payload[offset + 2 : offset + 6], "big")
            if key == _SETTINGS_INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise _ProtocolError(_FLOW_CONTROL_ERROR, "initial window above 2^31-1")
                for stream in self.streams.values():
                    stream.send_window += value - self.peer_window
                self.peer_window = value
            elif key == _SETTINGS_MAX_FRAME_SIZE:
                if not _MAX_FRAME <= value <= 2**24 - 1:
                    raise _ProtocolError(_PROTOCOL_ERROR, f"invalid max frame size {value}")
                self.peer_max_frame = value
            # HEADER_TABLE_SIZE does not matter: responses never use the dynamic table
        out.append(frame(_SETTINGS, _ACK, 0))
        self._send_blocked(out)

    def _on_window_update(self, stream_id: int, payload: bytes, out: list[bytes]) -> None:
        if len(payload) != 4:
            raise _ProtocolError(_FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes")
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if not increment:
            if not stream_id:
                raise _ProtocolError(_PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
            self._reset(stream_id, _PROTOCOL_ERROR, out)
            return
        if stream_id == 0:
            self.send_window += increment
            if self.send_window > _MAX_WINDOW:
                raise _ProtocolError(_FLOW_CONTROL_ERROR, "connection window above 2^31-1")
        elif (stream := self.streams.get(stream_id)) is not None:
            stream.send_window += increment
            if stream.send_window > _MAX_WINDOW:  # RFC 9113 §6.9.1: a stream error
                self._reset(stream_id, _FLOW_CONTROL_ERROR, out)
                return
        self._send_blocked(out)

    # ---- calls ----------------------------------------------------------------------------

    def _dispatch(self, stream: _Stream, out: list[bytes]) -> None:
        method = self.server.methods.get(stream.path)
        if method is None:
            self._answer_status(stream, "UNIMPLEMENTED", "Method not found!", out)
            return
        try:
            request = method.request_type.FromString(self._message(stream))
        except ServingError as exc:
            self._answer_status(stream, exc.code, str(exc), out)
            return
        except DecodeError as exc:
            self._answer_status(stream, "INTERNAL", f"Failed to parse the request: {exc}", out)
            return
        except Exception as exc:  # a bug here must fail this call, not the whole connection
            log.exception("gRPC %s failed before its handler ran", stream.path)
            self._answer_status(stream, "INTERNAL", f"{type(exc).__name__}: {exc}", out)
            return
        stream.body = bytearray()
        rpc = Rpc(self.peer, stream.deadline)
        stream.task = self.loop.create_task(self._run(stream, method.handler, request, rpc))
        self.server.outbox.created()
        if stream.deadline is not None:
            stream.timer = self.loop.call_at(stream.deadline, self._expire, stream)

    def _message(self, stream: _Stream) -> bytes:
        body = stream.body
        if len(body) < 5 or len(body) != 5 + int.from_bytes(body[1:5], "big"):
            raise ServingError(
                "A unary call carries exactly one length-prefixed message; this request's body "
                f"is {len(body)} bytes that do not frame one",
                code="INTERNAL",
            )
        message = bytes(body[5:])
        if not body[0]:
            return message
        if stream.encoding == "identity":
            raise ServingError(
                "The message is flagged compressed but the call names no grpc-encoding",
                code="INTERNAL",
            )
        if stream.encoding not in _WBITS:
            raise ServingError(
                f"Compression algorithm '{stream.encoding}' is not supported: send identity, "
                "deflate or gzip",
                code="UNIMPLEMENTED",
            )
        return self._decompress(message, _WBITS[stream.encoding])

    def _decompress(self, message: bytes, wbits: int) -> bytes:
        """The message inflated, never past the size limit (a small body can inflate to GBs)."""
        limit = self.server.max_message_bytes
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            inflated = inflater.decompress(message, limit + 1)
        except zlib.error as exc:
            raise ServingError(f"Failed to decompress the request: {exc}", code="INTERNAL") from exc
        if len(inflated) > limit:
            raise ServingError(
                f"Received message larger than max (more than {limit} bytes once decompressed)",
                code="RESOURCE_EXHAUSTED",
            )
        if not inflater.eof:
            raise ServingError(
                "Failed to decompress the request: the compressed message is truncated",
                code="INTERNAL",
            )
        return inflated

    async def _run(self, stream: _Stream, handler: Handler, request: Any, rpc: Rpc) -> None:
        self._start(stream)
        try:
            response = await handler(request, rpc)
            payload = response.SerializeToString()
        except ServingError as exc:
            self._answer(stream, None, exc.code, str(exc))
        except asyncio.CancelledError:
            # The server cancels a call it has already answered (deadline) or that has no one to
            # answer (reset, lost connection, stop): then this does nothing. Anything else that
            # cancels the handler still owes the client a status.
            self._answer(stream, None, "CANCELLED", "Cancelled")
            raise
        except Exception as exc:  # the edge: a bug must still answer a status, and be logged
            log.exception("gRPC %s failed", stream.path)
            self._answer(stream, None, "INTERNAL", f"{type(exc).__name__}: {exc}")
        else:
            self._answer(stream, payload, "OK", "")

    def _start(self, stream: _Stream) -> None:
        """The stream's handler starts, or will never start (cancelled before it ran)."""
        if not stream.started:
            stream.started = True
            self.server.outbox.started()

    def _cancel(self, stream: _Stream) -> bool:
        """Cancel the stream's handler if it has not finished; whether it had begun or not,
        the outbox stops waiting for it."""
        if stream.task is None or stream.task.done():
            return False
        stream.task.cancel()
        self._start(stream)
        return True

    def _expire(self, stream: _Stream) -> None:
        if self._cancel(stream):
            self._answer(stream, None, "DEADLINE_EXCEEDED", "Deadline Exceeded")

    def _answer_status(
        self, stream: _Stream, code: str, message: str, out: list[bytes], *, block: bytes = b""
    ) -> None:
        """A status and no message, before or after a handler ran (the stream may still be
        receiving); ``block`` replaces the usual trailers-only header block."""
        self.streams.pop(stream.id, None)
        stream.answered = True
        block = block or _status_block(code, _truncate(message))
        out.append(_frames(_HEADERS, _END_STREAM, stream.id, block, self.peer_max_frame))
        if not stream.ended:  # the client is still sending: tell it to stop
            out.append(frame(_RST_STREAM, 0, stream.id, _NO_ERROR.to_bytes(4, "big")))
        self.server.check_idle()

    def _answer(self, stream: _Stream, payload: bytes | None, code: str, message: str) -> None:
        """The handler's response or status, queued behind the frames sent before it."""
        if stream.answered or self.closed or self.streams.get(stream.id) is not stream:
            return
        if stream.timer is not None:
            stream.timer.cancel()
        assert self.transport is not None
        out: list[bytes] = []
        held = (
            self.transport.get_write_buffer_size()
            + self.outgoing.size
            + sum(len(s.pending) for s in self.blocked.values())
        )
        if payload is None:
            self._answer_status(stream, code, message, out)
        elif held and held + 5 + len(payload) > self.limits.max_pending_bytes:
            self._answer_status(
                stream,
                "RESOURCE_EXHAUSTED",
                f"This connection holds {held} bytes of answers its client has not read, and this "
                f"one ({len(payload)} bytes) would pass the limit of "
                f"{self.limits.max_pending_bytes}: read the answers (open the flow-control "
                "window) before sending more calls",
                out,
            )
        else:
            stream.answered = True
            out.append(_frames(_HEADERS, 0, stream.id, _RESPONSE_HEADERS, self.peer_max_frame))
            stream.pending += b"\0" + len(payload).to_bytes(4, "big") + payload
            stream.trailers = _OK_TRAILERS
            self._send_data(stream, out)
        self.outgoing.send(b"".join(out))

    # ---- frames out ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _send_data(self, stream: _Stream, out: list[bytes]) -> None:
        """As much of the stream's response as the windows allow; the trailers once it is out."""
        pending = stream.pending
        sent = 0
        while sent < len(pending):
            size = min(
                len(pending) - sent, self.peer_max_frame, stream.send_window, self.send_window
            )
            if size <= 0:
                break
            out.append(frame(_DATA, 0, stream.id, bytes(pending[sent : sent + size])))
            sent += size
            stream.send_window -= size
            self.send_window -= size
        del pending[:sent]
        if pending:
            self.blocked[stream.id] = stream
            return
        self.blocked.pop(stream.id, None)
        if stream.trailers is not None:
            out.append(
                _frames(_HEADERS, _END_STREAM, stream.id, stream.trailers, self.peer_max_frame)
            )
            self.streams.pop(stream.id, None)
            self.server.check_idle()

    def _send_blocked(self, out: list[bytes]) -> None:
        for stream in list(self.blocked.values()):
            if self.send_window <= 0:
                break
            self._send_data(stream, out)

    def _reset(self, stream_id: int, code: int | None, out: list[bytes]) -> None:
        """Drop a stream the client reset (``code`` None) or that this server resets."""
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self._forget(stream)
            self.server.check_idle()
        if code is not None:
            out.append(frame(_RST_STREAM, 0, stream_id, code.to_bytes(4, "big")))

    def _forget(self, stream: _Stream) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
        self._cancel(stream)
        self.blocked.pop(stream.id, None)

    def go_away(self) -> None:
        """Stop taking new streams (the ones open finish), and say so to the client."""
        if self.closed or self.transport is None:
            return
        if not self.preface_seen:  # nothing to finish, and a GOAWAY may not precede SETTINGS
            self.abort()
            return
        self.going_away = True
        self.outgoing.send(
            frame(_GOAWAY, 0, 0, self.last_stream.to_bytes(4, "big") + _NO_ERROR.to_bytes(4, "big"))
        )

    def abort(self) -> None:
        """Close the connection once what it holds is written."""
        if self.transport is not None and not self.closed:
            self.outgoing.flush()
            self.transport.close()

    def check_time(self, now: float) -> None:
        """Close or ping the connection by the clock: a preface that never came, an age or an
        idle time past its limit, a keepalive PING not acknowledged (``ConnectionLimits``)."""
        limits = self.limits
        if not self.preface_seen:
            if now - self.opened > limits.handshake_timeout:
                log.warning("gRPC connection from %s closed: no HTTP/2 preface", self.peer)
                self.abort()
            return
        if self.streams:
            self.idle_since = now
        age = now - self.opened
        if limits.max_connection_age is not None and age > limits.max_connection_age:
            if not self.going_away:
                self.go_away()
            grace = limits.max_connection_age_grace
            if grace is not None and age > limits.max_connection_age + grace:
                self.abort()
        idle = limits.max_connection_idle
        if idle is not None and not self.streams and now - self.idle_since > idle:
            self.go_away()
        if self.going_away and not self.streams:
            self.abort()
            return
        if limits.keepalive_time is None:
            return
        if self.ping_sent is not None:
            if now - self.ping_sent > limits.keepalive_timeout:
                log.warning("gRPC connection from %s closed: keepalive PING unanswered", self.peer)
                self.abort()
        elif now - self.last_received > limits.keepalive_time and self.transport is not None:
            self.ping_sent = now
            self.outgoing.send(frame(_PING, 0, 0, b"keepaliv"))


def _frames(kind: int, flags: int, stream_id: int, block: bytes, max_frame: int) -> bytes:
    """A header block as HEADERS (+ CONTINUATION frames when it is longer than a frame)."""
    if len(block) <= max_frame:
        return frame(kind, flags | _END_HEADERS, stream_id, block)
    parts = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
    frames = [frame(kind, flags, stream_id, parts[0])]
    frames += [frame(_CONTINUATION, 0, stream_id, part) for part in parts[1:-1]]
    frames.append(frame(_CONTINUATION, _END_HEADERS, stream_id, parts[-1]))
    return b"".join(frames)


def _unpad(payload: bytes) -> bytes:
    if not payload or payload[0] >= len(payload):
        raise _ProtocolError(_PROTOCOL_ERROR, "padding longer than its frame")
    return payload[1 : len(payload) - payload[0]]


_MAX_DETAILS = 1024


def _truncate(message: str) -> str:
    """Status messages longer than 1024 characters end in ``...TRUNCATED``, as TF Serving's
    ``model_servers/grpc_status_util.cc``."""
    if len(message) <= _MAX_DETAILS:
        return message
    return message[: _MAX_DETAILS - len("...TRUNCATED")] + "...TRUNCATED"


def _peer(address: Any, local: Any) -> str:
    """The peer as grpc names it: ``ipv4:127.0.0.1:5555``, ``ipv6:[::1]:5555`` or, on a Unix
    socket, ``unix:<socket path>``."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"
    if isinstance(local, str):
        return f"unix:{local}"
    return str(address or "unknown")


class GrpcServer:
    """Unary gRPC methods by path (``/package.Service/Method``) on TCP and Unix sockets, all
    served the same way, within ``limits``; ``outbox`` is shared with the loop's other servers."""

    def __init__(
        self,
        methods: Mapping[str, Method],
        *,
        limits: ConnectionLimits | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.methods = dict(methods)
        self.limits = limits or ConnectionLimits()
        self.outbox = outbox or Outbox()
        self.max_message_bytes = self.limits.max_receive_message_length
        self.preface = server_preface(self.limits.max_concurrent_streams)
        self.connections: set[_Connection] = set()
        self.stopping = False
        self._listeners: list[asyncio.Server] = []
        self._idle: asyncio.Event | None = None
        self._clock: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen on ``host:port`` (0: any free port), over TLS with ``tls``; returns the port
        bound."""
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, ssl=tls
        )
        self._listening(listener)
        return int(listener.sockets[0].getsockname()[1])

    async def start_unix(self, path: str, tls: ssl.SSLContext | None = None) -> None:
        """Listen on the Unix socket ``path`` too (a stale socket file there is replaced)."""
        loop = asyncio.get_running_loop()
        listener = await loop.create_unix_server(lambda: _Connection(self), path, ssl=tls)
        self._listening(listener)

    def _listening(self, listener: asyncio.Server) -> None:
        self._listeners.append(listener)
        if self._clock is None:
            self._clock = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        """Every connection's clock-driven limits, checked a few times a second."""
        limits = self.limits
        times = [
            limits.handshake_timeout,
            limits.max_connection_age,
            limits.max_connection_age_grace,
            limits.max_connection_idle,
            limits.keepalive_time,
            limits.keepalive_timeout,
        ]
        interval = min(0.5, *(t / 4 for t in times if t is not None))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.01, interval))
            now = loop.time()
            for connection in list(self.connections):
                connection.check_time(now)

    def in_flight(self) -> int:
        return sum(len(connection.streams) for connection in self.connections)

    def check_idle(self) -> None:
        if self._idle is not None and not self.in_flight():
            self._idle.set()

    async def stop(self, grace: float) -> None:
        """Refuse new calls, let the calls in flight finish for up to ``grace`` seconds, then
        close every connection."""
        self.stopping = True
        for listener in self._listeners:
            listener.close()
        for connection in list(self.connections):
            connection.go_away()
        self._idle = asyncio.Event()
        self.check_idle()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning(
                "%d gRPC calls still running after %.1f s; closing", self.in_flight(), grace
            )
        for connection in list(self.connections):
            connection.abort()
        if self._clock is not None:
            self._clock.cancel()
        for listener in self._listeners:
            await listener.wait_closed()
