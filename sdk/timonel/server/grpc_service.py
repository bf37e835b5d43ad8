"""TF Serving's gRPC API (PredictionService and ModelService) with the real service definitions.

The servicers are the tensorflow-serving-api wheel's own base classes registered on grpc's
thread-pool server: each RPC runs in a pool thread and calls TensorFlow from there (through the
runner, so batching still merges gRPC and REST calls), with the time left of the client's
deadline as its run timeout (none without a deadline), as in TF Serving's
``prediction_service_impl.cc``. Measured against a ``grpc.aio`` server sharing the REST API's
event loop, this answers small-model requests faster: grpc's synchronous server costs less per
call than grpc.aio's, and no call hops between the loop and a worker thread. Status codes are
TF's codes unchanged, and messages longer than 1024 characters are cut and end in
``...TRUNCATED`` as in ``model_servers/grpc_status_util.cc``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from timonel._tensor_proto import request_inputs, to_tensor_proto
from timonel.errors import ServingError, SpecError
from timonel.server.examples import serialize_input
from timonel.server.inference import (
    ExampleResult,
    Inference,
    ModelSpec,
    check_tasks,
    example_signature,
    predict_signature,
)
from timonel.server.servable import CLASSIFY_METHOD, REGRESS_METHOD, Servable

log = logging.getLogger("timonel.server")

_MAX_MESSAGE = 2**31 - 1
_MAX_DETAILS = 1024
_NO_DEADLINE_MS = 2**31 - 1
T = TypeVar("T")


def grpc_code(code: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, code, grpc.StatusCode.UNKNOWN)


def _details(message: str) -> str:
    if len(message) <= _MAX_DETAILS:
        return message
    return message[: _MAX_DETAILS - len("...TRUNCATED")] + "...TRUNCATED"


def model_spec(request: Any) -> ModelSpec:
    """The ModelSpec of a request, checked as TF Serving checks it."""
    if not request.HasField("model_spec"):
        raise ServingError("Missing ModelSpec", code="INVALID_ARGUMENT")
    return _read_spec(request.model_spec)


def _read_spec(spec: Any) -> ModelSpec:
    if not spec.name:
        raise ServingError("ModelSpec has no name specified.", code="INVALID_ARGUMENT")
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return ModelSpec(spec.name, version, label, spec.signature_name)


def timeout_ms(context: grpc.ServicerContext) -> int:
    """The run timeout of an RPC: the time left of its deadline (0: it has none).

    An RPC without a deadline reports about 2**63 seconds left; TF Serving saturates the time
    left at ``INT_MAX`` milliseconds (24 days), and so does this, as no timeout.
    """
    remaining = context.time_remaining()
    if remaining is None or remaining * 1000 >= _NO_DEADLINE_MS:
        return 0
    return max(1, int(remaining * 1000))


def _fill_spec(target: Any, servable: Servable, signature_name: str | None) -> None:
    target.name = servable.name
    target.version.value = servable.version
    if signature_name is not None:
        target.signature_name = signature_name


class _Calls:
    """Runs one RPC: metrics, access log, and ServingError → gRPC status."""

    def __init__(self, inference: Inference) -> None:
        self.inference = inference

    def handle(
        self,
        api: str,
        request: Any,
        context: grpc.ServicerContext,
        body: Callable[[], T],
        *,
        counted: bool = True,
    ) -> T:
        start = time.perf_counter()
        code = "OK"
        name = request.model_spec.name if hasattr(request, "model_spec") else ""
        try:
            return body()
        except ServingError as exc:
            code = exc.code
            context.abort(grpc_code(exc.code), _details(str(exc)))
            raise  # abort raises; this keeps type checkers honest
        except Exception as exc:  # the edge: a bug must still answer a status, and be logged
            code = "INTERNAL"
            log.exception("%s failed", api)
            context.abort(grpc.StatusCode.INTERNAL, _details(f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            self.inference.finished(
                start,
                model=name,
                api=api,
                entrypoint="GRPC",
                code=code,
                counted=counted,
                proto="grpc",
                method=api,
                remote=context.peer(),
            )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, inference: Inference) -> None:
        self.inference = inference
        self._calls = _Calls(inference)

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        def body() -> Any:
            spec = model_spec(request)
            with self.inference.servable(spec) as servable:
                signature = predict_signature(servable, spec.signature_name, rest=False)
                job = self.inference.predict(
                    servable, signature, request_inputs(request.inputs), list(request.output_filter)
                )
                outputs = self.inference.run_blocking(job, timeout_ms(context))
                response = predict_pb2.PredictResponse()
                _fill_spec(response.model_spec, servable, signature.key)
                for alias, value in outputs.items():
                    response.outputs[alias].CopyFrom(to_tensor_proto(value, typed_fields=True))
                return response

        return self._calls.handle("Predict", request, context, body)

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = classification_pb2.ClassificationResponse()
        return self._calls.handle(
            "Classify",
            request,
            context,
            lambda: self._examples(request, response, CLASSIFY_METHOD, timeout_ms(context)),
        )

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = regression_pb2.RegressionResponse()
        return self._calls.handle(
            "Regress",
            request,
            context,
            lambda: self._examples(request, response, REGRESS_METHOD, timeout_ms(context)),
        )

    def _examples(self, request: Any, response: Any, method: str, timeout: int) -> Any:
        """A Classify or Regress request run, and its results written into ``response``."""
        spec = model_spec(request)
        with self.inference.servable(spec) as servable:
            signature = example_signature(servable, spec.signature_name)
            examples = serialize_input(request.input)
            _fill_spec(response.model_spec, servable, signature.key)
            result: ExampleResult
            if method == CLASSIFY_METHOD:
                job = self.inference.classify(servable, signature, examples)
                result = self.inference.run_blocking(job, timeout)
            else:
                result = self.inference.run_blocking(
                    self.inference.regress(servable, signature, examples), timeout
                )
            _fill_result(response.result, result)
            return response

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Classify and regress tasks of one model on the same Examples, in one session call.

        As in TF Serving, the first task's ModelSpec picks the servable (no task: an empty
        ModelSpec), then every task is checked before any input is read.
        """

        def body() -> Any:
            first = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
            with self.inference.servable(_read_spec(first)) as servable:
                tasks = check_tasks(
                    servable,
                    [(t.model_spec.name, t.model_spec.signature_name, t.method_name)
                     for t in request.tasks],
                )  # fmt: skip
                job = self.inference.multi_inference(
                    servable, tasks, serialize_input(request.input)
                )
                results = self.inference.run_blocking(job, timeout_ms(context))
                response = inference_pb2.MultiInferenceResponse()
                for task, result in zip(tasks, results, strict=True):
                    entry = response.results.add()
                    _fill_spec(entry.model_spec, servable, task.signature.key)
                    _fill_result(
                        entry.classification_result
                        if task.method == CLASSIFY_METHOD
                        else entry.regression_result,
                        result,
                    )
                return response

        return self._calls.handle("MultiInference", request, context, body)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        def body() -> Any:
            spec = model_spec(request)
            if not request.metadata_field:
                raise ServingError(
                    "GetModelMetadataRequest must specify at least one metadata_field",
                    code="INVALID_ARGUMENT",
                )
            for field in request.metadata_field:
                if field != "signature_def":
                    raise ServingError(
                        f"Metadata field {field} is not supported", code="INVALID_ARGUMENT"
                    )
            servable = self.inference.manager.resolve(spec.name, spec.version, spec.label)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            _fill_spec(response.model_spec, servable, None)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for key, value in servable.signature_defs.items():
                signature_map.signature_def[key].CopyFrom(value)
            response.metadata["signature_def"].Pack(signature_map)
            return response

        return self._calls.handle("GetModelMetadata", request, context, body, counted=False)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, inference: Inference) -> None:
        self.inference = inference
        self._calls = _Calls(inference)

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        def body() -> Any:
            spec = model_spec(request)
            statuses = self.inference.manager.status(spec.name, spec.version)
            response = get_model_status_pb2.GetModelStatusResponse()
            for status in statuses:
                entry = response.model_version_status.add()
                entry.version = status.version
                entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(
                    status.state.value
                )
                entry.status.error_code = _error_code_number(status.error_code)
                entry.status.error_message = status.error_message
            return response

        return self._calls.handle("GetModelStatus", request, context, body, counted=False)

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        def body() -> Any:
            from timonel.tfserving import ModelConfig

            if request.config.WhichOneof("config") != "model_config_list":
                raise ServingError(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                    "ModelConfigList is currently supported",
                    code="INVALID_ARGUMENT",
                )
            try:
                models = [
                    ModelConfig.from_proto(c) for c in request.config.model_config_list.config
                ]
            except SpecError as exc:
                raise ServingError(str(exc), code="INVALID_ARGUMENT") from exc
            self.inference.manager.configure(models)
            return model_management_pb2.ReloadConfigResponse()

        return self._calls.handle(
            "HandleReloadConfigRequest", request, context, body, counted=False
        )


def _fill_result(target: Any, result: ExampleResult) -> None:
    """A ``ClassificationResult`` or ``RegressionResult`` proto from a classify or regress
    result."""
    for row in result:
        if isinstance(row, float):
            target.regressions.add(value=row)
        else:
            classifications = target.classifications.add()
            for label, score in row:
                classifications.classes.add(label=label, score=score)


def _error_code_number(code: str) -> int:
    from tensorflow.core.protobuf import error_codes_pb2

    names = set(error_codes_pb2.Code.keys())
    return int(error_codes_pb2.Code.Value(code)) if code in names else error_codes_pb2.UNKNOWN


def make_server(inference: Inference, threads: int) -> grpc.Server:
    """A grpc server with both services on ``threads`` handler threads; the caller binds ports
    and starts it."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(inference), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(inference), server)
    return server
