"""The REST port reads plain HTTP/1.1 requests itself and hands any other connection to aiohttp;
either way a request reaches ``RestApi.answer`` with its method, encoded path and body."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from timonel.server.rest import Reply
from timonel.server.rest_port import RestPort


class EchoApi:
    """Stands in for ``RestApi``: answers each request with its method, path and body."""

    max_body_bytes = 1 << 20

    def __init__(self) -> None:
        self.hold = asyncio.Event()
        self.hold.set()
        self.seen: list[tuple[str, str, bytes]] = []

    async def answer(
        self,
        method: str,
        path: str,
        read_body: Callable[[], Awaitable[bytes]],
        *,
        origin: str = "",
        remote: str | None = None,
    ) -> Reply:
        body = await read_body()
        self.seen.append((method, path, body))
        await self.hold.wait()
        return Reply(200, b"%s %s %s" % (method.encode(), path.encode(), body))


Talk = Callable[[asyncio.StreamReader, asyncio.StreamWriter, RestPort], Awaitable[Any]]


def _serve(api: EchoApi, talk: Talk) -> Any:
    """What ``talk`` returns, talking over one connection to a REST port answered by ``api``."""

    async def main() -> Any:
        port = RestPort(api)  # type: ignore[arg-type]  # EchoApi has the part of RestApi it uses
        server = await asyncio.get_running_loop().create_server(port, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
            try:
                return await asyncio.wait_for(talk(reader, writer, port), 30)
            finally:
                writer.close()
        finally:
            server.close()
            await port.shutdown(1)

    return asyncio.run(main())


async def _reply(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head[:-4].split(b"\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
    body = await reader.readexactly(int(headers[b"content-length"]))
    return status, headers, body


def _post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_pipelined_plain_requests_are_answered_in_order_by_the_fast_path() -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: RestPort) -> Any:
        writer.write(_post("/v1/a%20b:predict", b"one") + _post("/v1/c", b"two"))
        return [await _reply(reader), await _reply(reader)]

    first, second = _serve(EchoApi(), talk)
    assert (first[0], first[2]) == (b"HTTP/1.1 200 OK", b"POST /v1/a%20b:predict one")
    assert second[2] == b"POST /v1/c two"
    assert first[1][b"content-type"] == b"application/json"
    assert b"date" in first[1] and b"server" not in first[1]  # not aiohttp's reply


def test_a_body_that_comes_in_pieces_is_awaited_whole() -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: RestPort) -> Any:
        request = _post("/v1/m", b"x" * 5000)
        for at in range(0, len(request), 700):
            writer.write(request[at : at + 700])
            await writer.drain()
            await asyncio.sleep(0.01)
        return await _reply(reader)

    _, _, body = _serve(EchoApi(), talk)
    assert body == b"POST /v1/m " + b"x" * 5000


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        b"POST /v1/m HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
        _post("/v1/m", gzip.compress(b"abc"), "Content-Encoding: gzip"),
    ],
    ids=["chunked", "HTTP/1.0", "gzip"],
)
def test_a_request_the_fast_path_does_not_read_is_answered_by_aiohttp(
    request_bytes: bytes,
) -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: RestPort) -> Any:
        writer.write(request_bytes)
        first = await _reply(reader)
        writer.write(_post("/v1/next", b"more"))  # the connection stays with aiohttp
        return first, await _reply(reader)

    first, second = _serve(EchoApi(), talk)
    assert first[2] == b"POST /v1/m abc"
    assert second[2] == b"POST /v1/next more"
    assert b"aiohttp" in first[1][b"server"] and b"aiohttp" in second[1][b"server"]


def test_a_client_that_asks_to_close_is_closed_after_its_answer() -> None:
    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: RestPort) -> Any:
        writer.write(_post("/v1/m", b"bye", "Connection: close"))
        reply = await _reply(reader)
        return reply, await reader.read()

    (_, headers, body), rest = _serve(EchoApi(), talk)
    assert (body, headers[b"connection"], rest) == (b"POST /v1/m bye", b"close", b"")


def test_shutdown_answers_the_request_in_flight_then_closes() -> None:
    api = EchoApi()
    api.hold.clear()

    async def talk(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: RestPort
    ) -> Any:
        writer.write(_post("/v1/m", b"late"))
        while not api.seen:
            await asyncio.sleep(0.01)
        stopping = asyncio.ensure_future(port.shutdown(10))
        await asyncio.sleep(0.05)
        api.hold.set()
        reply = await _reply(reader)
        await stopping
        return reply, await reader.read()

    (_, headers, body), rest = _serve(api, talk)
    assert (body, headers[b"connection"], rest) == (b"POST /v1/m late", b"close", b"")
