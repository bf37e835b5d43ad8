"""JSON ⇄ tensors for TF Serving's REST API, as TF Serving's ``util/json_tensor.cc`` does it.

Pure functions over bytes, parsed JSON and numpy arrays; no TensorFlow import. The server decodes
request bodies and encodes replies with it; the client uses the same functions for its numpy calls
(``to_json``, ``from_json``) and to speak REST's JSON over gRPC (``decode_predict``,
``encode_predict``). Signatures are described by their TF dtype names (``DT_FLOAT``...).

Decoding a request has two paths. The fast path reads a predict body's array of numbers from
simdjson's tape into numpy in one copy (``json_numbers``) and is taken only when that is provably
what TF Serving's element-by-element walk would give (numeric dtype, rectangular, numbers only,
integers the dtype holds exactly). Everything else, including every error, goes through the exact
walk over the body parsed as ordinary JSON, so error texts are TF Serving's word for word.

Floats are written as the shortest text that reads back to the same float32/float64 (orjson), with
``.0`` on whole numbers and bare ``NaN``/``Infinity`` tokens as TF Serving writes them.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

from timonel.codec.json_numbers import NumberArray, parse_predict
from timonel.errors import ServingError

#: TF dtype names → numpy dtypes the REST API carries (DT_STRING holds bytes objects).
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(numpy)
    for name, numpy in (
        ("DT_FLOAT", np.float32),
        ("DT_DOUBLE", np.float64),
        ("DT_INT32", np.int32),
        ("DT_INT16", np.int16),
        ("DT_INT8", np.int8),
        ("DT_UINT8", np.uint8),
        ("DT_INT64", np.int64),
        ("DT_UINT32", np.uint32),
        ("DT_UINT64", np.uint64),
        ("DT_BOOL", np.bool_),
        ("DT_STRING", np.object_),
    )
}

#: ``DataTypeString`` of TensorFlow, used in error messages.
_TYPE_NAMES = {
    "DT_FLOAT": "float",
    "DT_DOUBLE": "double",
    "DT_INT32": "int32",
    "DT_INT16": "int16",
    "DT_INT8": "int8",
    "DT_UINT8": "uint8",
    "DT_INT64": "int64",
    "DT_UINT32": "uint32",
    "DT_UINT64": "uint64",
    "DT_BOOL": "bool",
    "DT_STRING": "string",
    "DT_HALF": "half",
    "DT_BFLOAT16": "bfloat16",
    "DT_UINT16": "uint16",
    "DT_COMPLEX64": "complex64",
    "DT_COMPLEX128": "complex128",
}

#: Integer ranges JSON integers must fit (rapidjson's IsInt / IsInt64 / IsUint / IsUint64).
_INT_RANGES = {
    "DT_INT32": (-(2**31), 2**31 - 1),
    "DT_INT16": (-(2**31), 2**31 - 1),
    "DT_INT8": (-(2**31), 2**31 - 1),
    "DT_UINT8": (-(2**31), 2**31 - 1),
    "DT_INT64": (-(2**63), 2**63 - 1),
    "DT_UINT32": (0, 2**32 - 1),
    "DT_UINT64": (0, 2**64 - 1),
}

#: Largest integer a float type holds exactly (TF Serving's IsLosslessDecimal).
_LOSSLESS_INT = {"DT_FLOAT": 2**24 - 1, "DT_DOUBLE": 2**53 - 1}
_FLOAT_MAX = {
    "DT_FLOAT": float(np.finfo(np.float32).max),
    "DT_DOUBLE": float(np.finfo(np.float64).max),
}
_TARGET_NAMES = {"DT_FLOAT": "float", "DT_DOUBLE": "double"}

_NUMPY_OPTS = orjson.OPT_SERIALIZE_NUMPY
_BYTES_SUFFIX = "_bytes"


class RequestFormat(enum.Enum):
    """Which JSON shape a predict request used; the response answers in the same shape."""

    ROW = "instances"
    COLUMNAR = "inputs"


@dataclass(frozen=True)
class PredictInputs:
    """A decoded predict request: tensors by input alias, and the request's format."""

    tensors: dict[str, np.ndarray]
    format: RequestFormat


