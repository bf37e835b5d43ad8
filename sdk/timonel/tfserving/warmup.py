"""Warmup records: ``assets.extra/tf_serving_warmup_requests`` inside a SavedModel version.

TF Serving replays each record once while it loads a version, so TensorFlow's lazy
initialisation (graph optimisation, kernel selection, allocations) happens before the version is
AVAILABLE instead of on the first live request; with scale-to-zero every cold start is such a
first request. The file is a TFRecord of serialized ``tensorflow.serving.PredictionLog``; we build
and read it with the tensorflow-serving-api protos and TensorFlow's TFRecord I/O, and read it with
TF Serving's rules (``servables/tensorflow/saved_model_warmup_util.cc``): at most 1000 records,
only predict/classify/regress/multi-inference logs, and its error texts.

Requests come from example inputs in TF Serving's REST format (``instances`` or ``inputs``) or are
synthesized from the signature (zeros of the declared dtype and shape).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from timonel.errors import ModelError, ServingError, SpecError

#: TF Serving's ``WarmupConsts::kRequestsFileName`` and its folder in a SavedModel.
WARMUP_FILENAME = "tf_serving_warmup_requests"
WARMUP_RELPATH = f"assets.extra/{WARMUP_FILENAME}"
#: ``WarmupConsts::kMaxNumRecords``.
MAX_WARMUP_RECORDS = 1000

#: The ``PredictionLog`` kinds TF Serving can replay at load.
_REPLAYABLE = {
    "predict_log": "PredictRequest",
    "classify_log": "ClassificationRequest",
    "regress_log": "RegressionRequest",
    "multi_inference_log": "MultiInferenceRequest",
}


class TensorSpecLike(Protocol):
    """A signature input: a TF dtype name (``DT_FLOAT`` or ``float32``) and a shape (-1 = any)."""

    @property
    def dtype(self) -> str: ...

    @property
    def shape(self) -> Sequence[int] | None: ...


def warmup_path(version_dir: str | Path) -> Path:
    """Where TF Serving looks for warmup records in a version folder."""
    return Path(version_dir) / WARMUP_RELPATH


def prediction_log(request: Any) -> Any:
    """Wrap a request message in the ``PredictionLog`` kind TF Serving replays for it."""
    from tensorflow_serving.apis import prediction_log_pb2

    if isinstance(request, prediction_log_pb2.PredictionLog):
        return request
    kind = request.DESCRIPTOR.name
    for field, request_name in _REPLAYABLE.items():
        if kind == request_name:
            log = prediction_log_pb2.PredictionLog()
            getattr(log, field).request.CopyFrom(request)
            return log
    raise ModelError(
        f"a warmup request is a {kind}; TF Serving replays only "
        f"{', '.join(_REPLAYABLE.values())} (or a PredictionLog holding one)"
    )


def write_warmup(path: str | Path, requests: Iterable[Any]) -> int:
    """Write ``requests`` (request messages or ``PredictionLog``) as a warmup file.

    Refuses more than 1000 records before writing anything, since TF Serving would fail the
    load. Returns the number of records written.
    """
    logs = [prediction_log(request) for request in requests]
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ModelError(
            f"{len(logs)} warmup records given; TF Serving fails the load when there are more than "
            f"{MAX_WARMUP_RECORDS}: give at most {MAX_WARMUP_RECORDS} examples"
        )
    import tensorflow as tf

    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(file)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return len(logs)


def read_warmup(path: str | Path) -> list[Any]:
    """The ``PredictionLog`` records of a warmup file, checked as TF Serving checks them at load.

    A missing file is no warmup (``[]``), as in TF Serving. Errors are ``ServingError`` with TF
    Serving's status code and text, since they are what fails the version's load.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow_serving.apis import prediction_log_pb2

    file = Path(path)
    if not file.is_file():
        return []
    logs: list[Any] = []
    try:
        for tensor in tf.data.TFRecordDataset(str(file)):
            record = tensor.numpy()
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except DecodeError as exc:
                raise ServingError(
                    f"Failed to parse warmup record: {record.decode('utf-8', 'backslashreplace')} "
                    f"from {file}",
                    code="INVALID_ARGUMENT",
                ) from exc
            kind = log.WhichOneof("log_type")
            if kind not in _REPLAYABLE:
                number = log.DESCRIPTOR.fields_by_name[kind].number if kind else 0
                raise ServingError(
                    f"Unsupported log_type for warmup: {number}", code="UNIMPLEMENTED"
                )
            logs.append(log)
            if len(logs) > MAX_WARMUP_RECORDS:
                raise ServingError(
                    "Number of warmup records exceeds the maximum "
                    f"({MAX_WARMUP_RECORDS}) at {file}",
                    code="INVALID_ARGUMENT",
                )
    except tf.errors.DataLossError as exc:
        raise ServingError(
            f"{exc.message}. Please verify your warmup data is in TFRecord format.",
            code="DATA_LOSS",
        ) from exc
    return logs


