"""A predict body's numbers read from simdjson's tape: taken only where the exact walk would give
the same tensor, and declined everywhere else."""

from __future__ import annotations

import numpy as np
import pytest

from timonel.codec.json_numbers import NumberArray, parse_predict


def numbers(body: bytes) -> NumberArray:
    doc = parse_predict(body)
    assert doc is not None
    (array,) = (value for value in doc.values() if isinstance(value, NumberArray))
    return array


def test_a_rectangular_array_of_numbers_is_one_buffer() -> None:
    array = numbers(b'{"signature_name": "serving_default", "instances": [[1, 2.5], [-0, 3e2]]}')
    assert array.shape == (2, 2)
    values = array.values("float")
    assert values is not None and values.dtype == np.float64
    assert values.tolist() == [[1.0, 2.5], [0.0, 300.0]]
    ints = numbers(b'{"inputs": [[1, -2], [3, 4]]}').values("int")
    assert ints is not None and ints.dtype == np.int64 and ints.tolist() == [[1, -2], [3, 4]]


def test_the_other_keys_are_parsed_as_json() -> None:
    doc = parse_predict(b'{"signature_name": "sig", "inputs": [1]}')
    assert doc is not None and doc["signature_name"] == "sig"


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": [[1, 2], [3]]}',
        b'{"inputs": [[1, 2], [3, 4, 5], [6]]}',  # as many numbers as a 3x2 array holds
        b'{"inputs": [[1, 2], [3, [4]]]}',  # as many numbers and rows as a 2x2 array holds
        b'{"inputs": [[1, 2], 3]}',
        b'{"inputs": [[[1], [2]], [[3], [4, 5]]]}',
        b'{"inputs": [1, true]}',
        b'{"inputs": [1, null]}',
        b'{"inputs": [1, "2"]}',
        b'{"inputs": [1, {"a": 1}]}',
        b'{"inputs": [1, []]}',
    ],
)
def test_anything_but_a_rectangle_of_numbers_is_declined(body: bytes) -> None:
    array = numbers(body)
    assert array.values("float") is None
    assert array.values("int") is None


@pytest.mark.parametrize(
    "body", [b'{"inputs": [1, 1.5]}', b'{"inputs": [18446744073709551615]}', b'{"inputs": [1e5]}']
)
def test_integers_are_declined_past_int64_and_for_any_decimal(body: bytes) -> None:
    assert numbers(body).values("int") is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[1]",
        b'{"inputs": [NaN]}',  # TF Serving reads it; simdjson does not
        b'{"inputs": [1e400]}',
        b'{"inputs": [-9223372036854775809]}',
        b'\xef\xbb\xbf{"inputs": [1]}',
        b'{"inputs": [1], "inputs": [2]}',
        b'{"inputs": [1], "instances": [2]}',
        b'{"inputs": [1], "other": 1}',
        b'{"inputs": [1], "signature_name": "a[b"}',
        b'{"inputs": [1], "signature_name": 1}',
        b'{"inputs": 1}',
        b'{"inputs": []}',
        b'{"inputs": [[]]}',
        b'{"inputs": [true]}',
        b'{"inputs": ["a"]}',
        b'{"instances": [{"x": 1}]}',
        b'{"examples": [1]}',
    ],
)
def test_other_bodies_are_left_to_the_json_parser(body: bytes) -> None:
    assert parse_predict(body) is None
