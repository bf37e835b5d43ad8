"""``timonel serve``'s gRPC port under abuse, over raw sockets: HTTP/2's known attacks and random
frame sequences. Each attack is bounded in count and time, and every test ends by checking that
another client is still answered."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawh2 import PREFACE, RawClient, settings_frame
from serverproc import ServerProcess, spawn
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from timonel.codec.tensor_proto import to_tensor_proto
from timonel.server.grpc_server import frame

PREDICT = "/tensorflow.serving.PredictionService/Predict"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM = 0x1
REFUSED_STREAM, FLOW_CONTROL_ERROR, CANCEL, ENHANCE_YOUR_CALM = 0x7, 0x3, 0x8, 0xB
MAX_STREAMS = 8
LIMITS = (
    f"grpc.max_concurrent_streams={MAX_STREAMS},grpc.max_connection_idle_ms=1500,"
    "grpc.server_handshake_timeout_ms=1000"
)


def predict_request(size: int = 3) -> bytes:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "hpt"
    request.inputs["x"].CopyFrom(to_tensor_proto(np.arange(size, dtype=np.float32)))
    return request.SerializeToString()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_repo: Path) -> Iterator[ServerProcess]:
    process = spawn(
        tmp_path_factory.mktemp("serve"),
        "--model_name=hpt",
        f"--model_base_path={model_repo / 'hpt'}",
        f"--grpc_channel_arguments={LIMITS}",
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.terminate()
        logs = process.stderr.read_text() + process.stdout.read_text()
        assert "Traceback" not in logs and "Fatal error" not in logs, logs


def assert_still_answers(server: ServerProcess) -> None:
    """A well-behaved client on its own connection gets its answer."""
    with server.channel() as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        reply = stub.Predict(predict_pb2.PredictRequest.FromString(predict_request()), timeout=10)
    assert list(reply.outputs["y"].float_val) == [3.0, 3.5, 4.0]


def grpc_status(client: RawClient, stream: int) -> str:
    return client.response(stream)["grpc-status"]


def grpc_statuses(client: RawClient, streams: list[int]) -> list[str]:
    """The grpc-status of each stream's answer, however the answers interleave."""
    found: dict[int, str] = {}
    while len(found) < len(streams):
        kind, flags, on, payload = client.read_frame()
        if kind == HEADERS and flags & END_STREAM and on in streams:
            found[on] = dict(client.decoder.decode(payload))["grpc-status"]
    return [found[stream] for stream in streams]


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection within ``within`` seconds (frames it sends
    before closing are read and dropped)."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def test_the_server_advertises_its_stream_limit(server: ServerProcess) -> None:
    client = RawClient(server.grpc_port)
    with client.socket:
        flags, payload = client.until(SETTINGS)
    pairs = {
        int.from_bytes(payload[i : i + 2]): int.from_bytes(payload[i + 2 : i + 6])
        for i in range(0, len(payload), 6)
    }
    assert (flags, pairs[0x3]) == (0, MAX_STREAMS)


def test_streams_past_the_limit_are_refused_and_the_open_ones_answered(
    server: ServerProcess,
) -> None:
    client = RawClient(server.grpc_port)
    with client.socket:
        message = predict_request()
        body = b"\0" + len(message).to_bytes(4, "big") + message
        opened = [2 * i + 1 for i in range(MAX_STREAMS)]
        for stream in opened:  # open, not ended: each holds its slot
            client.send(frame(HEADERS, 0x4, stream, client.headers(PREDICT)))
        extra = 2 * MAX_STREAMS + 1
        client.call(extra, PREDICT, message)
        _, code = client.until(RST_STREAM, stream=extra)
        assert int.from_bytes(code) == REFUSED_STREAM
        for stream in opened:
            client.send(frame(DATA, END_STREAM, stream, body))
        assert grpc_statuses(client, opened) == ["0"] * MAX_STREAMS
        client.call(extra + 2, PREDICT, message)  # slots free again
        assert grpc_status(client, extra + 2) == "0"
    assert_still_answers(server)


