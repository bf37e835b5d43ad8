"""TF Serving's REST API: from a request's method, path and body to its reply.

Routing follows ``model_servers/http_rest_api_handler.cc``: only ``/v1/...`` paths reach the API
(anything else is a plain 404, as libevent answers), the predict/classify/regress and the
status/metadata patterns are matched case-insensitively while the method name after ``:`` is not,
and everything else under ``/v1`` is ``Malformed request: <METHOD> <path>``. Every API reply is
JSON with ``Content-Type: application/json``; errors are ``{"error": "<message>"}`` with TF
Serving's HTTP status for the status code. ``timonel.server.rest_port`` reads the requests and
writes the replies.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

import orjson

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


@dataclass(frozen=True)
class Reply:
    """An answer of the REST port, before either HTTP path writes it."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: Mapping[str, str] = field(default_factory=dict)


class RestApi:
    """TF Serving's REST API, apart from how requests arrive: ``answer`` takes a request's method,
    path and body, and both HTTP paths of ``timonel.server.rest_port`` (its own and aiohttp's)
    call it."""

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

    async def answer(
        self,
        method: str,
        path: str,
        read_body: Callable[[], Awaitable[bytes]],
        *,
        origin: str = "",
        remote: str | None = None,
    ) -> Reply:
        """The reply to one request; ``path`` is still percent-encoded, and ``read_body`` is
        awaited only by the calls that take a body, once their model is found."""
        start = time.perf_counter()
        model = ""
        api = ""
        code = "OK"
        try:
            if not _API_PATH.fullmatch(path):
                if path == self.monitoring_path and method == "GET":
                    return Reply(200, self.metrics.render(), "text/plain; charset=utf-8")
                return Reply(404, b"Not Found", "text/html; charset=utf-8")
            if method == "OPTIONS":  # a CORS preflight (http_server.cc)
                # upstream answers a preflight without the REST handler, so a refused one
                # carries its status but no body
                if not _ORIGIN.search(origin):
                    code = "FAILED_PRECONDITION"
                    log.info("OPTIONS %s: Origin header is missing in CORS preflight", path)
                return Reply(http_status(code), b"", headers=self.headers)
            found = route(method, path)
            if found is None:
                raise ServingError(f"Malformed request: {method} {path}", code="INVALID_ARGUMENT")
            model, api = found.name, _API_NAMES[found.kind]
            body = await self._dispatch(found, read_body)
            return Reply(200, body, headers=self.headers)
        except ServingError as exc:
            code = exc.code
            body = json_tensor.encode_error(str(exc))
            return Reply(http_status(exc.code), body, headers=self.headers)
        except BodyTooLarge as exc:
            code = "RESOURCE_EXHAUSTED"
            return Reply(413, json_tensor.encode_error(str(exc)))
        except Exception as exc:  # the edge: a bug must still answer JSON, and be logged
            code = "INTERNAL"
            log.exception("%s %s failed", method, path)
            return Reply(500, json_tensor.encode_error(f"{type(exc).__name__}: {exc}"))
        finally:
            self.inference.finished(
                start,
                model=model,
                api=api,
                entrypoint="REST",
                code=code,
                counted=bool(api),
                proto="http",
                method=method,
                path=path,
                remote=remote,
            )

    async def _dispatch(self, found: Route, read_body: Callable[[], Awaitable[bytes]]) -> bytes:
        if found.kind == "status":
            return self._status(_model_spec(found))
        if found.kind == "metadata":
            return self._metadata(_model_spec(found))
        spec = _model_spec(found)
        with self.inference.servable(spec) as servable:
            body = await read_body()
            predict = found.kind == "predict"
            doc = (json_tensor.parse_predict_json if predict else json_tensor.parse_json)(body)
            signature_name = json_tensor.signature_name(doc)
            if predict:
                signature = predict_signature(servable, signature_name, rest=True)
                decoded = json_tensor.decode_predict(doc, signature.input_dtypes)
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


class BodyTooLarge(Exception):
    def __init__(self, length: int | None, limit: int) -> None:
        size = f"of {length} bytes " if length is not None else ""
        super().__init__(
            f"Request body {size}is larger than the limit of {limit} bytes; send fewer "
            "instances per request, or start the server with a larger --rest_api_max_body_bytes"
        )
