"""REST requests and replies as pure functions, table-tested without a server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from timonel import ServingError, SpecError
from timonel.client._rest import HttpRequest, RestApi
from timonel.client._types import ModelMetadata, ModelVersionStatus, Servable
from timonel.signatures import SignatureDef, TensorInfo

API = RestApi()
SIG = SignatureDef(
    inputs={"x": TensorInfo("DT_FLOAT", (-1,), "x:0")},
    outputs={"y": TensorInfo("DT_FLOAT", (-1,), "y:0")},
    method_name="tensorflow/serving/predict",
)
TWO_OUT = SignatureDef(
    inputs={"x": TensorInfo("DT_FLOAT", (-1,))},
    outputs={"a": TensorInfo("DT_INT64", (-1,)), "b_bytes": TensorInfo("DT_STRING", (-1,))},
)


@pytest.mark.parametrize(
    ("servable", "request_"),
    [
        (Servable("half"), HttpRequest("GET", "/v1/models/half")),
        (Servable("half", version=3), HttpRequest("GET", "/v1/models/half/versions/3")),
        (Servable("half", label="canary"), HttpRequest("GET", "/v1/models/half/labels/canary")),
        (Servable("my model"), HttpRequest("GET", "/v1/models/my%20model")),
    ],
)
def test_status_paths(servable: Servable, request_: HttpRequest) -> None:
    assert API.status(servable).request == request_


def test_metadata_path() -> None:
    call = API.metadata(Servable("half", version=2))
    assert call.request == HttpRequest("GET", "/v1/models/half/versions/2/metadata")


@pytest.mark.parametrize(
    ("servable", "inputs", "body"),
    [
        (Servable("half"), {"x": np.array([1.0, 2.0], np.float32)}, {"inputs": {"x": [1.0, 2.0]}}),
        (
            Servable("half", signature="s"),
            {"x": np.array([[1, 2]], np.int32)},
            {"signature_name": "s", "inputs": {"x": [[1, 2]]}},
        ),
        (
            Servable("half"),
            {"x": np.array([b"\x00"], dtype=object)},
            {"inputs": {"x": [{"b64": "AA=="}]}},
        ),
    ],
)
def test_predict_bodies_are_columnar(
    servable: Servable, inputs: dict[str, Any], body: dict[str, Any]
) -> None:
    request = API.predict(servable, inputs, SIG).request
    assert request.method == "POST"
    assert request.path == "/v1/models/half:predict"
    assert request.body == body


def test_predict_json_passes_the_body_through_with_the_signature() -> None:
    call = API.predict_json(
        Servable("half", label="stable", signature="s"), {"instances": [1]}, None
    )
    assert call.request == HttpRequest(
        "POST",
        "/v1/models/half/labels/stable:predict",
        {"signature_name": "s", "instances": [1]},
    )
    assert call.parse({"predictions": [2.5]}) == {"predictions": [2.5]}


@pytest.mark.parametrize(
    ("signature", "reply", "expected"),
    [
        (SIG, {"outputs": [2.5, 3.0]}, {"y": np.array([2.5, 3.0], np.float32)}),
        (
            TWO_OUT,
            {"outputs": {"a": [1, 2], "b_bytes": [{"b64": "AA=="}, "x"]}},
            {"a": np.array([1, 2]), "b_bytes": np.array([b"\x00", b"x"], dtype=object)},
        ),
    ],
)
def test_predict_replies_become_typed_arrays(
    signature: SignatureDef, reply: dict[str, Any], expected: dict[str, Any]
) -> None:
    call = API.predict(Servable("m"), {"x": np.zeros(2, np.float32)}, signature)
    outputs = call.parse(reply)
    assert outputs.keys() == expected.keys()
    for name, array in expected.items():
        assert outputs[name].dtype == array.dtype
        assert outputs[name].tolist() == array.tolist()


@pytest.mark.parametrize("reply", [{"predictions": [1]}, [1], {"outputs": {"zzz": [1]}}])
def test_predict_replies_in_another_format_are_refused(reply: Any) -> None:
    call = API.predict(Servable("m"), {"x": np.zeros(1, np.float32)}, TWO_OUT)
    with pytest.raises(ServingError, match="reply is not TF Serving's format") as info:
        call.parse(reply)
    assert info.value.code == "INTERNAL"


def test_classify_and_regress_bodies() -> None:
    examples = [{"f": 1.5, "g": "a", "h": np.array([1, 2])}, {"f": 2, "raw": b"\xff"}]
    call = API.classify(Servable("m", version=1, signature="c"), examples, {"ctx": 1})
    assert call.request == HttpRequest(
        "POST",
        "/v1/models/m/versions/1:classify",
        {
            "signature_name": "c",
            "examples": [{"f": 1.5, "g": "a", "h": [1, 2]}, {"f": 2, "raw": {"b64": "/w=="}}],
            "context": {"ctx": 1},
        },
    )
    assert call.parse({"results": [[["a", 0.75], ["b", 0.25]]]}) == [[("a", 0.75), ("b", 0.25)]]
    regress = API.regress(Servable("m"), [{"x": 1.0}], None)
    assert regress.request.path == "/v1/models/m:regress"
    assert regress.request.body == {"examples": [{"x": 1.0}]}
    assert regress.parse({"results": [3.5]}) == [3.5]


def test_status_reply() -> None:
    reply = {
        "model_version_status": [
            {
                "version": "2",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
            {
                "version": "1",
                "state": "END",
                "status": {"error_code": "NOT_FOUND", "error_message": "gone"},
            },
        ]
    }
    assert API.status(Servable("m")).parse(reply) == [
        ModelVersionStatus(2, "AVAILABLE"),
        ModelVersionStatus(1, "END", "NOT_FOUND", "gone"),
    ]


def test_metadata_reply() -> None:
    reply = {
        "model_spec": {"name": "half", "signature_name": "", "version": "123"},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": {
                            "x": {
                                "dtype": "DT_FLOAT",
                                "tensor_shape": {
                                    "dim": [{"size": "-1", "name": ""}],
                                    "unknown_rank": False,
                                },
                                "name": "x:0",
                            }
                        },
                        "outputs": {
                            "y": {
                                "dtype": "DT_FLOAT",
                                "tensor_shape": {"dim": [], "unknown_rank": True},
                                "name": "y:0",
                            }
                        },
                        "method_name": "tensorflow/serving/predict",
                        "defaults": {},
                    }
                }
            }
        },
    }
    assert API.metadata(Servable("half")).parse(reply) == ModelMetadata(
        "half",
        123,
        {
            "serving_default": SignatureDef(
                {"x": TensorInfo("DT_FLOAT", (-1,), "x:0")},
                {"y": TensorInfo("DT_FLOAT", None, "y:0")},
                "tensorflow/serving/predict",
            )
        },
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "a/b"}, "model name 'a/b' cannot be put in a TF Serving URL"),
        ({"model": ""}, "model name '' cannot be put in a TF Serving URL"),
        (
            {"model": "m", "version": 1, "label": "x"},
            "both version 1 and label 'x' were given for model 'm'; TF Serving selects by one",
        ),
    ],
)
def test_a_servable_is_checked_when_built(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Servable(**kwargs)