def test_rapid_reset_ends_the_connection_and_other_clients_are_answered(
    server: ServerProcess,
) -> None:
    """CVE-2023-44487: calls opened and reset at once, in bulk, over connection after connection,
    while another client calls: each flooding connection is ended with ENHANCE_YOUR_CALM once it
    opens more than twice its stream limit in one read, and the other client's calls go on."""
    connections, per_connection = 50, 2000
    answered: list[float] = []
    done = threading.Event()

    def other_client() -> None:
        with server.channel() as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest.FromString(predict_request())
            while not done.is_set():
                start = time.monotonic()
                stub.Predict(request, timeout=10)
                answered.append(time.monotonic() - start)

    message = predict_request()
    body = b"\0" + len(message).to_bytes(4, "big") + message
    encoder = RawClient.__new__(RawClient)
    encoder.encoder = hpack.Encoder()
    block, again = encoder.headers(PREDICT), encoder.headers(PREDICT)  # the second: indexed
    burst = frame(HEADERS, 0x4, 1, block) + b"".join(
        frame(HEADERS, 0x4, stream, again)
        + frame(DATA, END_STREAM, stream, body)
        + frame(RST_STREAM, 0, stream, CANCEL.to_bytes(4, "big"))
        for stream in range(3, 2 * per_connection, 2)
    )
    thread = threading.Thread(target=other_client)
    thread.start()
    try:
        for _ in range(connections):
            with socket.create_connection(("127.0.0.1", server.grpc_port), timeout=10) as sock:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(PREFACE + settings_frame({}) + burst)
                client = RawClient.__new__(RawClient)
                client.socket, client.buffer = sock, b""
                _, payload = client.until(GOAWAY)
                assert int.from_bytes(payload[4:8]) == ENHANCE_YOUR_CALM
    finally:
        done.set()
        thread.join(timeout=30)
    assert answered and max(answered) < 2, answered


def test_a_connection_that_never_sends_the_preface_is_closed(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.grpc_port)) as silent:
        assert closed_by_server(silent, within=5)
    with socket.create_connection(("127.0.0.1", server.grpc_port)) as partial:
        partial.sendall(PREFACE[:10])
        assert closed_by_server(partial, within=5)
    assert_still_answers(server)


def test_an_idle_connection_is_sent_goaway_and_closed(server: ServerProcess) -> None:
    client = RawClient(server.grpc_port)
    with client.socket:
        client.call(1, PREDICT, predict_request())
        assert grpc_status(client, 1) == "0"
        started = time.monotonic()
        _, payload = client.until(GOAWAY)
        assert int.from_bytes(payload[4:8]) == 0  # NO_ERROR
        assert closed_by_server(client.socket, within=5)
        assert 1.0 < time.monotonic() - started < 6


def test_many_idle_connections_are_all_closed(server: ServerProcess) -> None:
    clients = [RawClient(server.grpc_port) for _ in range(200)]
    try:
        assert_still_answers(server)
        deadline = time.monotonic() + 10
        for client in clients:
            assert closed_by_server(client.socket, within=max(0.1, deadline - time.monotonic()))
    finally:
        for client in clients:
            client.socket.close()


def test_a_client_whose_window_never_opens_holds_bounded_answers(server: ServerProcess) -> None:
    """Answers a client does not take wait in the server up to a cap; calls past it are
    RESOURCE_EXHAUSTED, and opening the window delivers the ones held."""
    size = 4_000_000  # 16 MB answers: four fit under the 64 MiB cap
    calls = [1, 3, 5, 7, 9, 11]
    client = RawClient(server.grpc_port, settings={0x4: 0})  # SETTINGS_INITIAL_WINDOW_SIZE 0
    with client.socket:
        message = predict_request(size)
        outcomes: dict[int, str] = {}
        for stream in calls:
            client.call(stream, PREDICT, message)
            while stream not in outcomes:  # one call at a time: each one's outcome in order
                kind, _, on, payload = client.read_frame()
                if kind != HEADERS:
                    continue
                fields = dict(client.decoder.decode(payload))
                outcomes[on] = fields.get("grpc-status", "held")
        held = [s for s in calls if outcomes[s] == "held"]
        assert [outcomes[s] for s in calls if s not in held] == ["8"] * (len(calls) - len(held))
        assert len(held) == 4
        assert_still_answers(server)
        client.send(
            settings_frame({0x4: 2**31 - 1})
            + frame(WINDOW_UPDATE, 0, 0, (2**31 - 1 - 65_535).to_bytes(4, "big"))
        )
        assert grpc_statuses(client, held) == ["0"] * len(held)


