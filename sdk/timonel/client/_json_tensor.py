"""numpy arrays ⇄ the JSON values of TF Serving's REST API, for the client's numpy calls.

The REST API writes a tensor as nested lists; strings are JSON strings, or ``{"b64": ...}`` for
bytes (always for string outputs whose name ends in ``_bytes``). JSON loses the dtype, so decoding
takes the dtype from the signature (``DT_FLOAT`` → float32), as the server does. Whole REST
bodies (``instances``/``inputs`` ⇄ ``predictions``/``outputs``) are the server's codec's job
(``timonel.server.codec``); the gRPC client borrows it to speak REST's JSON.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from timonel.errors import ServingError

#: numpy dtypes the REST API carries, by TensorFlow dtype name
JSON_DTYPES: dict[str, np.dtype[Any]] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_DOUBLE": np.dtype(np.float64),
    "DT_INT8": np.dtype(np.int8),
    "DT_INT16": np.dtype(np.int16),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_UINT8": np.dtype(np.uint8),
    "DT_UINT32": np.dtype(np.uint32),
    "DT_UINT64": np.dtype(np.uint64),
    "DT_BOOL": np.dtype(np.bool_),
    "DT_STRING": np.dtype(object),
}


def _invalid(message: str) -> ServingError:
    return ServingError(message, code="INVALID_ARGUMENT")


def is_string(array: np.ndarray[Any, Any]) -> bool:
    return array.dtype.kind in "OSU"


def to_json(value: Any, *, binary: bool = False) -> Any:
    """An array as REST JSON: nested lists; bytes as ``{"b64": ...}`` (binary-safe), str as
    plain strings. ``binary`` makes str values ``{"b64": ...}`` too. float32 values print in
    their shortest round-tripping form (``0.1``, not ``0.10000000149011612``), as TF Serving
    prints them.
    """
    array = np.asarray(value)
    if array.dtype.kind == "c":
        raise ServingError(
            f"TF Serving's REST API cannot carry {array.dtype} tensors; use gRPC for them",
            code="UNIMPLEMENTED",
        )
    if is_string(array):
        flat = [_string_to_json(item, binary) for item in array.reshape(-1)]
        return _nest(flat, array.shape)
    if array.dtype in (np.float32, np.float16):
        # numpy's str() of a float32 is its shortest round-tripping text; reading it as a
        # Python float keeps that text through json.dumps.
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def _string_to_json(item: Any, binary: bool) -> Any:
    if isinstance(item, np.bytes_ | np.str_):
        item = item.item()
    if isinstance(item, str) and not binary:
        return item
    if isinstance(item, str | bytes):
        raw = item.encode() if isinstance(item, str) else item
        return {"b64": base64.b64encode(raw).decode()}
    raise TypeError(f"a string tensor holds bytes or str, not {type(item).__name__} ({item!r})")


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def from_json(value: Any, dtype_name: str) -> np.ndarray[Any, Any]:
    """A REST JSON value as an array of the signature's dtype (``DT_STRING`` → object of bytes)."""
    dtype = JSON_DTYPES.get(dtype_name)
    if dtype is None:
        raise ServingError(
            f"Conversion of JSON Value: {value!r} to type: {dtype_name} is not supported by "
            "TF Serving's REST API; use gRPC for this tensor",
            code="UNIMPLEMENTED",
        )
    if dtype_name == "DT_STRING":
        return _strings_from_json(value)
    try:
        array = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _invalid(f"JSON Value: {value!r} is not of expected type: {dtype_name}") from exc
    if dtype.kind in "iub" and np.asarray(value).dtype.kind == "f":
        raise _invalid(f"JSON Value: {value!r} is not of expected type: {dtype_name}")
    return array


def _strings_from_json(value: Any) -> np.ndarray[Any, Any]:
    def decode(item: Any) -> Any:
        if isinstance(item, list):
            return [decode(x) for x in item]
        if isinstance(item, dict):
            if set(item) != {"b64"} or not isinstance(item["b64"], str):
                raise _invalid(
                    f'JSON Value: {item!r} is not a string or an object with one "b64" key'
                )
            try:
                return base64.b64decode(item["b64"], validate=True)
            except ValueError as exc:
                raise _invalid("Unable to base64 decode") from exc
        if isinstance(item, str):
            return item.encode()
        raise _invalid(f"JSON Value: {item!r} Type: {type(item).__name__} is not of type: string")

    decoded = decode(value)
    shape = _shape_of(decoded)
    array = np.empty(shape, dtype=object)
    flat = _flatten(decoded)
    if len(flat) != int(np.prod(shape, dtype=np.int64)):
        raise _invalid(f"string values {value!r} do not form a rectangular tensor")
    array.reshape(-1)[:] = flat
    return array


def _shape_of(value: Any) -> tuple[int, ...]:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _flatten(item)]
    return [value]