def invalid(message: str) -> ServingError:
    return ServingError(message, code="INVALID_ARGUMENT")


# --------------------------------------------------------------------------------------------
# Parsing


_RAPIDJSON_MESSAGES = {
    "Expecting value": "Invalid value.",
    "Extra data": "The document root must not be followed by other values.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
    "Invalid control character at": "Invalid encoding in string.",
}


def parse_predict_json(body: bytes) -> dict[str, Any]:
    """``parse_json`` for a predict body, whose array of numbers is left for ``decode_predict`` to
    read straight into numpy where it can."""
    return parse_predict(body) or parse_json(body)


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a request body into a JSON object, with TF Serving's (rapidjson's) error texts.

    NaN, Infinity and -Infinity tokens are accepted, as TF Serving parses with
    ``kParseNanAndInfFlag``.
    """
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = _parse_slow(body)
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {value_text(doc)} Is not object")
    return doc


def _parse_slow(body: bytes) -> Any:
    """The standard library parser: it reads NaN/Infinity tokens, and its errors carry offsets."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(
            f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}"
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {_rapidjson_message(exc)} at offset: {exc.pos}") from exc
    except RecursionError as exc:
        raise invalid(
            "JSON Parse error: Terminate parsing due to Handler error. at offset: 0"
        ) from exc


def _rapidjson_message(exc: json.JSONDecodeError) -> str:
    if exc.msg == "Expecting value" and not exc.doc[exc.pos :].strip() and not exc.doc.strip():
        return "The document is empty."
    if exc.msg == "Expecting ',' delimiter":
        opener = _innermost_open_bracket(exc.doc, exc.pos)
        return (
            "Missing a comma or '}' after an object member."
            if opener == "{"
            else "Missing a comma or ']' after an array element."
        )
    return _RAPIDJSON_MESSAGES.get(exc.msg, "Unspecific syntax error.")


