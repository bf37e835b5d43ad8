"""numpy arrays ⇄ ``tensorflow.TensorProto``, for the gRPC client, the server and warmup records.

``tf.make_tensor_proto`` and ``tf.make_ndarray`` go through ``tf.dtypes`` and convert values one by
one, which costs more than a small model's call; every gRPC request and reply converts, so this
module writes the proto fields directly. Requests travel as ``tensor_content`` (raw little-endian
bytes, the layout TensorFlow itself uses); replies use the typed ``*_val`` fields, as TF Serving
writes them unless told otherwise (``typed_fields=True``). Strings are always ``string_val``.
Decoding accepts both, with TensorFlow's rule that a short ``*_val`` list is padded with its last
value.

The module imports the TensorProto classes (and so TensorFlow's package) at import time: the
client imports it only for gRPC. 16-bit brain floats and the float8/int4 families come from
``ml_dtypes``, the package TensorFlow uses for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from timonel.errors import ServingError

TensorProto = tensor_pb2.TensorProto


@dataclass(frozen=True)
class _Kind:
    """How one TensorFlow dtype maps to numpy and to the TensorProto's typed value field."""

    enum: int
    numpy: np.dtype[Any]
    #: the repeated field holding values when ``tensor_content`` is empty
    field: str
    #: turns that field's values into a flat array of ``numpy`` dtype
    unpack: Callable[[Sequence[Any], np.dtype[Any]], np.ndarray[Any, Any]]
    #: turns a flat array of ``numpy`` dtype into that field's values (a list, or bytes)
    pack: Callable[[np.ndarray[Any, Any]], Any]


