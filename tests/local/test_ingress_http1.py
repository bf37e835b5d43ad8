"""The router's fast path: which requests it takes, and where an answer ends."""

from __future__ import annotations

import pytest

from timonel.local.ingress.http1 import FAST_BYTES, _Chunks, _parse, _Request, _response_head

POST = b"POST /v1/models/m:predict?x=1 HTTP/1.1\r\nHost: m.default.example.com\r\n"


def parse(raw: bytes) -> tuple[int, _Request] | None:
    return _parse(raw, raw.find(b"\r\n\r\n") + 4)


def test_a_plain_request_is_taken_whole_with_its_body() -> None:
    raw = POST + b"Content-Length: 4\r\n\r\nbody" + b"GET / HTTP/1.1\r\n"
    found = parse(raw)
    assert found is not None
    length, request = found
    assert raw[:length].endswith(b"body") and request.raw == raw[:length]
    assert (request.host, request.path, request.close) == (
        "m.default.example.com",
        "/v1/models/m:predict",
        False,
    )


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.0\r\nHost: m\r\n",
        POST + b"Transfer-Encoding: chunked\r\n",
        POST + b"Expect: 100-continue\r\n",
        POST + b"Connection: Upgrade\r\nUpgrade: websocket\r\n",
        POST + b"Timonel-Mirror-Revision: m-predictor-00002\r\n",
        POST + f"Content-Length: {FAST_BYTES + 1}\r\n".encode(),
        POST + b"Content-Length: x\r\n",
    ],
)
def test_other_requests_go_to_the_aiohttp_path(head: bytes) -> None:
    assert parse(head + b"\r\n") is None


def test_answer_heads_say_where_the_body_ends() -> None:
    assert _response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n") == (200, 12, True)
    assert _response_head(b"HTTP/1.1 204 No Content\r\n\r\n") == (204, 0, True)
    assert _response_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n") == (200, None, False)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert _response_head(chunked)[1] == -1


def test_a_chunked_answer_ends_after_its_last_chunk_and_trailers() -> None:
    chunks = _Chunks()
    body = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: 1\r\n\r\n"
    pieces = [body[at : at + 3] for at in range(0, len(body), 3)]
    for piece in pieces[:-1]:
        chunks.feed(piece)
        assert not chunks.done
    chunks.feed(pieces[-1])
    assert chunks.done
