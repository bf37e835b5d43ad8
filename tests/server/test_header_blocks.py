"""Header blocks a connection repeats decode once, and never from a table that has changed."""

from __future__ import annotations

import hpack

from timonel.server.header_blocks import HeaderBlockDecoder

CALL = [(":method", "POST"), (":path", "/tensorflow.serving.PredictionService/Predict"),
        ("content-type", "application/grpc"), ("x-request", "1")]  # fmt: skip


def test_a_repeated_block_decodes_once_to_the_same_headers() -> None:
    encoder, decoder = hpack.Encoder(), HeaderBlockDecoder()
    first = decoder.decode(encoder.encode(CALL))
    repeated = encoder.encode(CALL)  # now only references to the dynamic table
    second = decoder.decode(repeated)
    assert (
        [(n.decode(), v.decode()) for n, v in second]
        == CALL
        == [(n.decode(), v.decode()) for n, v in first]
    )
    assert decoder.decode(repeated) is second


def test_a_kept_block_decodes_anew_once_the_table_has_changed() -> None:
    encoder, decoder = hpack.Encoder(), HeaderBlockDecoder()
    decoder.decode(encoder.encode(CALL))
    repeated = encoder.encode(CALL)
    before = decoder.decode(repeated)
    decoder.decode(encoder.encode([("x-other", "2")]))  # a new entry shifts every index
    after = decoder.decode(repeated)
    assert after is not before
    assert (b"x-other", b"2") in [(n, v) for n, v in after]
