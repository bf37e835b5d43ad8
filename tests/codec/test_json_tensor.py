"""JSON ⇄ tensors: table tests of TF Serving's texts, properties checked with hypothesis, and the
client's single-tensor conversions."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from timonel.codec import json_tensor
from timonel.codec.json_numbers import NumberArray
from timonel.codec.json_tensor import RequestFormat, from_json, to_json
from timonel.errors import ServingError

FLOAT = {"x": "DT_FLOAT"}


def decode(body: Any, dtypes: dict[str, str] = FLOAT) -> json_tensor.PredictInputs:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    doc = json_tensor.parse_predict_json(raw)
    json_tensor.signature_name(doc)
    return json_tensor.decode_predict(doc, dtypes)


@pytest.mark.parametrize(
    ("body", "dtypes", "message"),
    [
        (b"", FLOAT, "JSON Parse error: The document is empty"),
        (b"   ", FLOAT, "JSON Parse error: The document is empty. at offset: 3"),
        (b"{", FLOAT, "JSON Parse error: Missing a name for object member. at offset: 1"),
        (
            b'{"a" 1}',
            FLOAT,
            "JSON Parse error: Missing a colon after a name of object member. at offset: 5",
        ),
        (
            b'{"a": 1 "b": 2}',
            FLOAT,
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 8",
        ),
        (
            b'{"a": [1 2]}',
            FLOAT,
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 9",
        ),
        (
            b"{} x",
            FLOAT,
            (
                "JSON Parse error: The document root must not be followed by other values. at "
                "offset: 3"
            ),
        ),
        (b"nul", FLOAT, "JSON Parse error: Invalid value. at offset: 0"),
        (b'"x"', FLOAT, 'JSON Value: "x" Is not object'),
        (
            {"signature_name": 1, "instances": [1]},
            FLOAT,
            (
                'JSON Value: {\n    "signature_name": 1,\n    "instances": [\n        1\n    ]\n} '
                "not formatted correctly. 'signature_name' key must be a string value."
            ),
        ),
        (
            {"instances": {}},
            FLOAT,
            "JSON Value: {\n    \"instances\": {}\n} Excepting 'instances' to be an list/array",
        ),
        (
            {"instances": []},
            FLOAT,
            "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        ),
        (
            {"instances": [True]},
            FLOAT,
            (
                "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON "
                "Value: true Type: True is not of expected type: float"
            ),
        ),
        (
            {"instances": [1.0, True]},
            FLOAT,
            (
                "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: JSON "
                "Value: true Type: True is not of expected type: float"
            ),
        ),
        (
            {"instances": [16777216]},
            FLOAT,
            (
                "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Cannot "
                "convert JSON value: 16777216 to float without loss of precision."
            ),
        ),
        (
            {"instances": [1.5]},
            {"x": "DT_INT32"},
            (
                "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON "
                "Value: 1.5 Type: Number is not of expected type: int32"
            ),
        ),
        (
            {"instances": [2147483648]},
            {"x": "DT_INT32"},
            (
                "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON "
                "Value: 2147483648 Type: Number is not of expected type: int32"
            ),
        ),
        (
            {"instances": [[1, 2], [3]]},
            FLOAT,
            (
                "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
                "Expecting tensor size: 2 but got: 1"
            ),
        ),
        (
            {"instances": [[1, 2], [[3], [4]]]},
            FLOAT,
            (
                "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
                "Expecting shape [2] but got: [2,1]"
            ),
        ),
        (
            {"instances": [[[1, 2], [3]]]},
            FLOAT,
            (
                "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
                "Encountered list at unexpected size: 1 at level: 1 expected size: 2"
            ),
        ),
        (
            {"instances": [[1, [2]]]},
            FLOAT,
            (
                "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
                "Encountered list at unexpected level: 1 expected < 1"
            ),
        ),
        (
            {"instances": [[[1], 2]]},
            FLOAT,
            (
                "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON "
                "Value: 2 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"
            ),
        ),
        (
            {"instances": [1]},
            {"a": "DT_FLOAT", "b": "DT_FLOAT"},
            (
                "instances is a plain list, but expecting list of objects as multiple input "
                "tensors required as per tensorinfo_map"
            ),
        ),
        (
            {"instances": [{"a": 1, "c": 2}]},
            {"a": "DT_FLOAT", "b": "DT_FLOAT"},
            (
                "Failed to process element: 0 key: c of 'instances' list. Error: INVALID_ARGUMENT: "
                "JSON object: does not have named input: c"
            ),
        ),
        (
            {"instances": [{"a": 1}]},
            {"a": "DT_FLOAT", "b": "DT_FLOAT"},
            (
                "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": 1\n} "
                "must only have keys: a,b"
            ),
        ),
        (
            {"instances": [{"a": 1, "b": 2}, 3]},
            {"a": "DT_FLOAT", "b": "DT_FLOAT"},
            "Expecting object but got list at item 1 of input list",
        ),
        (
            {"inputs": [1]},
            {"a": "DT_FLOAT", "b": "DT_FLOAT"},
            (
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            ),
        ),
        (
            {"inputs": {"a": [1]}},
            {"a": "DT_FLOAT", "b": "DT_FLOAT"},
            "Missing named input: b in 'inputs' object.",
        ),
        ({"inputs": [{"b64": "%%%"}]}, {"x": "DT_STRING"}, "Unable to base64 decode"),
        (
            {"inputs": [{"b64": "YQ==", "c": 1}]},
            {"x": "DT_STRING"},
            (
                'JSON Value: {\n    "b64": "YQ==",\n    "c": 1\n} '
                "not formatted correctly for base64 data"
            ),
        ),
        ({"x": [1]}, FLOAT, "Missing 'inputs' or 'instances' key"),
    ],
)
def test_decode_errors_are_tf_servings(body: Any, dtypes: dict[str, str], message: str) -> None:
    with pytest.raises(ServingError) as caught:
        decode(body, dtypes)
    assert (caught.value.code, str(caught.value)) == ("INVALID_ARGUMENT", message)


def test_unsupported_dtypes_are_unimplemented() -> None:
    with pytest.raises(ServingError) as caught:
        decode({"inputs": [1.0]}, {"x": "DT_HALF"})
    assert (caught.value.code, str(caught.value)) == (
        "UNIMPLEMENTED",
        "Conversion of JSON Value: 1.0 to type: half",
    )


def test_nan_and_infinity_tokens_are_accepted() -> None:
    got = decode(b'{"inputs": [NaN, Infinity, -Infinity]}').tensors["x"]
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf


def test_columnar_scalar_is_rank_0_and_answers_outputs() -> None:
    got = decode({"inputs": 3.5})
    assert got.format is RequestFormat.COLUMNAR
    assert got.tensors["x"].shape == () and got.tensors["x"].dtype == np.float32


def test_row_objects_batch_each_named_input() -> None:
    got = decode(
        {"instances": [{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": {"b64": "eQ=="}}]},
        {"a": "DT_INT64", "b": "DT_STRING"},
    )
    assert got.tensors["a"].tolist() == [[1, 2], [3, 4]]
    assert got.tensors["b"].tolist() == [b"x", b"y"]


@pytest.mark.parametrize(
    ("outputs", "fmt", "body"),
    [
        ({"y": np.array([2.5, 3.0], np.float32)}, RequestFormat.ROW, b'{"predictions":[2.5,3.0]}'),
        ({"y": np.array([0.1], np.float32)}, RequestFormat.COLUMNAR, b'{"outputs":[0.1]}'),
        (
            {"a": np.array([[1], [2]], np.int32), "b": np.array([True, False])},
            RequestFormat.ROW,
            b'{"predictions":[{"a":[1],"b":true},{"a":[2],"b":false}]}',
        ),
        (
            {"a": np.array([1], np.int64), "b_bytes": np.array([b"\x00"], object)},
            RequestFormat.COLUMNAR,
            b'{"outputs":{"a":[1],"b_bytes":[{"b64":"AA=="}]}}',
        ),
        (
            {"y": np.array([np.nan, -np.inf], np.float32)},
            RequestFormat.COLUMNAR,
            b'{"outputs":[NaN,-Infinity]}',
        ),
    ],
)
def test_encode_predict(outputs: dict[str, np.ndarray], fmt: RequestFormat, body: bytes) -> None:
    assert json_tensor.encode_predict(outputs, fmt) == body


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"y": np.array(1.0, np.float32)}, "Tensor name: y has no shape information "),
        (
            {"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32)},
            "Tensor name: b has inconsistent batch size: 3 expecting: 2",
        ),
        ({"y": np.zeros(1, np.float16)}, "Failed to write JSON value for tensor type: half"),
    ],
)
def test_encode_predict_errors(outputs: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(ServingError, match=None) as caught:
        json_tensor.encode_predict(outputs, RequestFormat.ROW)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "dtype", "text"),
    [
        (0.5, "DT_DOUBLE", "0.5"),
        (3.0, "DT_DOUBLE", "3.0"),
        (1e20, "DT_DOUBLE", "1e+20"),
        (0.1, "DT_DOUBLE", "0.1"),
        (1.2345678901, "DT_DOUBLE", "1.2345678900999999"),
        (float(np.float32(0.1)), "DT_FLOAT", "0.1"),
        (float("nan"), "DT_FLOAT", "NaN"),
        (float("-inf"), "DT_DOUBLE", "-Infinity"),
    ],
)
def test_decimal_text_is_write_decimal(value: float, dtype: str, text: str) -> None:
    assert json_tensor.decimal_text(value, dtype) == text


def test_examples_become_features() -> None:
    decoded = json_tensor.decode_examples(
        {"context": {"c": "k"}, "examples": [{"x": 1.5, "n": [1, True], "s": {"b64": "YQ=="}}]},
        "classify",
    )
    assert decoded.context == {"c": json_tensor.Feature("bytes", (b"k",))}
    assert decoded.examples == [
        {
            "x": json_tensor.Feature("float", (1.5,)),
            "n": json_tensor.Feature("int64", (1, 1)),
            "s": json_tensor.Feature("bytes", (b"a",)),
        }
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"examples": [{"x": None}]}, "Feature: x has element with unexpected JSON type: Null"),
        (
            {"examples": [{"x": [1, 1.5]}]},
            "Unexpected element type in feature: x expecting type: int64",
        ),
        ({"examples": [3]}, "Example must be JSON object but got JSON Number"),
        (
            {"examples": []},
            "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array",
        ),
    ],
)
def test_example_errors(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ServingError) as caught:
        json_tensor.decode_examples(doc, "regress")
    assert str(caught.value) == message


def test_classify_and_regress_bodies() -> None:
    assert json_tensor.encode_classify([[("a", 0.25)]]) == b'{"results":[[["a",0.25]]]}'
    assert json_tensor.encode_regress([0.1, 2.0]) == b'{"results":[0.1,2.0]}'


# ---- properties -----------------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
# Near FLT_MAX the shortest text reads back (as a double) above FLT_MAX, which TF Serving's
# lossless check refuses; TF Serving's own output has the same limit.
floats32 = hnp.arrays(
    np.float32,
    shapes,
    elements=st.floats(width=32, min_value=-(2.0**127), max_value=2.0**127) | st.just(np.nan),
)
numeric = st.one_of(
    floats32,
    hnp.arrays(np.float64, shapes, elements=st.floats(allow_nan=False, allow_infinity=False)),
    hnp.arrays(np.int32, shapes),
    hnp.arrays(np.int64, shapes),
    hnp.arrays(np.bool_, shapes),
)
_DTYPE_NAMES = {
    np.dtype(np.float32): "DT_FLOAT",
    np.dtype(np.float64): "DT_DOUBLE",
    np.dtype(np.int32): "DT_INT32",
    np.dtype(np.int64): "DT_INT64",
    np.dtype(np.bool_): "DT_BOOL",
}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    )


@settings(max_examples=150, deadline=None)
@given(numeric, st.sampled_from(list(RequestFormat)))
def test_numeric_tensors_round_trip(array: np.ndarray, fmt: RequestFormat) -> None:
    dtype = _DTYPE_NAMES[array.dtype]
    body = json_tensor.encode_predict({"x": array}, fmt)
    reply = json_tensor.parse_json(body)
    key = "predictions" if fmt is RequestFormat.ROW else "outputs"
    request = json.dumps({fmt.value: reply[key]}).encode()  # NaN/Infinity as bare tokens
    decoded = json_tensor.decode_predict(json_tensor.parse_predict_json(request), {"x": dtype})
    assert decoded.format is fmt
    assert _same(decoded.tensors["x"], array)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=5), st.booleans())
def test_strings_round_trip(values: list[bytes], as_bytes: bool) -> None:
    name = "x_bytes" if as_bytes else "x"
    if not as_bytes:
        values = [v.decode("utf-8", "replace").encode() for v in values]
    array = np.array([*values, b""], dtype=object)[:-1]
    body = json_tensor.encode_predict({name: array}, RequestFormat.COLUMNAR)
    request = body.replace(b'"outputs"', b'"inputs"', 1)
    decoded = json_tensor.decode_predict(
        json_tensor.parse_predict_json(request), {name: "DT_STRING"}
    )
    assert decoded.tensors[name].tolist() == values


nested = st.recursive(
    st.one_of(
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    ),
    lambda children: st.lists(children, min_size=1, max_size=3),
    max_leaves=12,
)


def both_paths(body: bytes, dtype: str) -> tuple[Any, Any]:
    """The tensor (or error text) decoded from the tape and from the exact walk."""

    def run(parse: Callable[[bytes], dict[str, Any]]) -> Any:
        try:
            return json_tensor.decode_predict(parse(body), {"x": dtype}).tensors["x"]
        except ServingError as exc:
            return str(exc)

    return run(json_tensor.parse_predict_json), run(json_tensor.parse_json)


def agree(fast: Any, exact: Any) -> bool:
    if isinstance(exact, str):
        return fast == exact
    return not isinstance(fast, str) and fast.dtype == exact.dtype and _same(fast, exact)


NUMERIC = [
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_INT32",
    "DT_INT64",
    "DT_INT16",
    "DT_INT8",
    "DT_UINT8",
    "DT_UINT32",
    "DT_UINT64",
]


@settings(max_examples=300, deadline=None)
@given(
    nested,
    st.sampled_from(NUMERIC),
    st.sampled_from(list(RequestFormat)),
)
def test_the_tape_agrees_with_the_exact_walk(value: Any, dtype: str, fmt: RequestFormat) -> None:
    assert agree(*both_paths(orjson.dumps({fmt.value: value}), dtype))


@pytest.mark.parametrize(
    ("body", "dtype"),
    [
        (b'{"inputs": [9007199254740993]}', "DT_DOUBLE"),
        (b'{"inputs": [16777217]}', "DT_FLOAT"),
        (b'{"inputs": [16777216.5]}', "DT_FLOAT"),
        (b'{"inputs": [3.5e38]}', "DT_FLOAT"),
        (b'{"inputs": [-0, -0.0, 1e-400, 1E+2]}', "DT_FLOAT"),
        (b'{"inputs": [1.5]}', "DT_INT32"),
        (b'{"inputs": [1.0]}', "DT_INT64"),
        (b'{"inputs": [2147483648]}', "DT_INT32"),
        (b'{"inputs": [9223372036854775808]}', "DT_INT64"),
        (b'{"inputs": [255, 256, -1, 70000]}', "DT_UINT8"),
        (b'{"inputs": [-129, 32768, 2147483647]}', "DT_INT16"),
        (b'{"inputs": [2147483648]}', "DT_INT8"),
        (b'{"inputs": [4294967295, -1]}', "DT_UINT32"),
        (b'{"inputs": [18446744073709551615, 1]}', "DT_UINT64"),
        (b'{"instances": [[1, 2], [3, [4]]]}', "DT_FLOAT"),
        (b'{"instances": [[1, 2], [3, 4, 5], [6]]}', "DT_FLOAT"),
        (b'{"signature_name": "a[b", "instances": [[1], [[2]]]}', "DT_FLOAT"),
        (b'{"inputs": [1], "inputs": [[2]]}', "DT_FLOAT"),
        (b'\xef\xbb\xbf{"inputs": [1]}', "DT_FLOAT"),
        (b' {"instances" :[ [1 ,2] , [3,4] ] } ', "DT_INT32"),
    ],
)
def test_the_tape_agrees_with_the_exact_walk_at_the_edges(body: bytes, dtype: str) -> None:
    assert agree(*both_paths(body, dtype))


def test_a_float_request_is_read_from_the_tape() -> None:
    doc = json_tensor.parse_predict_json(b'{"instances": [[0.5, 1, 2e3]]}')
    assert isinstance(doc["instances"], NumberArray)
    got = json_tensor.decode_predict(doc, FLOAT)
    assert got.format is RequestFormat.ROW
    assert got.tensors["x"].dtype == np.float32
    assert got.tensors["x"].tolist() == [[0.5, 1.0, 2000.0]]


def test_a_uint8_request_is_read_from_the_tape_and_wraps_as_the_walk_does() -> None:
    body = b'{"instances": [[0, 255, 256, -1]]}'
    fast = json_tensor.decode_predict(json_tensor.parse_predict_json(body), {"x": "DT_UINT8"})
    exact = json_tensor.decode_predict(json_tensor.parse_json(body), {"x": "DT_UINT8"})
    assert fast.tensors["x"].dtype == exact.tensors["x"].dtype == np.uint8
    assert fast.tensors["x"].tolist() == exact.tensors["x"].tolist() == [[0, 255, 0, 255]]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_any_body_parses_or_fails_with_a_serving_error(body: bytes) -> None:
    try:
        json_tensor.parse_json(body)
    except ServingError as exc:
        assert exc.code == "INVALID_ARGUMENT"
        assert str(exc).startswith(("JSON Parse error: ", "JSON Value: "))


def test_b64_accepts_unpadded_input() -> None:
    got = decode(
        {"inputs": [{"b64": base64.b64encode(b"ab").decode().rstrip("=")}]}, {"x": "DT_STRING"}
    )
    assert got.tensors["x"].tolist() == [b"ab"]


# ---- single tensors, as the client sends and reads them ------------------------------------


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
