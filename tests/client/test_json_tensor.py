"""numpy ⇄ REST JSON values, as the client's numpy calls send and read them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from timonel import ServingError
from timonel.client._json_tensor import from_json, to_json


@pytest.mark.parametrize(
    ("array", "binary", "expected"),
    [
        (np.array([0.1, 2.0], np.float32), False, [0.1, 2.0]),
        (np.array([[1, 2], [3, 4]], np.int64), False, [[1, 2], [3, 4]]),
        (np.array(3.5), False, 3.5),
        (np.array([True, False]), False, [True, False]),
        (np.array(["héllo"]), False, ["héllo"]),
        (np.array([b"ab"], dtype=object), False, [{"b64": "YWI="}]),
        (np.array([b"\xff\x00"], dtype=object), False, [{"b64": "/wA="}]),
        (np.array([["ab"]]), True, [[{"b64": "YWI="}]]),
        (
            np.array(["a", "b", "c", "d"]).reshape(2, 2),
            False,
            [["a", "b"], ["c", "d"]],
        ),
        (np.array([np.nan], np.float32), False, [float("nan")]),
    ],
)
def test_arrays_become_rest_json(array: np.ndarray[Any, Any], binary: bool, expected: Any) -> None:
    encoded = to_json(array, binary=binary)
    if array.dtype.kind == "f" and np.isnan(array).any():
        assert np.isnan(encoded[0])
    else:
        assert encoded == expected


def test_complex_tensors_cannot_travel_over_rest() -> None:
    with pytest.raises(ServingError, match="cannot carry complex64 tensors; use gRPC") as info:
        to_json(np.array([1j], np.complex64))
    assert info.value.code == "UNIMPLEMENTED"


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        ([2.5, 3.0], "DT_FLOAT", np.array([2.5, 3.0], np.float32)),
        ([[1, 2]], "DT_INT64", np.array([[1, 2]], np.int64)),
        ([1, 2], "DT_DOUBLE", np.array([1.0, 2.0])),
        (True, "DT_BOOL", np.array(True)),
        (["a", {"b64": "/wA="}], "DT_STRING", np.array([b"a", b"\xff\x00"], dtype=object)),
        ([["a"], ["b"]], "DT_STRING", np.array([[b"a"], [b"b"]], dtype=object)),
    ],
)
def test_rest_json_becomes_arrays_of_the_signature_dtype(
    value: Any, dtype: str, expected: np.ndarray[Any, Any]
) -> None:
    decoded = from_json(value, dtype)
    assert decoded.dtype == expected.dtype
    assert decoded.tolist() == expected.tolist()


@pytest.mark.parametrize(
    ("value", "dtype", "code", "message"),
    [
        ([1.5], "DT_INT32", "INVALID_ARGUMENT", r"JSON Value: \[1.5\] is not of expected type"),
        (["x"], "DT_FLOAT", "INVALID_ARGUMENT", r"JSON Value: \['x'\] is not of expected type"),
        ([{"b64": "%%"}], "DT_STRING", "INVALID_ARGUMENT", "Unable to base64 decode"),
        ([{"c": "x"}], "DT_STRING", "INVALID_ARGUMENT", 'one "b64" key'),
        ([1], "DT_HALF", "UNIMPLEMENTED", "to type: DT_HALF is not supported"),
    ],
)
def test_bad_json_values_raise_serving_errors(
    value: Any, dtype: str, code: str, message: str
) -> None:
    with pytest.raises(ServingError, match=message) as info:
        from_json(value, dtype)
    assert info.value.code == code
