"""TF Serving's REST API on aiohttp's low-level server.

Routing follows ``model_servers/http_rest_api_handler.cc``: only ``/v1/...`` paths reach the API
(anything else is a plain 404, as libevent answers), the predict/classify/regress and the
status/metadata patterns are matched case-insensitively while the method name after ``:`` is not,
and everything else under ``/v1`` is ``Malformed request: <METHOD> <path>``. Every API reply is
JSON with ``Content-Type: application/json``; errors are ``{"error": "<message>"}`` with TF
Serving's HTTP status for the status code. The low-level server (no router, no middlewares) keeps
per-request overhead small next to the model call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from timonel.codec import json_tensor
from timonel.codec.status import http_status
from timonel.errors import ServingError
from timonel.server.examples import serialize_json_examples
from timonel.server.inference import (
    Inference,
    ModelSpec,
    example_signature,
    predict_signature,
)
from timonel.server.metrics import ServerMetrics

log = logging.getLogger("timonel.server")

_PREDICT = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<method>classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<sub>metadata))?",
    re.IGNORECASE,
)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_ORIGIN = re.compile(r"https?://")
#: ``--rest_api_enable_cors_support``: ``AddCORSHeaders`` of ``http_rest_api_util.cc``
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}
_JSON = "application/json"


@dataclass(frozen=True)
class Route:
    """What a request path asks for: ``kind`` is predict/classify/regress/status/metadata."""

    kind: str
    name: str
    version: str | None = None
    label: str | None = None


def route(method: str, path: str) -> Route | None:
    """The API call a method and path name, None for a malformed ``/v1`` request. Pure."""
    if method == "POST" and (m := _PREDICT.fullmatch(path)):
        if m["method"] not in ("classify", "regress", "predict"):
            return None
        return Route(m["method"], unquote(m["name"]), m["version"], _unquote(m["label"]))
    if method == "GET" and (m := _STATUS.fullmatch(path)):
        kind = "metadata" if m["sub"] == "metadata" else "status"
        return Route(kind, unquote(m["name"] or ""), m["version"], _unquote(m["label"]))
    return None


def _unquote(value: str | None) -> str | None:
    return unquote(value) if value is not None else None


def _model_spec(found: Route, signature_name: str = "") -> ModelSpec:
    if not found.name:
        raise ServingError("Missing model name in request.", code="INVALID_ARGUMENT")
    version = None
    if found.version is not None:
        version = int(found.version)
        if not -(2**63) <= version < 2**63:
            raise ServingError(
                f"Failed to convert version: {found.version} to numeric.", code="INVALID_ARGUMENT"
            )
    return ModelSpec(found.name, version, found.label, signature_name)


class RestApi:
    """The aiohttp request handler for one server."""

    def __init__(
        self,
        inference: Inference,
        metrics: ServerMetrics,
        *,
        max_body_bytes: int,
        monitoring_path: str | None,
        timeout_ms: int = 0,
        cors: bool = False,
    ) -> None:
        self.inference = inference
        self.headers = _CORS_HEADERS if cors else {}
        self.timeout_ms = timeout_ms
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.monitoring_path = monitoring_path

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        start = time.perf_counter()
        path = request.path
        model = ""
        api = ""
        code = "OK"
        try:
            if not _API_PATH.fullmatch(path):
                if path == self.monitoring_path and request.method == "GET":
                    return web.Response(
                        body=self.metrics.render(),
                        content_type="text/plain",
                        charset="utf-8",
                    )
                return web.Response(status=404, text="Not Found", content_type="text/html")
            if request.method == "OPTIONS":  # a CORS preflight (http_server.cc)
                # upstream answers a preflight without the REST handler, so a refused one
                # carries its status but no body
                if not _ORIGIN.search(request.headers.get("Origin", "")):
                    code = "FAILED_PRECONDITION"
                    log.info("OPTIONS %s: Origin header is missing in CORS preflight", path)
                return web.Response(
                    status=http_status(code), body=b"", content_type=_JSON, headers=self.headers
                )
            found = route(request.method, path)
            if found is None:
                raise ServingError(
                    f"Malformed request: {request.method} {path}", code="INVALID_ARGUMENT"
                )
            model, api = found.name, _API_NAMES[found.kind]
            body = await self._dispatch(request, found)
            return web.Response(body=body, content_type=_JSON, headers=self.headers)
        except ServingError as exc:
            code = exc.code
            return web.Response(
                status=http_status(exc.code),
                body=json_tensor.encode_error(str(exc)),
                content_type=_JSON,
                headers=self.headers,
            )
        except _BodyTooLarge as exc:
            code = "RESOURCE_EXHAUSTED"
            return web.Response(
                status=413, body=json_tensor.encode_error(str(exc)), content_type=_JSON
            )
        except Exception as exc:  # the edge: a bug must still answer JSON, and be logged
            code = "INTERNAL"
            log.exception("%s %s failed", request.method, path)
            return web.Response(
                status=500,
                body=json_tensor.encode_error(f"{type(exc).__name__}: {exc}"),
                content_type=_JSON,
            )
        finally:
            self.inference.finished(
                start,
                model=model,
                api=api,
                entrypoint="REST",
                code=code,
                counted=bool(api),
                proto="http",
                method=request.method,
                path=path,
                remote=request.remote,
            )

    async def _dispatch(self, request: web.BaseRequest, found: Route) -> bytes:
        if found.kind == "status":
            return self._status(_model_spec(found))
        if found.kind == "metadata":
            return self._metadata(_model_spec(found))
        spec = _model_spec(found)
        with self.inference.servable(spec) as servable:
            body = await self._read_body(request)
            doc = json_tensor.parse_json(body)
            signature_name = json_tensor.signature_name(doc)
            if found.kind == "predict":
                signature = predict_signature(servable, signature_name, rest=True)
                decoded = json_tensor.decode_predict(doc, signature.input_dtypes, body)
                prediction = self.inference.predict(servable, signature, decoded.tensors)
                outputs = await self.inference.run(prediction, self.timeout_ms)
                return json_tensor.encode_predict(outputs, decoded.format)
            signature = example_signature(servable, signature_name)
            examples = serialize_json_examples(json_tensor.decode_examples(doc, found.kind))
            if found.kind == "classify":
                classification = self.inference.classify(servable, signature, examples)
                results = await self.inference.run(classification, self.timeout_ms)
                return json_tensor.encode_classify(results)
            regression = self.inference.regress(servable, signature, examples)
            values = await self.inference.run(regression, self.timeout_ms)
            return json_tensor.encode_regress(values)

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _BodyTooLarge(length, self.max_body_bytes)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise _BodyTooLarge(None, self.max_body_bytes) from exc

    def _status(self, spec: ModelSpec) -> bytes:
        statuses = self.inference.manager.status(spec.name, spec.version)
        return orjson.dumps(
            {
                "model_version_status": [
                    {
                        "version": str(s.version),
                        "state": s.state.value,
                        "status": {"error_code": s.error_code, "error_message": s.error_message},
                    }
                    for s in statuses
                ]
            }
        )

    def _metadata(self, spec: ModelSpec) -> bytes:
        from google.protobuf import json_format

        servable = self.inference.manager.resolve(spec.name, spec.version, spec.label)
        signature_defs = {
            key: json_format.MessageToDict(
                value,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,
            )
            for key, value in servable.signature_defs.items()
        }
        return orjson.dumps(
            {
                "model_spec": {
                    "name": servable.name,
                    "signature_name": "",
                    "version": str(servable.version),
                },
                "metadata": {"signature_def": {"signature_def": signature_defs}},
            }
        )


_API_NAMES = {
    "predict": "predict",
    "classify": "classify",
    "regress": "regress",
    "status": "GetModelStatus",
    "metadata": "GetModelMetadata",
}


class _BodyTooLarge(Exception):
    def __init__(self, length: int | None, limit: int) -> None:
        size = f"of {length} bytes " if length is not None else ""
        super().__init__(
            f"Request body {size}is larger than the limit of {limit} bytes; send fewer "
            "instances per request, or start the server with a larger --rest_api_max_body_bytes"
        )


def make_server(api: RestApi) -> web.Server:
    """The aiohttp protocol factory for ``loop.create_server``."""
    loop = asyncio.get_running_loop()

    def request_factory(
        message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=api.max_body_bytes
        )

    return web.Server(api, request_factory=request_factory, access_log=None)
