"""HPACK decoding that remembers the header blocks a connection repeats.

A gRPC client sends the same request headers on every call of a method, and once its encoder has
put them in the connection's dynamic table the block it sends is the same few bytes each time.
Decoding such a block again is pure-Python work on the event loop (a tenth of a small model's
unbatched call), so the decoder keeps each block's headers, for as long as the dynamic table the
block refers to is unchanged: a block that adds an entry or resizes the table empties the cache.
"""

from __future__ import annotations

import hpack
from hpack.struct import HeaderTuple

#: How many distinct blocks are kept between changes of the table.
_KEPT = 64


class _CountedTable(hpack.table.HeaderTable):
    """The dynamic table, counting the entries added to it."""

    def __init__(self) -> None:
        super().__init__()
        self.added = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.added += 1
        super().add(name, value)


class HeaderBlockDecoder:
    """``hpack.Decoder`` for one connection, with decoded blocks kept while the table holds."""

    def __init__(self) -> None:
        self._decoder = hpack.Decoder()
        self._table = self._decoder.header_table = _CountedTable()
        self._kept: dict[bytes, list[HeaderTuple]] = {}
        self._kept_for = self._state()

    def _state(self) -> tuple[int, int]:
        return self._table.added, self._table.maxsize

    def decode(self, block: bytes) -> list[HeaderTuple]:
        """The block's headers, names and values as bytes; raises ``hpack.HPACKError``. The
        list returned may be returned again: callers read it, never change it."""
        kept = self._kept.get(block)
        if kept is not None and self._kept_for == self._state():
            return kept
        before = self._state()
        headers = list(self._decoder.decode(block, raw=True))
        after = self._state()
        if after != before or self._kept_for != after or len(self._kept) >= _KEPT:
            self._kept.clear()
            self._kept_for = after
        if after == before:  # the block only read the table: it decodes the same next time
            self._kept[block] = headers
        return headers
