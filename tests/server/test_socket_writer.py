"""SocketWriter over real loopback connections on uvloop: bytes arrive whole and in order
whether the socket takes them at once or the transport keeps the rest, and nothing is written
past a close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import uvloop

from timonel.server.socket_writer import SocketWriter


class Received(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)


def over_loopback(
    check: Callable[[SocketWriter, asyncio.Transport, Received], Awaitable[None]],
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[asyncio.Transport] = loop.create_future()

        class Sender(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted.set_result(transport)  # type: ignore[arg-type]

        server = await loop.create_server(Sender, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, receiver = await loop.create_connection(Received, "127.0.0.1", port)
        transport = await asyncio.wait_for(accepted, 5)
        try:
            await check(SocketWriter(transport), transport, receiver)
        finally:
            transport.close()
            server.close()

    uvloop.run(main())


def test_small_writes_arrive_in_order() -> None:
    async def check(writer: SocketWriter, transport: asyncio.Transport, peer: Received) -> None:
        for number in range(200):
            writer.write(b"%d," % number)
        await until(lambda: len(peer.data) == len(",".join(map(str, range(200)))) + 1)
        assert bytes(peer.data) == b"".join(b"%d," % n for n in range(200))

    over_loopback(check)


def test_what_the_socket_does_not_take_is_kept_by_the_transport_in_order() -> None:
    chunks = [bytes([n]) * 1_000_000 for n in range(8)]  # past any socket buffer

    async def check(writer: SocketWriter, transport: asyncio.Transport, peer: Received) -> None:
        assert peer.transport is not None
        peer.transport.pause_reading()
        for chunk in chunks:
            writer.write(chunk)
        assert transport.get_write_buffer_size() > 0
        peer.transport.resume_reading()
        await until(lambda: len(peer.data) == sum(map(len, chunks)))
        assert bytes(peer.data) == b"".join(chunks)

    over_loopback(check)


def test_a_closing_transport_is_not_written_past() -> None:
    async def check(writer: SocketWriter, transport: asyncio.Transport, peer: Received) -> None:
        writer.write(b"before")
        transport.close()
        writer.write(b"after")
        await asyncio.wait_for(peer.lost, 5)
        assert bytes(peer.data) == b"before"

    over_loopback(check)


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.005)
