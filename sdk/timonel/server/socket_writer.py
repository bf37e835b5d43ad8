"""Writes to a connection's socket with the GIL released for the send.

uvloop's ``transport.write`` sends at once, holding the GIL through the system call. On loopback
and on a virtual machine that call also does the receiver's wake-up, and it cost the event loop
about 100 µs per answer under load: time in which the runner threads, which need the GIL to hand
in their results, wait. ``os.write`` releases the GIL for the call. Whatever the socket does not
take at once goes through the transport, as does every write while the transport holds bytes of
its own or is closing, so order, flow control, errors and closing stay the transport's.
"""

from __future__ import annotations

import asyncio
import os


class SocketWriter:
    """``write`` for one connection's transport: straight to its socket when it is a plain one
    with nothing buffered, through the transport otherwise (TLS, test transports)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        plain = sock is not None and transport.get_extra_info("ssl_object") is None
        self._fd = sock.fileno() if plain else -1

    def write(self, data: bytes) -> None:
        transport = self._transport
        # A closing transport's descriptor may already be closed, and its number reused by a new
        # connection: only the transport may write then.
        if self._fd < 0 or transport.is_closing() or transport.get_write_buffer_size():
            transport.write(data)
            return
        try:
            sent = os.write(self._fd, data)
        except OSError:  # full, interrupted, reset: the transport retries or reports it
            sent = 0
        if sent < len(data):
            transport.write(data[sent:] if sent else data)
