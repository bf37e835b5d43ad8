"""numpy ⇄ TensorProto: every dtype round-trips in both layouts (``tensor_content`` and the typed
``*_val`` fields), and TensorFlow agrees with both directions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2

from timonel import ServingError
from timonel.codec.tensor_proto import (
    NUMPY_DTYPES,
    from_tensor_proto,
    request_inputs,
    to_tensor_proto,
)

# numpy's own dtypes, and the ml_dtypes ones (bfloat16, float8, int4...) hypothesis cannot draw
_NATIVE = [d for d in NUMPY_DTYPES.values() if d.kind != "O" and d.type.__module__ == "numpy"]
_EXOTIC = [d for d in NUMPY_DTYPES.values() if d.type.__module__ != "numpy"]
_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _same(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.type.__module__ != "numpy":  # ml_dtypes: compare the bits
        return a.tobytes() == b.tobytes()
    if a.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_NATIVE).flatmap(lambda dtype: hnp.arrays(dtype, _shapes)))
def test_numeric_arrays_round_trip_with_their_dtype(array: np.ndarray[Any, Any]) -> None:
    assert _same(from_tensor_proto(to_tensor_proto(array)), array)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_NATIVE).flatmap(lambda dtype: hnp.arrays(dtype, _shapes)))
def test_tensorflow_reads_our_protos_and_we_read_its(array: np.ndarray[Any, Any]) -> None:
    assert _same(tf.make_ndarray(to_tensor_proto(array)), array)
    assert _same(from_tensor_proto(tf.make_tensor_proto(array)), array)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(object, _shapes, elements=st.binary(max_size=8)))
def test_byte_strings_round_trip_as_object_arrays(array: np.ndarray[Any, Any]) -> None:
    decoded = from_tensor_proto(to_tensor_proto(array))
    assert decoded.dtype == object and decoded.shape == array.shape
    assert decoded.tolist() == array.tolist()
    assert tf.make_ndarray(to_tensor_proto(array)).tolist() == array.tolist()


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_NATIVE).flatmap(lambda dtype: hnp.arrays(dtype, _shapes)))
def test_typed_fields_round_trip_and_tensorflow_reads_them(array: np.ndarray[Any, Any]) -> None:
    proto = to_tensor_proto(array, typed_fields=True)
    assert not proto.tensor_content
    assert _same(from_tensor_proto(proto), array)
    assert _same(tf.make_ndarray(proto), array)


@pytest.mark.parametrize("typed_fields", [False, True], ids=["content", "typed"])
@pytest.mark.parametrize("dtype", _EXOTIC, ids=str)
def test_ml_dtypes_round_trip(dtype: np.dtype[Any], typed_fields: bool) -> None:
    array = np.arange(6).reshape(2, 3).astype(dtype)
    assert _same(from_tensor_proto(to_tensor_proto(array, typed_fields=typed_fields)), array)


def test_replies_fill_the_typed_field_tf_serving_writes() -> None:
    proto = to_tensor_proto(np.array([[1.5, 2.5]], np.float32), typed_fields=True)
    assert list(proto.float_val) == [1.5, 2.5]
    assert [d.size for d in proto.tensor_shape.dim] == [1, 2]
    half = to_tensor_proto(np.array([1.0], np.float16), typed_fields=True)
    assert list(half.half_val) == [0x3C00]


def test_str_values_are_sent_as_utf8_bytes() -> None:
    proto = to_tensor_proto(np.array(["héllo", "x"]))
    assert list(proto.string_val) == ["héllo".encode(), b"x"]
    assert from_tensor_proto(proto).tolist() == ["héllo".encode(), b"x"]


def test_big_endian_arrays_are_sent_little_endian() -> None:
    array = np.array([1, 256], dtype=">i4")
    decoded = from_tensor_proto(to_tensor_proto(array))
    assert decoded.tolist() == [1, 256]
    assert decoded.dtype == np.int32


def _typed(dtype: str, shape: list[int], **fields: Any) -> Any:
    proto = tensor_pb2.TensorProto(dtype=getattr(tf, dtype).as_datatype_enum)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    for field, values in fields.items():
        getattr(proto, field).extend(values)
    return proto


# TF Serving writes responses in the typed *_val fields; a short list is padded with its last value
@pytest.mark.parametrize(
    ("proto", "expected"),
    [
        (_typed("float32", [3], float_val=[1.5, 2.5, 3.5]), np.array([1.5, 2.5, 3.5], np.float32)),
        (_typed("float32", [2, 2], float_val=[7.0]), np.full((2, 2), 7.0, np.float32)),
        (_typed("float64", [2], double_val=[1.0, 2.0]), np.array([1.0, 2.0])),
        (_typed("int32", [3], int_val=[1, 2]), np.array([1, 2, 2], np.int32)),
        (_typed("uint8", [2], int_val=[255, 0]), np.array([255, 0], np.uint8)),
        (_typed("int64", [2], int64_val=[-(2**40), 5]), np.array([-(2**40), 5])),
        (_typed("uint64", [1], uint64_val=[2**63]), np.array([2**63], np.uint64)),
        (_typed("uint32", [1], uint32_val=[2**31]), np.array([2**31], np.uint32)),
        (_typed("bool", [2], bool_val=[True, False]), np.array([True, False])),
        (_typed("float16", [1], half_val=[0x3C00]), np.array([1.0], np.float16)),
        (
            _typed("complex64", [2], scomplex_val=[1, 2, 3, 4]),
            np.array([1 + 2j, 3 + 4j], np.complex64),
        ),
        (_typed("string", [2], string_val=[b"a"]), np.array([b"a", b"a"], dtype=object)),
        (_typed("float32", [0]), np.zeros((0,), np.float32)),
        (_typed("float32", [2]), np.zeros((2,), np.float32)),
        (_typed("float32", []), np.zeros((), np.float32)),
    ],
)
def test_typed_value_fields_decode_as_tensorflow_does(proto: Any, expected: Any) -> None:
    decoded = from_tensor_proto(proto)
    assert _same(decoded, expected) or decoded.tolist() == expected.tolist()
    assert decoded.dtype == expected.dtype
    assert np.array_equal(tf.make_ndarray(proto).astype(expected.dtype), expected)


def test_an_unsupported_numpy_dtype_says_what_to_do() -> None:
    with pytest.raises(TypeError, match=r"cannot send a numpy array of dtype datetime64\[s\]"):
        to_tensor_proto(np.array(["2024-01-01"], dtype="datetime64[s]"))


def test_too_many_values_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \[1\] holds 2 values in float_val"):
        from_tensor_proto(_typed("float32", [1], float_val=[1.0, 2.0]))


@pytest.mark.parametrize(
    "proto",
    [
        _typed("float32", [1], float_val=[1.0, 2.0]),
        _typed("float32", [-1], float_val=[1.0]),
        tensor_pb2.TensorProto(dtype=tf.resource.as_datatype_enum),
        tensor_pb2.TensorProto(
            dtype=tf.float32.as_datatype_enum,
            tensor_shape={"dim": [{"size": 3}]},
            tensor_content=b"\0" * 4,
        ),
    ],
    ids=["too many values", "unknown dimension", "resource dtype", "short content"],
)
def test_a_request_tensor_that_does_not_parse_is_tf_servings_invalid_argument(proto: Any) -> None:
    with pytest.raises(ServingError, match=r"^tensor parsing error: x$") as info:
        request_inputs({"x": proto})
    assert info.value.code == "INVALID_ARGUMENT"
