"""TensorProto ⇄ numpy for the gRPC API and warmup records.

Hand-written instead of ``tf.make_ndarray``/``tf.make_tensor_proto`` because those walk every value
in Python and dominate a small model's call; here both directions are one numpy operation.
Replies use the typed ``*_val`` fields, as TF Serving does unless told to use ``tensor_content``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from timonel.errors import ServingError

_BY_DTYPE: dict[int, tuple[Any, str]] = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
    types_pb2.DT_HALF: (np.float16, "half_val"),
    types_pb2.DT_STRING: (np.object_, "string_val"),
}
_BY_NUMPY = {
    np.dtype(np_type): dtype
    for dtype, (np_type, _) in _BY_DTYPE.items()
    if np_type is not np.object_
}


def to_numpy(proto: Any, alias: str = "") -> np.ndarray:
    """The array a TensorProto holds (``tensor_content`` or typed values, broadcast as TF does)."""
    entry = _BY_DTYPE.get(proto.dtype)
    if entry is None:
        raise ServingError(f"tensor parsing error: {alias}", code="INVALID_ARGUMENT")
    np_type, field = entry
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise ServingError(f"tensor parsing error: {alias}", code="INVALID_ARGUMENT")
    count = int(np.prod(shape)) if shape else 1
    if proto.tensor_content and np_type is not np.object_:
        data = np.frombuffer(proto.tensor_content, dtype=np_type)
    elif np_type is np.object_:
        data = np.empty(len(proto.string_val), dtype=object)
        data[:] = list(proto.string_val)
    elif np_type is np.float16:
        data = np.array(proto.half_val, dtype=np.uint16).view(np.float16)
    else:
        data = np.array(getattr(proto, field), dtype=np_type)
    if data.size == count:
        return data.reshape(shape)
    if data.size == 0 and not proto.tensor_content:
        return (
            np.zeros(shape, dtype=np_type)
            if np_type is not np.object_
            else np.full(shape, b"", dtype=object)
        )
    if 0 < data.size < count and not proto.tensor_content:
        filled = np.empty(count, dtype=data.dtype)
        filled[: data.size] = data
        filled[data.size :] = data[-1]
        return filled.reshape(shape)
    raise ServingError(f"tensor parsing error: {alias}", code="INVALID_ARGUMENT")


def to_proto(array: np.ndarray) -> Any:
    """A TensorProto with the typed ``*_val`` field TF Serving fills for this dtype."""
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.CopyFrom(_shape(array.shape))
    if array.dtype.kind in "OSU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            item if isinstance(item, bytes) else str(item).encode()
            for item in array.reshape(-1).tolist()
        )
        return proto
    dtype = _BY_NUMPY.get(array.dtype)
    if dtype is None:
        raise ServingError(
            f"Failed to convert tensor of type {array.dtype} to a TensorProto", code="INTERNAL"
        )
    proto.dtype = dtype
    flat = array.reshape(-1)
    if dtype == types_pb2.DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    else:
        getattr(proto, _BY_DTYPE[dtype][1]).extend(flat.tolist())
    return proto


def _shape(shape: tuple[int, ...]) -> Any:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
    )