def test_data_past_the_flow_control_window_ends_the_connection(server: ServerProcess) -> None:
    client = RawClient(server.grpc_port)
    with client.socket:
        client.send(frame(HEADERS, 0x4, 1, client.headers(PREDICT)))
        message = predict_request()
        client.send(frame(DATA, 0, 1, b"\0" + len(message).to_bytes(4, "big") + message))
        chunk = frame(DATA, 0, 1, bytes(16_384))
        try:  # 16 MiB and one frame more than the stream's window, which the message has used
            for _ in range(16):
                client.send(chunk * 64)
            client.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _, payload = client.until(GOAWAY)
    assert int.from_bytes(payload[4:8]) == FLOW_CONTROL_ERROR
    assert b"flow-control window" in payload[8:]
    assert_still_answers(server)


def test_a_window_update_past_2_31_is_a_flow_control_error(server: ServerProcess) -> None:
    client = RawClient(server.grpc_port)
    with client.socket:
        client.send(frame(WINDOW_UPDATE, 0, 0, (2**31 - 1).to_bytes(4, "big")))
        _, payload = client.until(GOAWAY)
    assert int.from_bytes(payload[4:8]) == FLOW_CONTROL_ERROR


# ---- random frame sequences -----------------------------------------------------------------

_call = st.just(("call",))
_ping = st.tuples(st.just("ping"), st.integers(0, 1), st.binary(min_size=0, max_size=9))
_settings = st.tuples(
    st.just("settings"),
    st.dictionaries(st.integers(1, 9), st.integers(0, 2**32 - 1), max_size=3),
)
_window = st.tuples(st.just("window"), st.sampled_from([0, 1, 2, 3]), st.integers(0, 2**31))
_raw = st.tuples(
    st.just("raw"),
    st.integers(0, 12),
    st.integers(0, 255),
    st.sampled_from([0, 1, 2, 3, 5]),
    st.binary(max_size=40),
)
_frames = st.lists(st.one_of(_call, _call, _ping, _settings, _window, _raw), max_size=12)


def _encode(client: RawClient, item: tuple[Any, ...], next_call: int) -> bytes:
    kind = item[0]
    if kind == "call":
        message = predict_request()
        return frame(HEADERS, 0x4, next_call, client.headers(PREDICT)) + frame(
            DATA, END_STREAM, next_call, b"\0" + len(message).to_bytes(4, "big") + message
        )
    if kind == "ping":
        return frame(PING, item[1], 0, item[2])
    if kind == "settings":
        return settings_frame(item[1])
    if kind == "window":
        return frame(WINDOW_UPDATE, 0, item[1], item[2].to_bytes(4, "big"))
    _, frame_type, flags, stream, payload = item
    return frame(frame_type, flags, stream, payload)


@settings(
    max_examples=60,
    deadline=20_000,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(items=_frames)
def test_random_frames_never_crash_or_hang_the_server(
    server: ServerProcess, items: list[tuple[Any, ...]]
) -> None:
    """Every well-formed call is answered (or refused) unless the connection is ended with a
    GOAWAY that says why; the connection never just drops, unless the client itself sent a
    GOAWAY; another client is answered after each sequence."""
    client_goaway = any(item[:2] == ("raw", GOAWAY) for item in items)
    client = RawClient(server.grpc_port)
    with client.socket:
        calls, next_call, burst = [], 101, []
        for item in items:
            burst.append(_encode(client, item, next_call))
            if item[0] == "call":
                calls.append(next_call)
                next_call += 2
        # whatever window the frames set, let the answers through
        burst.append(settings_frame({0x4: 1 << 20}) + frame(WINDOW_UPDATE, 0, 0, b"\0\x10\0\0"))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.send(b"".join(burst))  # the server may end the connection part way
        ended: dict[int, bool] = {}
        goaway = reset = False
        while not goaway and not reset and len(ended) < len(calls):
            try:
                kind, flags, on, payload = client.read_frame()
            except ConnectionResetError:  # ended by the server, then reached by our frames
                reset = True
                continue
            except AssertionError:
                if client_goaway:
                    break
                raise AssertionError("the server closed the connection without GOAWAY") from None
            except TimeoutError:
                raise AssertionError(f"calls {calls} not answered in 10 s: {ended}") from None
            if kind == GOAWAY:
                goaway = True
                assert int.from_bytes(payload[4:8]) != 0 or not calls, payload
            elif on in calls and kind == RST_STREAM:
                ended[on] = int.from_bytes(payload) == REFUSED_STREAM
            elif on in calls and kind in (HEADERS, DATA) and flags & END_STREAM:
                ended[on] = True
        if not goaway and not reset:
            assert all(ended.values()), ended
    assert_still_answers(server)