def _innermost_open_bracket(text: str, end: int) -> str:
    """The bracket (``{`` or ``[``) still open at ``end``, skipping string contents."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:end]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def signature_name(doc: Mapping[str, Any]) -> str:
    """The request's ``signature_name`` ("" when absent: the server's default)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {value_text(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


# --------------------------------------------------------------------------------------------
# Text of JSON values inside error messages (rapidjson's PrettyWriter, TF Serving's decimals)


def value_text(value: Any) -> str:
    """JSON text of a value as TF Serving quotes it in error messages."""
    if isinstance(value, float):
        return decimal_text(value, "DT_DOUBLE")
    return json.dumps(value, indent=4, ensure_ascii=False, allow_nan=True, default=_json_default)


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON: {value!r}")


def decimal_text(value: float, dtype: str = "DT_DOUBLE") -> str:
    """TF Serving's ``WriteDecimal``: six significant digits unless that loses the value."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:.6g}"
    reread: float = float(np.float32(text)) if dtype == "DT_FLOAT" else float(text)
    if reread != value:
        text = f"{value:.9g}" if dtype == "DT_FLOAT" else f"{value:.17g}"
    if "." not in text and "e" not in text and "n" not in text:
        text += ".0"
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value: Any, dtype: str) -> ServingError:
    return invalid(
        f"JSON Value: {value_text(value)} Type: {_json_type(value)} "
        f"is not of expected type: {type_name(dtype)}"
    )


def type_name(dtype: str) -> str:
    """TensorFlow's short name of a dtype (``DT_FLOAT`` → ``float``)."""
    return _TYPE_NAMES.get(dtype, dtype.removeprefix("DT_").lower())


# --------------------------------------------------------------------------------------------
# Predict request decoding


def decode_predict(doc: Mapping[str, Any], input_dtypes: Mapping[str, str]) -> PredictInputs:
    """Tensors of a predict request (``instances`` or ``inputs``) for a signature's inputs.

    ``input_dtypes`` maps each input alias of the signature to its TF dtype name. ``doc`` comes
    from ``parse_predict_json`` or ``parse_json``, or is a request built in Python.
    """
    if not input_dtypes:
        raise invalid("Failed to get input map for signature: DEFAULT")
    numbers = next((value for value in doc.values() if isinstance(value, NumberArray)), None)
    if numbers is not None:
        fast = _fast_inputs(doc, numbers, input_dtypes)
        if fast is not None:
            return fast
        doc = parse_json(numbers.body)
    has_instances = "instances" in doc
    has_inputs = "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {value_text(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = _nonempty_list(
            doc,
            "instances",
            not_list="Excepting 'instances' to be an list/array",
            empty="No values in 'instances' array",
        )
        return PredictInputs(_decode_instances(instances, input_dtypes), RequestFormat.ROW)
    if has_inputs:
        return PredictInputs(_decode_inputs(doc["inputs"], input_dtypes), RequestFormat.COLUMNAR)
    raise invalid("Missing 'inputs' or 'instances' key")


def _fast_inputs(
    doc: Mapping[str, Any], numbers: NumberArray, input_dtypes: Mapping[str, str]
) -> PredictInputs | None:
    """The one input of a single-input signature, read from the tape, or None for the exact walk."""
    if len(input_dtypes) != 1:
        return None
    ((name, dtype),) = input_dtypes.items()
    array = _fast_array(numbers, dtype)
    if array is None:
        return None
    row = "instances" in doc
    return PredictInputs({name: array}, RequestFormat.ROW if row else RequestFormat.COLUMNAR)


def _nonempty_list(doc: Mapping[str, Any], key: str, *, not_list: str, empty: str) -> list[Any]:
    """``doc[key]``, refused with TF Serving's words when it is not a list or is empty."""
    value = doc[key]
    if not isinstance(value, list):
        raise invalid(f"JSON Value: {value_text(doc)} {not_list}")
    if not value:
        raise invalid(f"JSON Value: {value_text(doc)} {empty}")
    return value


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _decode_instances(
    instances: list[Any], input_dtypes: Mapping[str, str]
) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(input_dtypes) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    objects = _is_element_object(instances[0])
    names = sorted(input_dtypes)
    values: dict[str, list[Any]] = {}
    shapes: dict[str, list[int]] = {}
    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            for key, item in element.items():
                try:
                    _add_instance_item(item, key, input_dtypes, values, shapes)
                except ServingError as exc:
                    raise invalid(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: {exc.code}: {exc}"
                    ) from None
            if set(element) != set(names):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{value_text(element)} must only have keys: {','.join(names)}"
                )
        else:
            if _is_element_object(element):
                raise invalid(f"Expecting value/list but got object at item {index} of input list")
            name = next(iter(input_dtypes))
            try:
                _add_instance_item(element, name, input_dtypes, values, shapes)
            except ServingError as exc:
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. "
                    f"Error: {exc.code}: {exc}"
                ) from None
    return {
        name: _to_array(flat, [len(instances), *shapes[name]], input_dtypes[name])
        for name, flat in values.items()
    }