def _plain(values: Sequence[Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    return np.array(values, dtype=dtype)


def _values(flat: np.ndarray[Any, Any]) -> list[Any]:
    return list(flat.tolist())


def _small_ints(flat: np.ndarray[Any, Any]) -> list[Any]:
    """int4/int2 values (ml_dtypes scalars) as the Python ints ``int_val`` holds."""
    return list(flat.astype(np.int32).tolist())


def _bit_pattern(width: type[np.unsignedinteger[Any]]) -> Callable[..., np.ndarray[Any, Any]]:
    """half_val/float8_val keep each value's bits in an integer field; reinterpret them."""

    def unpack(values: Sequence[Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
        if isinstance(values, bytes):  # float8_val is a bytes field
            return np.frombuffer(values, dtype=np.uint8).view(dtype)
        return np.array(values, dtype=width).view(dtype)

    return unpack


def _bits16(flat: np.ndarray[Any, Any]) -> list[Any]:
    return list(flat.view(np.uint16).tolist())


def _bytes8(flat: np.ndarray[Any, Any]) -> bytes:
    return flat.view(np.uint8).tobytes()


def _complex(values: Sequence[Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    parts = np.array(values, dtype=np.float32 if dtype == np.complex64 else np.float64)
    return parts.view(dtype)


def _complex_parts(flat: np.ndarray[Any, Any]) -> list[Any]:
    """Real and imaginary parts, interleaved, as ``scomplex_val``/``dcomplex_val`` hold them."""
    return list(flat.view(np.float32 if flat.dtype == np.complex64 else np.float64).tolist())


def _strings(values: Sequence[Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, np.bytes_ | np.str_):
        return _as_bytes(value.item())
    raise TypeError(
        f"a string tensor holds bytes or str, not {type(value).__name__} ({value!r}); "
        "encode the values before sending them"
    )


def _byte_strings(flat: np.ndarray[Any, Any]) -> list[bytes]:
    return [_as_bytes(item) for item in flat]


_DT = types_pb2.DataType
_bits8 = _bit_pattern(np.uint8)
_bits = _bit_pattern(np.uint16)
_KINDS: tuple[_Kind, ...] = (
    _Kind(_DT.DT_FLOAT, np.dtype(np.float32), "float_val", _plain, _values),
    _Kind(_DT.DT_DOUBLE, np.dtype(np.float64), "double_val", _plain, _values),
    _Kind(_DT.DT_INT32, np.dtype(np.int32), "int_val", _plain, _values),
    _Kind(_DT.DT_UINT8, np.dtype(np.uint8), "int_val", _plain, _values),
    _Kind(_DT.DT_INT16, np.dtype(np.int16), "int_val", _plain, _values),
    _Kind(_DT.DT_INT8, np.dtype(np.int8), "int_val", _plain, _values),
    _Kind(_DT.DT_UINT16, np.dtype(np.uint16), "int_val", _plain, _values),
    _Kind(_DT.DT_INT64, np.dtype(np.int64), "int64_val", _plain, _values),
    _Kind(_DT.DT_UINT32, np.dtype(np.uint32), "uint32_val", _plain, _values),
    _Kind(_DT.DT_UINT64, np.dtype(np.uint64), "uint64_val", _plain, _values),
    _Kind(_DT.DT_BOOL, np.dtype(np.bool_), "bool_val", _plain, _values),
    _Kind(_DT.DT_STRING, np.dtype(object), "string_val", _strings, _byte_strings),
    _Kind(_DT.DT_COMPLEX64, np.dtype(np.complex64), "scomplex_val", _complex, _complex_parts),
    _Kind(_DT.DT_COMPLEX128, np.dtype(np.complex128), "dcomplex_val", _complex, _complex_parts),
    _Kind(_DT.DT_HALF, np.dtype(np.float16), "half_val", _bits, _bits16),
    _Kind(_DT.DT_BFLOAT16, np.dtype(ml_dtypes.bfloat16), "half_val", _bits, _bits16),
    *(
        _Kind(
            _DT.Value(f"DT_{name.upper()}"),
            np.dtype(getattr(ml_dtypes, name)),
            "float8_val",
            _bits8,
            _bytes8,
        )
        for name in (
            "float8_e5m2",
            "float8_e4m3fn",
            "float8_e4m3fnuz",
            "float8_e4m3b11fnuz",
            "float8_e5m2fnuz",
            "float4_e2m1fn",
        )
    ),
    _Kind(_DT.DT_INT4, np.dtype(ml_dtypes.int4), "int_val", _plain, _small_ints),
    _Kind(_DT.DT_UINT4, np.dtype(ml_dtypes.uint4), "int_val", _plain, _small_ints),
    _Kind(_DT.DT_INT2, np.dtype(ml_dtypes.int2), "int_val", _plain, _small_ints),
    _Kind(_DT.DT_UINT2, np.dtype(ml_dtypes.uint2), "int_val", _plain, _small_ints),
)
_BY_ENUM = {kind.enum: kind for kind in _KINDS}
_BY_NUMPY = {kind.numpy: kind for kind in _KINDS}

#: numpy dtypes this module carries, by TensorFlow dtype name (``"DT_FLOAT"``)
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {_DT.Name(kind.enum): kind.numpy for kind in _KINDS}


def _kind_of(array: np.ndarray[Any, Any]) -> _Kind:
    kind = _BY_NUMPY.get(array.dtype)
    if kind is not None:
        return kind
    if array.dtype.kind in "SU":
        return _BY_ENUM[_DT.DT_STRING]
    raise TypeError(
        f"cannot send a numpy array of dtype {array.dtype} as a TensorProto; TensorFlow "
        f"carries {', '.join(sorted(NUMPY_DTYPES))}: convert the array with .astype() first"
    )


def to_tensor_proto(
    value: Any, *, typed_fields: bool = False, into: tensor_pb2.TensorProto | None = None
) -> tensor_pb2.TensorProto:
    """Encode an array (or anything ``np.asarray`` takes) as TensorFlow's TensorProto.

    The dtype is kept: float64 stays DT_DOUBLE. str values become UTF-8 bytes in DT_STRING.
    Numbers go to ``tensor_content``, or with ``typed_fields`` to the ``*_val`` field of their
    dtype, as TF Serving answers. ``into``, an empty TensorProto inside a message being built
    (a response's output), is filled in place of a new one, which saves a copy.
    """
    array = np.asarray(value)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    kind = _kind_of(array)
    proto = tensor_pb2.TensorProto() if into is None else into
    proto.dtype = kind.enum
    proto.tensor_shape.SetInParent()  # a scalar's shape is there, empty
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add(size=size)
    if kind.enum != _DT.DT_STRING and not typed_fields:
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
        return proto
    values = kind.pack(array.reshape(-1))
    if isinstance(values, bytes):
        setattr(proto, kind.field, values)
    else:
        getattr(proto, kind.field).extend(values)
    return proto


def from_tensor_proto(proto: tensor_pb2.TensorProto) -> np.ndarray[Any, Any]:
    """Decode a TensorProto into a numpy array of its dtype (DT_STRING → object array of bytes).

    Raises TypeError for a dtype numpy cannot hold and ValueError for values that do not fit the
    shape.
    """
    kind = _BY_ENUM.get(proto.dtype)
    if kind is None:
        raise TypeError(
            f"cannot decode a TensorProto of dtype {_DT.Name(proto.dtype)} into numpy; "
            f"supported: {', '.join(sorted(NUMPY_DTYPES))}"
        )
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise ValueError(f"a TensorProto of shape {list(shape)} has an unknown dimension")
    count = math.prod(shape)
    if proto.tensor_content and kind.enum != _DT.DT_STRING:
        return np.frombuffer(proto.tensor_content, dtype=kind.numpy).reshape(shape).copy()
    flat = kind.unpack(getattr(proto, kind.field), kind.numpy)
    if flat.size == count:
        return flat.reshape(shape)
    if flat.size == 0:
        return np.zeros(shape, dtype=kind.numpy) if kind.enum != _DT.DT_STRING else _filled(shape)
    if flat.size > count:
        raise ValueError(
            f"a TensorProto of shape {list(shape)} holds {flat.size} values in {kind.field}; "
            f"expected at most {count}"
        )
    padded = np.concatenate([flat, np.repeat(flat[-1:], count - flat.size)])
    return padded.reshape(shape)


def _filled(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    array = np.empty(shape, dtype=object)
    array.fill(b"")
    return array


def request_inputs(inputs: Mapping[str, tensor_pb2.TensorProto]) -> dict[str, np.ndarray[Any, Any]]:
    """A request's input tensors as arrays, refused as TF Serving refuses one it cannot parse."""
    arrays = {}
    for alias, proto in inputs.items():
        try:
            arrays[alias] = from_tensor_proto(proto)
        except (TypeError, ValueError) as exc:
            raise ServingError(f"tensor parsing error: {alias}", code="INVALID_ARGUMENT") from exc
    return arrays
