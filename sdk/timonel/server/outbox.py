"""Answers held while handlers of requests already read wait to start, then sent together.

Both APIs answer on one event loop. Written the moment it is ready, each answer's ``send`` wakes a
client waiting for it (on loopback the sender does the wake-up), and that client's next request
comes back alone while the loop computes the other answers. So while handlers created for
requests already read have not started, what a connection sends waits; when the last of them
starts, every connection's held bytes go out, one write each. The answers reach the clients in a
burst, their next requests come back in one, and the loop reads them in one poll: the more
clients, the less the loop spends on each request (bench/README.md has the measurement). With no
handler waiting, bytes are written at once, so a lone client waits for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Outbox:
    """The loop's count of handlers created and not started, and the writes held meanwhile.

    A server calls ``created`` when it makes a request's handler and ``started`` when that handler
    begins, or when it is cancelled before it began.
    """

    def __init__(self) -> None:
        #: handlers created and not started yet: while there are any, writes are held
        self.waiting = 0
        self._held: list[HeldWrites] = []

    def created(self) -> None:
        self.waiting += 1

    def started(self) -> None:
        self.waiting -= 1
        if not self.waiting:
            self.send_held()

    def hold(self, writes: HeldWrites) -> None:
        """Send ``writes`` when the handlers waiting now have started, or once the loop has run
        the callbacks ready now, whichever comes first."""
        if not self._held:
            asyncio.get_running_loop().call_soon(self.send_held)
        self._held.append(writes)

    def send_held(self) -> None:
        held, self._held = self._held, []
        for writes in held:
            writes.flush()


class HeldWrites:
    """One connection's outgoing bytes, in order: written at once, or held by the outbox."""

    def __init__(self, outbox: Outbox, write: Callable[[bytes], None]) -> None:
        self._outbox = outbox
        self._write = write
        self._chunks: list[bytes] = []
        #: bytes held, not yet written
        self.size = 0

    def send(self, data: bytes) -> None:
        self._chunks.append(data)
        self.size += len(data)
        if not self._outbox.waiting:
            self.flush()
        elif len(self._chunks) == 1:
            self._outbox.hold(self)

    def flush(self) -> None:
        """Write what is held, in one write (the connection's ``write`` decides whether it still
        can)."""
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self.size = 0
            self._write(data)
