"""A predict request's array of numbers, read from the body straight into one numpy buffer.

Parsing a REST body into Python objects makes a float object for every number, and numpy then
reads them back one by one: for a request of a thousand features that is most of what the
server's event loop spends on it. simdjson parses the body into its tape instead, and copies a
homogeneous array of numbers out of it as C doubles or int64s in one call.

The copy is taken only where it is provably what TF Serving's element-by-element walk would
give: a numeric dtype, a rectangular array (simdjson flattens ragged and over-nested arrays
alike, so both are checked here), and no booleans, strings, nulls or objects; the caller then
applies the dtype's own rules to the numbers. Anything else answers None, and the caller takes
the exact walk over the body parsed as ordinary JSON, which also words every error as TF Serving
does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import simdjson

#: what the caller asks for → simdjson's buffer type and its numpy dtype
_BUFFERS: dict[str, tuple[Literal["d", "i"], np.dtype[Any]]] = {
    "float": ("d", np.dtype(np.float64)),
    "int": ("i", np.dtype(np.int64)),
}

#: The keys a predict body may have for its array to stay in the tape
_TENSOR_KEYS = frozenset({"instances", "inputs"})
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, eq=False)
class NumberArray:
    """The array under a predict body's ``instances`` or ``inputs``, left in simdjson's tape until
    the signature's dtype is known. ``shape`` is read from the first item at each level, as
    TF Serving's ``GetDenseTensorShape`` reads it; nothing is known yet about the other items."""

    body: bytes
    array: simdjson.Array
    shape: tuple[int, ...]

    def values(self, kind: Literal["float", "int"]) -> np.ndarray | None:
        """The numbers as float64 or int64 in ``shape``, or None when the array is not
        rectangular, holds anything but numbers, or (``int``) holds a decimal or an integer past
        int64. Which values a dtype then accepts is the caller's rule."""
        # the arrays a rectangular array of ``shape`` holds, itself included; only signature_name
        # stands beside it, without ``[``, so any other bracket is an array among the numbers
        arrays = sum(math.prod(self.shape[:depth]) for depth in range(len(self.shape)))
        if self.body.count(b"[") != arrays or not self._rectangular():
            return None
        buffer_type, dtype = _BUFFERS[kind]
        try:
            flat = np.frombuffer(self.array.as_buffer(of_type=buffer_type), dtype=dtype)
        except (TypeError, ValueError, RuntimeError):  # a non-number, or out of the type's range
            return None
        if flat.size != math.prod(self.shape):
            return None
        return flat.reshape(self.shape)

    def _rectangular(self) -> bool:
        """Whether every array above the innermost level has the length of the first one there.
        The innermost level is proved by the bracket count: an array among the numbers adds
        brackets beyond ``arrays``."""
        level = [self.array]
        for length in self.shape[1:]:
            below = []
            for node in level:
                for item in node:
                    if not isinstance(item, simdjson.Array) or len(item) != length:
                        return False
                    below.append(item)
            level = below
        return True


def parse_predict(body: bytes) -> dict[str, Any] | None:
    """A predict body whose one tensor key holds a non-empty array of arrays or numbers, with
    that array as a NumberArray; None for any other body, which the caller parses as ordinary
    JSON.

    Only ``signature_name`` may stand beside the tensor, as a string without ``[``, so that the
    body's brackets are the array's own.
    """
    if body.startswith(_BOM):  # simdjson skips a byte order mark, which TF Serving refuses
        return None
    try:
        doc = simdjson.Parser().parse(body)
    except (ValueError, RuntimeError):
        return None
    if not isinstance(doc, simdjson.Object):
        return None
    keys = list(doc.keys())
    tensor_keys = _TENSOR_KEYS.intersection(keys)
    if len(tensor_keys) != 1 or len(keys) != len(set(keys)):
        return None
    (key,) = tensor_keys
    parsed: dict[str, Any] = {}
    for name in keys:
        if name == key:
            continue
        value = doc[name]
        if name != "signature_name" or not isinstance(value, str) or "[" in value:
            return None
        parsed[name] = value
    array = doc[key]
    if not isinstance(array, simdjson.Array):
        return None
    shape = []
    item: Any = array
    while isinstance(item, simdjson.Array):
        if not len(item):
            return None
        shape.append(len(item))
        item = item[0]
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return None
    parsed[key] = NumberArray(body, array, tuple(shape))
    return parsed
