"""TF Serving's gRPC API (PredictionService and ModelService) with the real service definitions.

The services answer the methods of the tensorflow-serving-api wheel's own service descriptors, with
its request and response messages, on ``timonel.server.grpc_server`` (the event loop that runs the
REST API too). Each call awaits the runner (so batching merges gRPC and REST calls), with the time
left of the client's deadline as its run timeout (none without a deadline), as in TF Serving's
``prediction_service_impl.cc``. Status codes are TF's codes unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.protobuf import message_factory
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    regression_pb2,
)

from timonel.codec.tensor_proto import request_inputs, to_tensor_proto
from timonel.errors import ServingError, SpecError
from timonel.server.channel_arguments import ConnectionLimits
from timonel.server.examples import serialize_input
from timonel.server.grpc_server import STATUS_NUMBERS, GrpcServer, Method, Rpc
from timonel.server.inference import (
    ExampleResult,
    Inference,
    ModelSpec,
    check_tasks,
    example_signature,
    predict_signature,
)
from timonel.server.outbox import Outbox
from timonel.server.servable import CLASSIFY_METHOD, REGRESS_METHOD, Servable

log = logging.getLogger("timonel.server")

T = TypeVar("T")


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


def _fill_spec(target: Any, servable: Servable, signature_name: str | None) -> None:
    target.name = servable.name
    target.version.value = servable.version
    if signature_name is not None:
        target.signature_name = signature_name


class _Calls:
    """Runs one RPC with its metrics and access log line; a ``ServingError`` goes on to the
    server, which answers its code."""

    def __init__(self, inference: Inference) -> None:
        self.inference = inference

    async def handle(
        self,
        api: str,
        request: Any,
        rpc: Rpc,
        body: Callable[[], Awaitable[T]],
        *,
        counted: bool = True,
    ) -> T:
        start = time.perf_counter()
        code = "INTERNAL"
        try:
            result = await body()
            code = "OK"
            return result
        except ServingError as exc:
            code = exc.code
            raise
        except asyncio.CancelledError:  # the server answered the deadline, or the client left
            code = "DEADLINE_EXCEEDED" if rpc.past_deadline() else "CANCELLED"
            raise
        finally:
            self.inference.finished(
                start,
                model=request.model_spec.name if hasattr(request, "model_spec") else "",
                api=api,
                entrypoint="GRPC",
                code=code,
                counted=counted,
                proto="grpc",
                method=api,
                remote=rpc.peer,
            )


class PredictionService:
    def __init__(self, inference: Inference, *, tensor_content: bool = False) -> None:
        self.inference = inference
        self._calls = _Calls(inference)
        #: ``--enable_serialization_as_tensor_content``: outputs in ``tensor_content``
        self._typed_fields = not tensor_content

    async def Predict(self, request: Any, rpc: Rpc) -> Any:
        async def body() -> Any:
            spec = model_spec(request)
            with self.inference.servable(spec) as servable:
                signature = predict_signature(servable, spec.signature_name, rest=False)
                job = self.inference.predict(
                    servable, signature, request_inputs(request.inputs), list(request.output_filter)
                )
                outputs = await self.inference.run(job, rpc.timeout_ms())
                response = predict_pb2.PredictResponse()
                _fill_spec(response.model_spec, servable, signature.key)
                for alias, value in outputs.items():
                    to_tensor_proto(
                        value, typed_fields=self._typed_fields, into=response.outputs[alias]
                    )
                return response

        return await self._calls.handle("Predict", request, rpc, body)

    async def Classify(self, request: Any, rpc: Rpc) -> Any:
        response = classification_pb2.ClassificationResponse()
        return await self._calls.handle(
            "Classify",
            request,
            rpc,
            lambda: self._examples(request, response, CLASSIFY_METHOD, rpc.timeout_ms()),
        )

    async def Regress(self, request: Any, rpc: Rpc) -> Any:
        response = regression_pb2.RegressionResponse()
        return await self._calls.handle(
            "Regress",
            request,
            rpc,
            lambda: self._examples(request, response, REGRESS_METHOD, rpc.timeout_ms()),
        )

    async def _examples(self, request: Any, response: Any, method: str, timeout: int) -> Any:
        """A Classify or Regress request run, and its results written into ``response``."""
        spec = model_spec(request)
        with self.inference.servable(spec) as servable:
            signature = example_signature(servable, spec.signature_name)
            examples = serialize_input(request.input)
            _fill_spec(response.model_spec, servable, signature.key)
            result: ExampleResult
            if method == CLASSIFY_METHOD:
                job = self.inference.classify(servable, signature, examples)
                result = await self.inference.run(job, timeout)
            else:
                result = await self.inference.run(
                    self.inference.regress(servable, signature, examples), timeout
                )
            _fill_result(response.result, result)
            return response

    async def MultiInference(self, request: Any, rpc: Rpc) -> Any:
        """Classify and regress tasks of one model on the same Examples, in one session call.

        As in TF Serving, the first task's ModelSpec picks the servable (no task: an empty
        ModelSpec), then every task is checked before any input is read.
        """

        async def body() -> Any:
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
                results = await self.inference.run(job, rpc.timeout_ms())
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

        return await self._calls.handle("MultiInference", request, rpc, body)

    async def GetModelMetadata(self, request: Any, rpc: Rpc) -> Any:
        async def body() -> Any:
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

        return await self._calls.handle("GetModelMetadata", request, rpc, body, counted=False)


class ModelService:
    def __init__(self, inference: Inference) -> None:
        self.inference = inference
        self._calls = _Calls(inference)

    async def GetModelStatus(self, request: Any, rpc: Rpc) -> Any:
        async def body() -> Any:
            spec = model_spec(request)
            statuses = self.inference.manager.status(spec.name, spec.version)
            response = get_model_status_pb2.GetModelStatusResponse()
            for status in statuses:
                entry = response.model_version_status.add()
                entry.version = status.version
                entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(
                    status.state.value
                )
                entry.status.error_code = STATUS_NUMBERS.get(
                    status.error_code, STATUS_NUMBERS["UNKNOWN"]
                )
                entry.status.error_message = status.error_message
            return response

        return await self._calls.handle("GetModelStatus", request, rpc, body, counted=False)

    async def HandleReloadConfigRequest(self, request: Any, rpc: Rpc) -> Any:
        async def body() -> Any:
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
            await asyncio.to_thread(self.inference.manager.configure, models)
            return model_management_pb2.ReloadConfigResponse()

        return await self._calls.handle(
            "HandleReloadConfigRequest", request, rpc, body, counted=False
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


class HealthService:
    """``grpc.health.v1.Health/Check`` (``--enable_grpc_healthcheck_service``): the server and
    both TF Serving services are SERVING once the ports are open, as ``server.cc`` sets them;
    another service is NOT_FOUND. ``Watch`` is a streaming method, which this unary server
    answers UNIMPLEMENTED."""

    _SERVICES = ("", "ModelService", "PredictionService")

    async def Check(self, request: Any, rpc: Rpc) -> Any:
        if request.service not in self._SERVICES:
            raise ServingError("service not registered", code="NOT_FOUND")
        return health_message("HealthCheckResponse")(status=1)  # SERVING


@functools.cache
def _health_pool() -> Any:
    """``grpc/health/v1/health.proto``, declared here: grpcio-health-checking is not a
    dependency, and two messages do not warrant one."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="grpc/health/v1/health.proto", package="grpc.health.v1", syntax="proto3"
    )
    request = file.message_type.add(name="HealthCheckRequest")
    request.field.add(name="service", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    response = file.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for number, name in enumerate(("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")):
        status.value.add(name=name, number=number)
    response.field.add(
        name="status",
        number=1,
        type=F.TYPE_ENUM,
        label=F.LABEL_OPTIONAL,
        type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
    )
    service = file.service.add(name="Health")
    for name, streaming in (("Check", False), ("Watch", True)):
        service.method.add(
            name=name,
            input_type=".grpc.health.v1.HealthCheckRequest",
            output_type=".grpc.health.v1.HealthCheckResponse",
            server_streaming=streaming,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool


def health_message(name: str) -> Any:
    """``grpc.health.v1.<name>`` (HealthCheckRequest, HealthCheckResponse)."""
    return message_factory.GetMessageClass(
        _health_pool().FindMessageTypeByName(f"grpc.health.v1.{name}")
    )


def make_server(
    inference: Inference,
    *,
    limits: ConnectionLimits | None = None,
    tensor_content: bool = False,
    health: bool = False,
    outbox: Outbox | None = None,
) -> GrpcServer:
    """A gRPC server answering every method of TF Serving's PredictionService and ModelService
    (and grpc's Health service with ``health``); the caller starts it on the running loop."""
    methods: dict[str, Method] = {}
    services: list[tuple[Any, Any]] = [
        (
            prediction_service_pb2.DESCRIPTOR,
            PredictionService(inference, tensor_content=tensor_content),
        ),
        (model_service_pb2.DESCRIPTOR, ModelService(inference)),
    ]
    if health:
        services.append(
            (_health_pool().FindFileByName("grpc/health/v1/health.proto"), HealthService())
        )
    for descriptor, service in services:
        for definition in descriptor.services_by_name.values():
            for method in definition.methods:
                handler = getattr(service, method.name, None)
                if handler is None:
                    continue  # Health/Watch streams: the server answers it UNIMPLEMENTED
                methods[f"/{definition.full_name}/{method.name}"] = Method(
                    message_factory.GetMessageClass(method.input_type), handler
                )
    return GrpcServer(methods, limits=limits, outbox=outbox)