def _add_instance_item(
    item: Any,
    name: str,
    input_dtypes: Mapping[str, str],
    values: dict[str, list[Any]],
    shapes: dict[str, list[int]],
) -> None:
    if name not in input_dtypes:
        raise invalid(f"JSON object: does not have named input: {name}")
    dtype = input_dtypes[name]
    shape = _dense_shape(item)
    flat: list[Any] = []
    _fill(item, 0, shape, dtype, flat)
    if name not in shapes:
        shapes[name] = shape
        values[name] = flat
        return
    expected = shapes[name]
    if math.prod(expected) != len(flat):
        raise invalid(f"Expecting tensor size: {math.prod(expected)} but got: {len(flat)}")
    if expected != shape:
        raise invalid(f"Expecting shape {_shape_text(expected)} but got: {_shape_text(shape)}")
    values[name].extend(flat)


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _decode_inputs(value: Any, input_dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_b64(value):
        if len(input_dtypes) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        name, dtype = next(iter(input_dtypes.items()))
        return {name: _decode_tensor(value, dtype)}
    tensors = {}
    for name, dtype in input_dtypes.items():
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _decode_tensor(value[name], dtype)
    return tensors


def _decode_tensor(value: Any, dtype: str) -> np.ndarray:
    shape = _dense_shape(value)
    flat: list[Any] = []
    _fill(value, 0, shape, dtype, flat)
    return _to_array(flat, shape, dtype)


def _dense_shape(value: Any) -> list[int]:
    """Shape from the first item at each nesting level (TF Serving's GetDenseTensorShape)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: str, out: list[Any]) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid(
                f"JSON Value: {value_text(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        if isinstance(value, dict):
            if dtype != "DT_STRING":
                raise _type_error(value, dtype)
            out.append(_b64_decode(value))
        else:
            out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _b64_decode(value: Any) -> bytes:
    if not _is_b64(value):
        raise invalid(f"JSON Value: {value_text(value)} not formatted correctly for base64 data")
    try:
        return _b64_unescape(value["b64"])
    except (binascii.Error, ValueError) as exc:
        raise invalid("Unable to base64 decode") from exc


def _b64_unescape(text: str) -> bytes:
    """absl::Base64Unescape: standard or URL-safe alphabet, padding optional."""
    data = text.encode("ascii")
    data += b"=" * (-len(data.rstrip(b"=")) % 4) if not data.endswith(b"=") else b""
    if b"-" in data or b"_" in data:
        return base64.urlsafe_b64decode(data)
    return base64.b64decode(data, validate=True)


def _scalar(value: Any, dtype: str) -> Any:
    if dtype in _LOSSLESS_INT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        if not _is_lossless(value, dtype):
            raise invalid(
                f"Cannot convert JSON value: {value_text(value)} to {_TARGET_NAMES[dtype]} "
                "without loss of precision."
            )
        return value
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype == "DT_BOOL":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == "DT_STRING":
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", "surrogatepass")
    raise ServingError(
        f"Conversion of JSON Value: {value_text(value)} to type: {type_name(dtype)}",
        code="UNIMPLEMENTED",
    )


def _is_lossless(value: int | float, dtype: str) -> bool:
    if isinstance(value, int):
        return abs(value) <= _LOSSLESS_INT[dtype]
    if not math.isfinite(value):
        return True
    return -_FLOAT_MAX[dtype] <= value <= _FLOAT_MAX[dtype]


def _to_array(flat: list[Any], shape: Sequence[int], dtype: str) -> np.ndarray:
    np_dtype = NUMPY_DTYPES[dtype]
    if np_dtype.kind == "O":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    if dtype in ("DT_INT16", "DT_INT8", "DT_UINT8"):
        # TF Serving stores these in int_val and narrows them like a C cast.
        return np.array(flat, dtype=np.int64).astype(np_dtype).reshape(shape)
    return np.array(flat, dtype=np_dtype).reshape(shape)


#: every dtype the exact walk fills from JSON numbers, by the rule its values follow; a body for
#: any other dtype that parse_predict_json left in the tape is parsed again as ordinary JSON
_FAST_KINDS: dict[str, Literal["float", "int"]] = {
    **dict.fromkeys(_LOSSLESS_INT, "float"),
    **dict.fromkeys(_INT_RANGES, "int"),
}


def _fast_array(numbers: NumberArray, dtype: str) -> np.ndarray | None:
    """The tape's numbers as ``dtype``, or None when only the exact walk can answer: a decimal in
    an integer tensor, an integer past the dtype's range, or (as a float from the tape can no
    longer tell a JSON integer from a decimal) a magnitude past a float's exact integers."""
    kind = _FAST_KINDS.get(dtype)
    array = None if kind is None else numbers.values(kind)
    if array is None:
        return None
    if kind == "int":
        low, high = _INT_RANGES[dtype]
        if array.min() < low or array.max() > high:
            return None
    elif np.abs(array).max() > _LOSSLESS_INT[dtype]:
        return None
    # the narrow integers wrap like the exact walk's C cast (``_to_array``)
    return array.astype(NUMPY_DTYPES[dtype], copy=False)


# --------------------------------------------------------------------------------------------
# Predict response encoding