def synthesize_predict_requests(
    inputs: Mapping[str, TensorSpecLike],
    *,
    model_name: str,
    signature_name: str,
    batch_sizes: Sequence[int] = (1,),
) -> list[Any]:
    """One ``PredictRequest`` per batch size, filled with zeros (empty strings, False).

    A dimension the signature leaves open (-1) is the batch size when it comes first, else 1.
    """
    import numpy as np

    requests = []
    for batch in batch_sizes:
        tensors = {}
        for name, spec in inputs.items():
            if spec.shape is None:
                raise ModelError(
                    f"input {name!r} of signature {signature_name!r} has an unknown rank, so no "
                    "warmup request can be synthesized; give example inputs (--examples)"
                )
            dims = [
                (batch if i == 0 else 1) if size < 0 else size for i, size in enumerate(spec.shape)
            ]
            np_dtype = _numpy_dtype(spec.dtype)
            if np_dtype == np.dtype(object):
                tensors[name] = np.full(dims, b"", dtype=object)
            else:
                tensors[name] = np.zeros(dims, dtype=np_dtype)
        requests.append(_predict_request(model_name, signature_name, tensors, inputs))
    return requests


def predict_requests_from_json(
    body: Any,
    inputs: Mapping[str, TensorSpecLike],
    *,
    model_name: str,
    signature_name: str,
) -> list[Any]:
    """``PredictRequest`` messages from TF Serving REST predict bodies.

    ``body`` is one request body (``{"instances": [...]}`` or ``{"inputs": ...}``) or a list of
    them; each becomes one warmup record. Strings may be ``{"b64": "..."}`` as in the REST API.
    """
    bodies = body if isinstance(body, list) else [body]
    requests = []
    for index, one in enumerate(bodies):
        where = f"example {index}" if isinstance(body, list) else "the examples"
        if not isinstance(one, dict):
            raise SpecError(
                f"{where} is a {type(one).__name__}; each example must be a predict request "
                'body, e.g. {"instances": [...]}'
            )
        named = one.get("signature_name", signature_name)
        if named != signature_name:
            raise SpecError(
                f"{where} names signature {named!r} but the release serves {signature_name!r}; "
                "drop signature_name or package that signature"
            )
        columns = _columns(one, inputs, where)
        tensors = {
            name: _to_array(value, inputs[name].dtype, f"{where}, input {name!r}")
            for name, value in columns.items()
        }
        requests.append(_predict_request(model_name, signature_name, tensors, inputs))
    return requests


def _columns(
    body: dict[str, Any], inputs: Mapping[str, TensorSpecLike], where: str
) -> dict[str, Any]:
    names = sorted(inputs)
    has_instances, has_inputs = "instances" in body, "inputs" in body
    if has_instances == has_inputs:
        raise SpecError(
            f"{where}: expecting exactly one of 'inputs' or 'instances' keys, as in TF Serving's "
            "REST predict API"
        )
    if has_instances:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise SpecError(f"{where}: 'instances' must be a non-empty list of examples")
        if len(names) == 1 and not all(isinstance(item, dict) for item in instances):
            return {names[0]: instances}
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for i, item in enumerate(instances):
            if not isinstance(item, dict) or sorted(item) != names:
                raise SpecError(
                    f"{where}: instance {i} must be an object whose keys are equal to: "
                    f"{','.join(names)}"
                )
            for name in names:
                columns[name].append(item[name])
        return columns
    value = body["inputs"]
    if isinstance(value, dict):
        missing = [name for name in names if name not in value]
        extra = sorted(set(value) - set(names))
        if missing or extra:
            raise SpecError(
                f"{where}: 'inputs' must have exactly the signature's inputs {names}; "
                f"missing {missing}, unknown {extra}"
            )
        return {name: value[name] for name in names}
    if len(names) != 1:
        raise SpecError(
            f"{where}: inputs is a plain value/list, but expecting an object as multiple input "
            f"tensors required ({','.join(names)})"
        )
    return {names[0]: value}


def _to_array(value: Any, dtype: str, where: str) -> Any:
    import numpy as np

    np_dtype = _numpy_dtype(dtype)
    try:
        if np_dtype == np.dtype(object):
            return np.array(_decode_strings(value), dtype=object)
        array = np.array(value)
        if array.dtype == np.object_ or array.dtype.kind in "USV":
            raise ValueError(f"values are not all {dtype} numbers or are ragged")
        return array.astype(np_dtype)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{where}: cannot make a {dtype} tensor: {exc}") from exc


def _decode_strings(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_strings(item) for item in value]
    if isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str):
        return base64.b64decode(value["b64"])
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{value!r} is not a string or a {{'b64': ...}} object")


def _numpy_dtype(dtype: str) -> Any:
    import numpy as np

    return np.dtype(_tf_dtype(dtype).as_numpy_dtype)


def _tf_dtype(dtype: str) -> Any:
    """A TF dtype from its name, as signatures spell it (``DT_FLOAT``) or as Python does
    (``float32``)."""
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    try:
        if dtype.startswith("DT_"):
            return tf.dtypes.as_dtype(types_pb2.DataType.Value(dtype))
        return tf.dtypes.as_dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{dtype!r} is not a TensorFlow dtype") from exc


def _predict_request(
    model_name: str,
    signature_name: str,
    tensors: Mapping[str, Any],
    inputs: Mapping[str, TensorSpecLike],
) -> Any:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, array in tensors.items():
        request.inputs[name].CopyFrom(
            tf.make_tensor_proto(array, dtype=_tf_dtype(inputs[name].dtype))
        )
    return request
