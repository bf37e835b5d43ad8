"""The unary gRPC server, checked with grpc's own client and with raw HTTP/2 frames.

Methods here are toys on protobuf's wrapper messages, so each test is about the wire: framing,
flow control both ways, statuses and their encoding, deadlines, cancellation, compression, and
a graceful stop. TF Serving's services on top of it are checked in ``test_conformance.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2
from rawh2 import RawClient

from timonel.errors import ServingError
from timonel.server.channel_arguments import ConnectionLimits
from timonel.server.grpc_server import (
    GrpcServer,
    Method,
    Rpc,
    frame,
    parse_timeout,
    percent_encode,
)

ECHO = "/test.Toys/Echo"


@dataclass
class Toys:
    """Handlers that echo, fail, wait or record what they saw."""

    loop: asyncio.AbstractEventLoop | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    release: asyncio.Event | None = None
    timeouts: list[int] = field(default_factory=list)

    async def echo(self, request: Any, rpc: Rpc) -> Any:
        return wrappers_pb2.BytesValue(value=request.value * 2)

    async def fail(self, request: Any, rpc: Rpc) -> Any:
        raise ServingError(request.value.decode(), code="NOT_FOUND")

    async def bug(self, request: Any, rpc: Rpc) -> Any:
        raise ValueError("a bug in the handler")

    async def wait(self, request: Any, rpc: Rpc) -> Any:
        """Waits until released (or forever), noting its timeout and whether it was cancelled."""
        self.timeouts.append(rpc.timeout_ms())
        self.started.set()
        try:
            if self.release is None:
                self.release = asyncio.Event()
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return wrappers_pb2.BytesValue(value=b"released")

    async def cancels_itself(self, request: Any, rpc: Rpc) -> Any:
        raise asyncio.CancelledError

    def methods(self) -> dict[str, Method]:
        handlers: dict[str, Callable[[Any, Rpc], Awaitable[Any]]] = {
            ECHO: self.echo,
            "/test.Toys/Fail": self.fail,
            "/test.Toys/Bug": self.bug,
            "/test.Toys/Wait": self.wait,
            "/test.Toys/CancelsItself": self.cancels_itself,
        }
        return {path: Method(wrappers_pb2.BytesValue, h) for path, h in handlers.items()}


def _method(channel: grpc.Channel, path: str) -> Any:
    """A unary method of the toys, taking and answering ``BytesValue``."""
    return channel.unary_unary(
        path,
        request_serializer=wrappers_pb2.BytesValue.SerializeToString,
        response_deserializer=wrappers_pb2.BytesValue.FromString,
    )


@dataclass
class Running:
    server: GrpcServer
    port: int
    loop: asyncio.AbstractEventLoop
    toys: Toys

    def call(self, path: str, value: bytes, **kwargs: Any) -> bytes:
        with grpc.insecure_channel(
            f"127.0.0.1:{self.port}",
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        ) as channel:
            reply = _method(channel, path)(wrappers_pb2.BytesValue(value=value), **kwargs)
        return bytes(reply.value)

    def stop(self, grace: float) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop).result(timeout=30)

    def release_waiters(self) -> None:
        def release() -> None:
            if self.toys.release is not None:
                self.toys.release.set()

        self.loop.call_soon_threadsafe(release)


@contextlib.contextmanager
def running(max_message_bytes: int = 2**31 - 1) -> Iterator[Running]:
    """A server on its own event loop thread, on a free port; stopped on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-server-loop", daemon=True)
    thread.start()
    toys = Toys(loop)

    async def start() -> tuple[GrpcServer, int]:
        server = GrpcServer(
            toys.methods(), limits=ConnectionLimits(max_receive_message_length=max_message_bytes)
        )
        return server, await server.start("127.0.0.1", 0)

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    state = Running(server, port, loop, toys)
    try:
        yield state
    finally:
        state.release_waiters()
        if not server.stopping:
            state.stop(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[Running]:
    with running() as state:
        yield state


def _rpc_error(run: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        run()
    return caught.value


# ---- through grpc's client ------------------------------------------------------------------


def test_a_unary_call_answers(shared: Running) -> None:
    assert shared.call(ECHO, b"ab") == b"abab"


def test_megabytes_flow_both_ways_past_every_window(shared: Running) -> None:
    """40 MB in (more than the 16 MiB the server lets a client send ahead) and 80 MB out (more
    than grpc's client window): both sides wait for WINDOW_UPDATEs."""
    payload = bytes(range(256)) * (40 * 1024 * 1024 // 256)
    assert shared.call(ECHO, payload) == payload * 2


def test_a_hundred_concurrent_calls_on_one_connection(shared: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{shared.port}") as channel:
        echo = _method(channel, ECHO)
        futures = [echo.future(wrappers_pb2.BytesValue(value=b"%d" % i)) for i in range(100)]
        assert [f.result(timeout=30).value for f in futures] == [b"%d" % i * 2 for i in range(100)]


def test_an_unknown_method_is_unimplemented(shared: Running) -> None:
    error = _rpc_error(lambda: shared.call("/test.Toys/Nope", b""))
    assert (error.code(), error.details()) == (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


def test_a_serving_error_answers_its_code_and_message(shared: Running) -> None:
    message = "modèle « x » introuvable: 100% sûr\n"
    error = _rpc_error(lambda: shared.call("/test.Toys/Fail", message.encode()))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, message)


def test_a_long_message_is_truncated_as_tf_serving_does(shared: Running) -> None:
    error = _rpc_error(lambda: shared.call("/test.Toys/Fail", b"x" * 5000))
    assert len(error.details()) == 1024
    assert error.details().endswith("x...TRUNCATED")


def test_a_handler_bug_is_internal_and_names_the_exception(
    shared: Running, caplog: pytest.LogCaptureFixture
) -> None:
    error = _rpc_error(lambda: shared.call("/test.Toys/Bug", b""))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INTERNAL,
        "ValueError: a bug in the handler",
    )
    assert "gRPC /test.Toys/Bug failed" in caplog.text


def test_a_compressed_request_is_read(shared: Running) -> None:
    for compression in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        assert shared.call(ECHO, b"zip" * 1000, compression=compression) == b"zip" * 2000


def test_a_handler_cancelled_from_within_still_answers(shared: Running) -> None:
    error = _rpc_error(lambda: shared.call("/test.Toys/CancelsItself", b"", timeout=30))
    assert (error.code(), error.details()) == (grpc.StatusCode.CANCELLED, "Cancelled")


def test_a_message_over_the_limit_is_refused() -> None:
    with running(max_message_bytes=1000) as state:
        error = _rpc_error(lambda: state.call(ECHO, b"x" * 5000))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details().startswith("Received message larger than max (")
        assert "vs. 1000)" in error.details()
        assert state.call(ECHO, b"ok") == b"okok"  # the connection goes on


def test_a_compressed_message_is_not_inflated_past_the_limit() -> None:
    """A few kilobytes of gzip that would inflate to megabytes are refused, not inflated."""
    with running(max_message_bytes=100_000) as state:
        error = _rpc_error(
            lambda: state.call(ECHO, b"\0" * 5_000_000, compression=grpc.Compression.Gzip)
        )
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "more than 100000 bytes once decompressed" in error.details()


def test_the_deadline_ends_the_call_and_cancels_its_handler() -> None:
    with running() as state:
        error = _rpc_error(lambda: state.call("/test.Toys/Wait", b"", timeout=0.5))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert state.toys.cancelled.wait(10)
        assert 0 < state.toys.timeouts[0] <= 500


def test_a_call_without_deadline_has_no_timeout() -> None:
    with running() as state:
        with grpc.insecure_channel(f"127.0.0.1:{state.port}") as channel:
            future = _method(channel, "/test.Toys/Wait").future(wrappers_pb2.BytesValue())
            assert state.toys.started.wait(10)
            state.release_waiters()
            assert future.result(timeout=10).value == b"released"
        assert state.toys.timeouts == [0]


def test_a_client_cancel_cancels_the_handler() -> None:
    with running() as state, grpc.insecure_channel(f"127.0.0.1:{state.port}") as channel:
        future = channel.unary_unary("/test.Toys/Wait").future(b"")
        assert state.toys.started.wait(10)
        future.cancel()
        assert state.toys.cancelled.wait(10)


def test_a_stop_lets_calls_in_flight_finish_and_refuses_new_ones() -> None:
    with running() as state, grpc.insecure_channel(f"127.0.0.1:{state.port}") as channel:
        future = _method(channel, "/test.Toys/Wait").future(wrappers_pb2.BytesValue())
        assert state.toys.started.wait(10)
        stopping = threading.Thread(target=state.stop, args=(30,))
        stopping.start()
        while not state.server.stopping:
            threading.Event().wait(0.01)
        state.release_waiters()
        assert future.result(timeout=10).value == b"released"
        stopping.join(timeout=30)
        error = _rpc_error(lambda: state.call(ECHO, b"", timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_a_stop_past_its_grace_closes_calls_still_running() -> None:
    with running() as state, grpc.insecure_channel(f"127.0.0.1:{state.port}") as channel:
        future = channel.unary_unary("/test.Toys/Wait").future(b"")
        assert state.toys.started.wait(10)
        state.stop(0.2)
        assert state.toys.cancelled.wait(10)
        with pytest.raises(grpc.RpcError):
            future.result(timeout=10)


# ---- raw HTTP/2 ---------------------------------------------------------------------------


@pytest.fixture
def raw(shared: Running) -> Iterator[RawClient]:
    client = RawClient(shared.port)
    with client.socket:
        yield client


def _message(value: bytes) -> bytes:
    body = wrappers_pb2.BytesValue(value=value).SerializeToString()
    return b"\0" + len(body).to_bytes(4, "big") + body


class _CountedWrites:
    """A server connection's transport, keeping what is written through it."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def test_answers_to_calls_read_together_leave_together(shared: Running, raw: RawClient) -> None:
    client = raw
    client.until(0x4, 0)  # the server's settings: it has read the preface
    peer = f"ipv4:127.0.0.1:{client.socket.getsockname()[1]}"

    async def count_writes() -> _CountedWrites:
        [connection] = [c for c in shared.server.connections if c.peer == peer]
        counted = _CountedWrites(connection.transport)
        connection.transport = counted  # type: ignore[assignment]
        return counted

    counted = asyncio.run_coroutine_threadsafe(count_writes(), shared.loop).result(timeout=10)
    streams = range(1, 20, 2)
    client.send(
        b"".join(
            frame(0x1, 0x4, stream, client.headers(ECHO))
            + frame(0x0, 0x1, stream, _message(b"%d" % stream))
            for stream in streams
        )
    )
    for stream in streams:
        assert client.response(stream)["message"].endswith(str(stream) * 2)
    # the first nine answers wait for the last handler to start, which answers alone after them
    assert len(counted.writes) == 2
    assert len(counted.writes[0]) > 8 * len(counted.writes[1])


def test_ping_is_answered_with_the_same_payload(raw: RawClient) -> None:
    client = raw
    client.send(frame(0x6, 0, 0, b"12345678"))
    assert client.until(0x6) == (0x1, b"12345678")


def test_settings_are_acknowledged(raw: RawClient) -> None:
    client = raw
    flags, _ = client.until(0x4)  # the server's own settings come first
    assert flags == 0
    assert client.until(0x4) == (0x1, b"")


def test_padding_and_continuation_frames_are_read(raw: RawClient) -> None:
    client = raw
    block = client.headers(ECHO)
    padded = bytes([3]) + _message(b"hi") + b"\0\0\0"
    client.send(
        frame(0x1, 0x0, 1, block[:5])  # HEADERS without END_HEADERS
        + frame(0x9, 0x4, 1, block[5:])  # CONTINUATION with END_HEADERS
        + frame(0x0, 0x1 | 0x8, 1, padded)  # DATA, END_STREAM, PADDED
    )
    answer = client.response(1)
    assert (answer[":status"], answer["grpc-status"]) == ("200", "0")
    assert answer["message"].encode("latin-1").endswith(b"hihi")


def _compressed_call(client: RawClient, stream: int, body: bytes, encoding: str) -> None:
    block = client.encoder.encode(
        [(":method", "POST"), (":scheme", "http"), (":path", ECHO), (":authority", "test"),
         ("content-type", "application/grpc"), ("grpc-encoding", encoding)]
    )  # fmt: skip
    message = b"\1" + len(body).to_bytes(4, "big") + body
    client.send(frame(0x1, 0x4, stream, block) + frame(0x0, 0x1, stream, message))


def test_a_corrupt_compressed_message_fails_its_call_only(raw: RawClient) -> None:
    _compressed_call(raw, 1, b"\x1f\x8b not gzip at all", "gzip")
    answer = raw.response(1)
    assert answer["grpc-status"] == "13"
    assert answer["grpc-message"].startswith("Failed to decompress the request")
    raw.send(frame(0x1, 0x4, 3, raw.headers(ECHO)) + frame(0x0, 0x1, 3, _message(b"on")))
    assert raw.response(3)["grpc-status"] == "0"  # the connection goes on


def test_a_compressed_flag_without_an_encoding_is_internal(raw: RawClient) -> None:
    _compressed_call(raw, 1, b"whatever", "identity")
    answer = raw.response(1)
    assert answer["grpc-status"] == "13"
    assert "names no grpc-encoding" in answer["grpc-message"]


def test_an_unknown_encoding_is_unimplemented_and_says_which_work(raw: RawClient) -> None:
    _compressed_call(raw, 1, b"whatever", "snappy")
    answer = raw.response(1)
    assert answer["grpc-status"] == "12"
    assert answer["grpc-accept-encoding"] == "identity,deflate,gzip"
    assert "'snappy' is not supported" in answer["grpc-message"]


def test_headers_on_a_stream_already_answered_reset_only_that_stream(raw: RawClient) -> None:
    raw.send(frame(0x1, 0x4, 1, raw.headers(ECHO)) + frame(0x0, 0x1, 1, _message(b"a")))
    assert raw.response(1)["grpc-status"] == "0"
    raw.send(frame(0x1, 0x4 | 0x1, 1, raw.headers(ECHO)))
    _, payload = raw.until(0x3, stream=1)
    assert int.from_bytes(payload) == 0x5  # STREAM_CLOSED
    raw.send(frame(0x1, 0x4, 3, raw.headers(ECHO)) + frame(0x0, 0x1, 3, _message(b"b")))
    assert raw.response(3)["grpc-status"] == "0"


def test_an_endless_header_block_ends_the_connection(raw: RawClient) -> None:
    raw.send(frame(0x1, 0x0, 1, raw.headers(ECHO)[:5]))
    raw.send(b"".join(frame(0x9, 0x0, 1, b"\0" * 16_384) for _ in range(9)))
    _, payload = raw.until(0x7)
    assert int.from_bytes(payload[4:8]) == 0xB  # ENHANCE_YOUR_CALM


def test_a_request_that_is_not_grpc_gets_415(raw: RawClient) -> None:
    client = raw
    client.send(frame(0x1, 0x4 | 0x1, 1, client.headers(ECHO, content_type="application/json")))
    answer = client.response(1)
    assert answer[":status"] == "415"
    assert "send application/grpc" in answer["grpc-message"]


def test_a_body_that_is_not_one_message_is_internal(raw: RawClient) -> None:
    client = raw
    client.send(frame(0x1, 0x4, 1, client.headers(ECHO)) + frame(0x0, 0x1, 1, b"\0\0\0\0\x09ab"))
    answer = client.response(1)
    assert answer["grpc-status"] == "13"
    assert "exactly one length-prefixed message" in answer["grpc-message"]


def test_an_oversized_frame_ends_the_connection_with_goaway(raw: RawClient) -> None:
    client = raw
    client.send((1 << 20).to_bytes(3, "big") + b"\0\0\0\0\0\x01" + b"x" * 100)
    _, payload = client.until(0x7)
    assert int.from_bytes(payload[4:8]) == 0x6  # FRAME_SIZE_ERROR
    assert b"exceeds 16384" in payload[8:]


def test_an_http1_request_is_told_where_rest_is(shared: Running) -> None:
    with socket.create_connection(("127.0.0.1", shared.port), timeout=10) as raw:
        raw.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := raw.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"--rest_api_port" in reply


# ---- pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1S", 1.0), ("250m", 0.25), ("2M", 120.0), ("1H", 3600.0), ("5u", 5e-6), ("7n", 7e-9)],
)
def test_grpc_timeout_units(header: str, seconds: float) -> None:
    assert parse_timeout(header) == pytest.approx(seconds)


@pytest.mark.parametrize("header", ["", "S", "1", "1s", "123456789S", "-1S", "1.5S"])
def test_malformed_grpc_timeouts_are_refused(header: str) -> None:
    with pytest.raises(ValueError, match="malformed grpc-timeout"):
        parse_timeout(header)


def test_grpc_message_percent_encoding() -> None:
    assert percent_encode("ok: 50% é\n") == "ok: 50%25 %C3%A9%0A"


def test_a_frame_is_length_type_flags_stream_payload() -> None:
    assert frame(0x8, 0x0, 3, b"\0\0\0\x05") == bytes.fromhex("000004 08 00 00000003 00000005")