def encode_predict(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> bytes:
    """The JSON body of a predict response: ``predictions`` (row) or ``outputs`` (columnar)."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if request_format is RequestFormat.COLUMNAR:
        if len(names) == 1:
            return b'{"outputs":' + _tensor_json(outputs[names[0]], names[0]) + b"}"
        parts = [_key(name) + b":" + _tensor_json(outputs[name], name) for name in names]
        return b'{"outputs":{' + b",".join(parts) + b"}}"
    batch = 0
    for name in names:
        tensor = outputs[name]
        if tensor.ndim == 0:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if tensor.shape[0] < 1:
            raise invalid(f"Tensor name: {name} has invalid batch size: {tensor.shape[0]}")
        if batch and tensor.shape[0] != batch:
            raise invalid(
                f"Tensor name: {name} has inconsistent batch size: {tensor.shape[0]} "
                f"expecting: {batch}"
            )
        batch = tensor.shape[0]
    if len(names) == 1:
        return b'{"predictions":' + _tensor_json(outputs[names[0]], names[0]) + b"}"
    columns = {
        name: [_tensor_json(outputs[name][i, ...], name) for i in range(batch)] for name in names
    }
    keys = {name: _key(name) + b":" for name in names}
    rows = [b"{" + b",".join(keys[n] + columns[n][i] for n in names) + b"}" for i in range(batch)]
    return b'{"predictions":[' + b",".join(rows) + b"]}"


def _key(name: str) -> bytes:
    return orjson.dumps(name)


def _tensor_json(tensor: np.ndarray, name: str) -> bytes:
    """One tensor as nested JSON lists (or a bare scalar for rank 0)."""
    kind = tensor.dtype.kind
    if kind in "OSU":
        return _string_tensor_json(tensor, as_bytes=name.endswith(_BYTES_SUFFIX))
    if tensor.dtype not in _WRITABLE:
        raise invalid(f"Failed to write JSON value for tensor type: {_tf_type_name(tensor.dtype)}")
    if kind == "f" and not np.isfinite(tensor).all():
        return _nonfinite_tensor_json(tensor)
    if tensor.ndim == 0:
        return orjson.dumps(tensor[()], option=_NUMPY_OPTS)
    return orjson.dumps(np.ascontiguousarray(tensor), option=_NUMPY_OPTS)


#: Output dtypes TF Serving writes to JSON (``AddSingleValueAndAdvance``).
_WRITABLE = {
    np.dtype(t)
    for t in (
        np.float32, np.float64, np.int8, np.int16, np.int32, np.uint8,
        np.int64, np.uint32, np.uint64, np.bool_,
    )
}  # fmt: skip


def _tf_type_name(dtype: np.dtype[Any]) -> str:
    names = {"float16": "half", "uint16": "uint16", "complex64": "complex64"}
    return names.get(dtype.name, dtype.name)


def _string_tensor_json(tensor: np.ndarray, *, as_bytes: bool) -> bytes:
    def text(item: Any) -> Any:
        raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
        if as_bytes:
            return {"b64": base64.b64encode(raw).decode("ascii")}
        return raw.decode("utf-8", "replace")

    return orjson.dumps(_map_nested(tensor.tolist(), text))


def _map_nested(value: Any, func: Any) -> Any:
    if isinstance(value, list):
        return [_map_nested(item, func) for item in value]
    return func(value)


def _nonfinite_tensor_json(tensor: np.ndarray) -> bytes:
    dtype = "DT_FLOAT" if tensor.dtype == np.float32 else "DT_DOUBLE"

    def write(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ",".join(write(item) for item in value) + "]"
        if math.isfinite(value):
            return orjson.dumps(tensor.dtype.type(value), option=_NUMPY_OPTS).decode()
        return decimal_text(value, dtype)

    return write(tensor.tolist()).encode()


# --------------------------------------------------------------------------------------------
# Classify / regress


@dataclass(frozen=True)
class Feature:
    """One tf.Example feature: its list kind (``int64``, ``float``, ``bytes``) and values."""

    kind: str
    values: tuple[Any, ...]


#: One tf.Example as features by name.
Example = dict[str, Feature]


@dataclass(frozen=True)
class ExampleInput:
    """The examples of a classify/regress request, with the optional shared context."""

    examples: list[Example]
    context: Example | None


def decode_examples(doc: Mapping[str, Any], method: str) -> ExampleInput:
    """``examples`` (and ``context``) of a classify/regress body as feature lists."""
    context = _example(doc["context"]) if "context" in doc else None
    if "examples" not in doc:
        raise invalid(
            f"JSON Value: {value_text(doc)} When method is {method}, key 'examples' is expected "
            "and was not found"
        )
    examples = _nonempty_list(
        doc,
        "examples",
        not_list="Expecting 'examples' value to be an list/array",
        empty="'examples' value is an empty array",
    )
    return ExampleInput([_example(item) for item in examples], context)


def _example(value: Any) -> Example:
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {_json_type(value)}")
    features: Example = {}
    for name, content in value.items():
        kind = ""
        values: list[Any] = []
        for item in content if isinstance(content, list) else [content]:
            item_kind, item_value = _feature_value(item, name)
            if kind and kind != item_kind:
                raise invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")
            kind = item_kind
            values.append(item_value)
        features[name] = Feature(kind or "float", tuple(values))
    return features


def _feature_value(value: Any, name: str) -> tuple[str, Any]:
    if isinstance(value, bool):
        return "int64", int(value)
    if isinstance(value, int):
        if value > 2**63 - 1:
            raise invalid(f"Feature: {name} has uint64 element. Only int64 is supported.")
        return "int64", value
    if isinstance(value, float):
        if not _is_lossless(value, "DT_FLOAT"):
            raise invalid(
                f"Cannot convert JSON value: {value_text(value)} to float "
                "without loss of precision."
            )
        return "float", value
    if isinstance(value, str):
        return "bytes", value.encode("utf-8", "surrogatepass")
    if _is_b64(value):
        return "bytes", _b64_decode(value)
    raise invalid(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")


def encode_classify(results: Iterable[Sequence[tuple[str, float]]]) -> bytes:
    """``{"results": [[[label, score], ...], ...]}`` with float32 scores."""
    rows = [
        "["
        + ",".join(
            f"[{orjson.dumps(label).decode()},{_float32_text(score)}]" for label, score in row
        )
        + "]"
        for row in results
    ]
    return ('{"results":[' + ",".join(rows) + "]}").encode()


def encode_regress(values: Iterable[float]) -> bytes:
    """``{"results": [v1, v2, ...]}`` with float32 values."""
    return ('{"results":[' + ",".join(_float32_text(v) for v in values) + "]}").encode()


def _float32_text(value: float) -> str:
    if not math.isfinite(value):
        return decimal_text(value, "DT_FLOAT")
    return orjson.dumps(np.float32(value), option=_NUMPY_OPTS).decode()


def encode_error(message: str) -> bytes:
    """TF Serving's error body: ``{"error": "<message>"}``."""
    return orjson.dumps({"error": message})


# --------------------------------------------------------------------------------------------
# Single tensors, for the client's numpy calls


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
    if array.dtype.kind in "OSU":
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


def from_json(value: Any, dtype_name: str) -> np.ndarray:
    """A reply's JSON value as an array of the signature's dtype (``DT_STRING`` → object of
    bytes). Laxer than request decoding: the server already checked what it sent.
    """
    dtype = NUMPY_DTYPES.get(dtype_name)
    if dtype is None:
        raise ServingError(
            f"Conversion of JSON Value: {value!r} to type: {dtype_name} is not supported by "
            "TF Serving's REST API; use gRPC for this tensor",
            code="UNIMPLEMENTED",
        )
    if dtype.kind == "O":
        return _strings_from_json(value)
    try:
        array = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise invalid(f"JSON Value: {value!r} is not of expected type: {dtype_name}") from exc
    if dtype.kind in "iub" and np.asarray(value).dtype.kind == "f":
        raise invalid(f"JSON Value: {value!r} is not of expected type: {dtype_name}")
    return array


def _strings_from_json(value: Any) -> np.ndarray:
    shape = _dense_shape(value)
    flat: list[Any] = []
    _flatten_strings(value, flat)
    if len(flat) != math.prod(shape):
        raise invalid(f"string values {value!r} do not form a rectangular tensor")
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


def _flatten_strings(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten_strings(item, out)
    elif isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise invalid(f'JSON Value: {value!r} is not a string or an object with one "b64" key')
        out.append(_b64_decode(value))
    elif isinstance(value, str):
        out.append(value.encode())
    else:
        raise invalid(f"JSON Value: {value!r} Type: {type(value).__name__} is not of type: string")
