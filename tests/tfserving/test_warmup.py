"""Warmup records: written with the serving protos, read back with TF Serving's rules and texts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from timonel.errors import ModelError, ServingError, SpecError
from timonel.tfserving import (
    MAX_WARMUP_RECORDS,
    WARMUP_RELPATH,
    predict_requests_from_json,
    read_warmup,
    synthesize_predict_requests,
    warmup_path,
    write_warmup,
)


@dataclass(frozen=True)
class Spec:
    dtype: str
    shape: tuple[int, ...] | None


ONE_INPUT = {"x": Spec("float32", (-1,))}
TWO_INPUTS = {"ids": Spec("int64", (-1, 3)), "text": Spec("string", (-1,))}


def predict(value: float) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([value], dtype=tf.float32))
    return request


def raw_records(path: Path, records: list[bytes]) -> Path:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return path


def test_warmup_path_is_tf_servings() -> None:
    assert WARMUP_RELPATH == "assets.extra/tf_serving_warmup_requests"
    assert warmup_path("/m/1") == Path("/m/1/assets.extra/tf_serving_warmup_requests")


def test_write_then_read_wraps_each_request_kind(tmp_path: Path) -> None:
    requests = [
        predict(1.0),
        classification_pb2.ClassificationRequest(),
        regression_pb2.RegressionRequest(),
        prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog()),
    ]
    path = warmup_path(tmp_path)
    assert write_warmup(path, requests) == 4
    logs = read_warmup(path)
    assert [log.WhichOneof("log_type") for log in logs] == [
        "predict_log",
        "classify_log",
        "regress_log",
        "predict_log",
    ]
    assert tf.make_ndarray(logs[0].predict_log.request.inputs["x"]).tolist() == [1.0]


def test_at_most_1000_records_are_written(tmp_path: Path) -> None:
    path = tmp_path / "w"
    assert write_warmup(path, [predict(1.0)] * MAX_WARMUP_RECORDS) == 1000
    assert len(read_warmup(path)) == 1000
    with pytest.raises(ModelError, match=r"1001 warmup records given; .* at most 1000 examples"):
        write_warmup(tmp_path / "x", [predict(1.0)] * 1001)
    assert not (tmp_path / "x").exists()


def test_write_refuses_requests_tf_serving_cannot_replay(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="a warmup request is a PredictResponse"):
        write_warmup(tmp_path / "w", [predict_pb2.PredictResponse()])


def test_read_refuses_more_than_1000_records(tmp_path: Path) -> None:
    record = prediction_log_pb2.PredictionLog(predict_log={}).SerializeToString()
    path = raw_records(tmp_path / "w", [record] * 1001)
    with pytest.raises(ServingError) as info:
        read_warmup(path)
    assert str(info.value) == f"Number of warmup records exceeds the maximum (1000) at {path}"
    assert info.value.code == "INVALID_ARGUMENT"


def test_read_reports_a_non_tfrecord_file_as_data_loss(tmp_path: Path) -> None:
    path = tmp_path / "w"
    path.write_bytes(b"this is not a TFRecord file at all")
    with pytest.raises(ServingError) as info:
        read_warmup(path)
    assert info.value.code == "DATA_LOSS"
    assert str(info.value).endswith(". Please verify your warmup data is in TFRecord format.")


def test_read_reports_a_record_that_is_not_a_prediction_log(tmp_path: Path) -> None:
    path = raw_records(tmp_path / "w", [b"\xff\xff\xff"])
    with pytest.raises(ServingError) as info:
        read_warmup(path)
    assert str(info.value).startswith("Failed to parse warmup record: ")
    assert str(info.value).endswith(f" from {path}")
    assert info.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("log", "number"),
    [
        (prediction_log_pb2.PredictionLog(session_run_log={}), 5),
        (prediction_log_pb2.PredictionLog(predict_streamed_log={}), 7),
        (prediction_log_pb2.PredictionLog(), 0),
    ],
)
def test_read_refuses_log_types_tf_serving_cannot_replay(
    tmp_path: Path, log: prediction_log_pb2.PredictionLog, number: int
) -> None:
    path = raw_records(tmp_path / "w", [log.SerializeToString()])
    with pytest.raises(ServingError) as info:
        read_warmup(path)
    assert str(info.value) == f"Unsupported log_type for warmup: {number}"
    assert info.value.code == "UNIMPLEMENTED"


def test_no_file_is_no_warmup(tmp_path: Path) -> None:
    assert read_warmup(tmp_path / "absent") == []


def test_synthesized_requests_follow_the_signature() -> None:
    requests = synthesize_predict_requests(
        TWO_INPUTS, model_name="m", signature_name="serving_default", batch_sizes=(1, 4)
    )
    assert [r.model_spec.signature_name for r in requests] == ["serving_default"] * 2
    ids = tf.make_ndarray(requests[1].inputs["ids"])
    assert ids.shape == (4, 3) and ids.dtype == np.int64 and not ids.any()
    assert tf.make_ndarray(requests[0].inputs["text"]).tolist() == [b""]


def test_synthesis_needs_a_known_rank() -> None:
    with pytest.raises(ModelError, match=r"input 'x' .* unknown rank, .*\(--examples\)"):
        synthesize_predict_requests(
            {"x": Spec("float32", None)}, model_name="m", signature_name="serving_default"
        )


@pytest.mark.parametrize(
    ("body", "inputs", "expected"),
    [
        ({"instances": [1.0, 2.5]}, ONE_INPUT, {"x": [1.0, 2.5]}),
        ({"inputs": [3.0]}, ONE_INPUT, {"x": [3.0]}),
        ({"inputs": {"x": [3.0]}}, ONE_INPUT, {"x": [3.0]}),
        (
            {
                "instances": [
                    {"ids": [1, 2, 3], "text": "hi"},
                    {"ids": [4, 5, 6], "text": {"b64": "AAE="}},
                ]
            },
            TWO_INPUTS,
            {"ids": [[1, 2, 3], [4, 5, 6]], "text": [b"hi", b"\x00\x01"]},
        ),
        (
            {"signature_name": "serving_default", "inputs": {"ids": [[7, 8, 9]], "text": ["a"]}},
            TWO_INPUTS,
            {"ids": [[7, 8, 9]], "text": [b"a"]},
        ),
    ],
)
def test_requests_from_rest_bodies(body: object, inputs: dict[str, Spec], expected: dict) -> None:
    (request,) = predict_requests_from_json(
        body, inputs, model_name="m", signature_name="serving_default"
    )
    assert {k: tf.make_ndarray(v).tolist() for k, v in request.inputs.items()} == expected
    assert (
        request.inputs["ids" if "ids" in inputs else "x"].dtype
        == tf.as_dtype(inputs["ids" if "ids" in inputs else "x"].dtype).as_datatype_enum
    )


def test_a_list_of_bodies_gives_one_request_each() -> None:
    requests = predict_requests_from_json(
        [{"instances": [1.0]}, {"instances": [2.0, 3.0]}],
        ONE_INPUT,
        model_name="m",
        signature_name="serving_default",
    )
    assert len(requests) == 2


@pytest.mark.parametrize(
    ("body", "inputs", "message"),
    [
        ({}, ONE_INPUT, "expecting exactly one of 'inputs' or 'instances' keys"),
        ({"inputs": 1, "instances": [1]}, ONE_INPUT, "expecting exactly one of"),
        ({"instances": []}, ONE_INPUT, "'instances' must be a non-empty list"),
        ({"instances": [{"ids": [1, 2, 3]}]}, TWO_INPUTS, "keys are equal to: ids,text"),
        ({"inputs": {"ids": [[1, 2, 3]]}}, TWO_INPUTS, r"missing \['text'\]"),
        ({"inputs": [1]}, TWO_INPUTS, "inputs is a plain value/list, but expecting an object"),
        ({"instances": ["a"]}, ONE_INPUT, "input 'x': cannot make a float32 tensor"),
        ({"instances": [[1.0], [1.0, 2.0]]}, ONE_INPUT, "cannot make a float32 tensor"),
        ({"signature_name": "other", "instances": [1.0]}, ONE_INPUT, "names signature 'other'"),
        ([3], ONE_INPUT, "example 0 is a int; each example must be a predict request body"),
    ],
)
def test_bad_bodies_say_what_is_wrong(body: object, inputs: dict[str, Spec], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        predict_requests_from_json(body, inputs, model_name="m", signature_name="serving_default")
