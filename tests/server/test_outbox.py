"""The outbox: writes held while handlers wait to start, then one write per connection."""

from __future__ import annotations

import asyncio

from timonel.server.outbox import HeldWrites, Outbox


def _connection(outbox: Outbox) -> tuple[HeldWrites, list[bytes]]:
    written: list[bytes] = []
    return HeldWrites(outbox, written.append), written


def test_with_no_handler_waiting_bytes_are_written_at_once() -> None:
    outbox = Outbox()
    held, written = _connection(outbox)
    held.send(b"answer")
    assert written == [b"answer"]
    assert held.size == 0


def test_bytes_wait_for_the_last_waiting_handler_to_start_then_leave_in_one_write() -> None:
    async def main() -> None:
        outbox = Outbox()
        first, first_written = _connection(outbox)
        second, second_written = _connection(outbox)
        outbox.created()
        outbox.created()
        first.send(b"headers ")
        first.send(b"data")
        second.send(b"other")
        assert (first_written, second_written, first.size) == ([], [], 12)
        outbox.started()
        assert first_written == []
        outbox.started()
        assert (first_written, second_written) == ([b"headers data"], [b"other"])
        assert first.size == 0

    asyncio.run(main())


def test_held_bytes_leave_once_the_loop_has_run_what_was_ready() -> None:
    async def main() -> list[bytes]:
        outbox = Outbox()
        held, written = _connection(outbox)
        outbox.created()  # a handler that is never started
        held.send(b"answer")
        await asyncio.sleep(0)
        return written

    assert asyncio.run(main()) == [b"answer"]


def test_a_flush_writes_what_is_held_now_and_later_sends_keep_their_order() -> None:
    async def main() -> list[bytes]:
        outbox = Outbox()
        held, written = _connection(outbox)
        outbox.created()
        held.send(b"goaway")
        held.flush()  # a connection about to close
        held.send(b"late")
        outbox.started()
        return written

    assert asyncio.run(main()) == [b"goaway", b"late"]
