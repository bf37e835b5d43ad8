"""A hand-driven HTTP/2 client over a raw socket, for what grpc's client never sends."""

from __future__ import annotations

import socket

import hpack

from timonel.server.grpc_server import frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def settings_frame(settings: dict[int, int]) -> bytes:
    return frame(
        0x4,
        0,
        0,
        b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in settings.items()),
    )


class RawClient:
    """A hand-driven HTTP/2 connection, for what grpc's client never sends."""

    def __init__(self, port: int, settings: dict[int, int] | None = None) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buffer = b""
        self.socket.sendall(PREFACE + settings_frame(settings or {}))

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def call(self, stream: int, path: str, message: bytes) -> None:
        """A unary call: HEADERS, then ``message`` length-prefixed in DATA frames of 16 KiB, the
        last with END_STREAM."""
        body = b"\0" + len(message).to_bytes(4, "big") + message
        chunks = [body[i : i + 16_384] for i in range(0, len(body), 16_384)]
        self.send(
            frame(0x1, 0x4, stream, self.headers(path))
            + b"".join(frame(0x0, 0, stream, chunk) for chunk in chunks[:-1])
            + frame(0x0, 0x1, stream, chunks[-1])
        )

    def headers(self, path: str, *, content_type: str = "application/grpc") -> bytes:
        return self.encoder.encode(
            [(":method", "POST"), (":scheme", "http"), (":path", path),
             (":authority", "test"), ("content-type", content_type), ("te", "trailers")]
        )  # fmt: skip

    def read_frame(self) -> tuple[int, int, int, bytes]:
        while len(self.buffer) < 9 or len(self.buffer) < 9 + int.from_bytes(self.buffer[:3]):
            chunk = self.socket.recv(65536)
            assert chunk, "the server closed the connection"
            self.buffer += chunk
        length = int.from_bytes(self.buffer[:3])
        kind, flags = self.buffer[3], self.buffer[4]
        stream = int.from_bytes(self.buffer[5:9]) & 0x7FFFFFFF
        payload = self.buffer[9 : 9 + length]
        self.buffer = self.buffer[9 + length :]
        return kind, flags, stream, payload

    def until(self, kind: int, stream: int = -1) -> tuple[int, bytes]:
        """Frames up to the first of ``kind`` (on ``stream`` if given): its flags and payload."""
        for _ in range(100):
            got, flags, on, payload = self.read_frame()
            if got == kind and stream in (-1, on):
                return flags, payload
        raise AssertionError(f"no frame of type {kind}")

    def response(self, stream: int) -> dict[str, str]:
        """The headers and trailers of one stream's response, merged, plus its message."""
        fields: dict[str, str] = {}
        for _ in range(100):
            kind, flags, on, payload = self.read_frame()
            if on != stream:
                continue
            if kind == 0x1:
                for name, value in self.decoder.decode(payload):
                    fields[name] = value
            elif kind == 0x0:
                fields["message"] = fields.get("message", "") + payload[5:].decode("latin-1")
            if flags & 0x1 and kind in (0x0, 0x1):
                return fields
        raise AssertionError("no end of stream")
