"""The I/O edge: send a built request over HTTP (httpx) or gRPC and return the raw reply.

Every failure leaves here as ``ServingError`` with a canonical code: HTTP statuses through
``_errors``, ``grpc.RpcError`` by its status code, timeouts as DEADLINE_EXCEEDED and refused
connections as UNAVAILABLE (which the client retries). The HTTP transport is injectable
(``httpx.MockTransport`` in tests), the gRPC one takes any ``grpc.Channel``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from timonel.client._errors import error_from_http
from timonel.client._rest import HttpRequest
from timonel.errors import ServingError

if TYPE_CHECKING:
    import grpc
    import grpc.aio

    from timonel.client._grpc import GrpcRequest

#: gRPC's 4 MB receive default is too small for real tensors; TF Serving allows 2 GB
_GRPC_MESSAGE_LIMIT = 2**31 - 1


def _encode(request: HttpRequest) -> tuple[bytes | None, dict[str, str]]:
    if request.body is None:
        return None, {}
    return json.dumps(request.body).encode(), {"Content-Type": "application/json"}


def _decode(reply: httpx.Response) -> Any:
    if not reply.is_success:
        raise error_from_http(reply.status_code, reply.content, str(reply.request.url))
    try:
        return json.loads(reply.content)
    except ValueError as exc:
        raise ServingError(
            f"{reply.request.url} answered HTTP {reply.status_code} with a body that is not "
            f"JSON ({reply.content[:100]!r}); check that the URL points at a "
            "TF-Serving-compatible REST port",
            code="INTERNAL",
        ) from exc


def _http_error(exc: httpx.HTTPError, url: str, timeout: float) -> ServingError:
    if isinstance(exc, httpx.TimeoutException):
        return ServingError(
            f"no reply from {url} within {timeout:g} s; raise the timeout or check the server's "
            "load",
            code="DEADLINE_EXCEEDED",
        )
    return ServingError(
        f"cannot reach {url}: {exc or type(exc).__name__}; check that the server is running "
        "and that the URL is right",
        code="UNAVAILABLE",
    )


def _http_client_options(host: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Host": host} if host else {}
    return {"headers": headers, "timeout": httpx.Timeout(timeout)}


class RestTransport:
    """Sends ``HttpRequest`` with one pooled ``httpx.Client``."""

    def __init__(
        self,
        url: str,
        *,
        host: str | None,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=url, transport=transport, **_http_client_options(host, timeout)
        )

    def send(self, request: HttpRequest) -> Any:
        content, headers = _encode(request)
        url = str(self._http.base_url.join(request.path))
        try:
            reply = self._http.request(
                request.method, request.path, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise _http_error(exc, url, self._timeout) from exc
        return _decode(reply)

    def close(self) -> None:
        self._http.close()


class AsyncRestTransport:
    """Sends ``HttpRequest`` with one pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        url: str,
        *,
        host: str | None,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=url, transport=transport, **_http_client_options(host, timeout)
        )

    async def send(self, request: HttpRequest) -> Any:
        content, headers = _encode(request)
        url = str(self._http.base_url.join(request.path))
        try:
            reply = await self._http.request(
                request.method, request.path, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise _http_error(exc, url, self._timeout) from exc
        return _decode(reply)

    async def close(self) -> None:
        await self._http.aclose()


def grpc_options(host: str | None) -> list[tuple[str, Any]]:
    """Channel options: TF Serving's message limit and, for KServe's ingress, ``:authority``."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", _GRPC_MESSAGE_LIMIT),
        ("grpc.max_receive_message_length", _GRPC_MESSAGE_LIMIT),
    ]
    if host:
        options.append(("grpc.default_authority", host))
    return options


def _rpc_error(exc: Any, target: str, timeout: float) -> ServingError:
    code = exc.code().name if exc.code() is not None else "UNKNOWN"
    details = exc.details() or ""
    if code == "DEADLINE_EXCEEDED" and details == "Deadline Exceeded":
        details = (
            f"no reply from {target} within {timeout:g} s; raise the timeout or check the "
            "server's load"
        )
    elif code == "UNAVAILABLE" and details.startswith("failed to connect"):
        details = (
            f"cannot reach {target}: {details}; check that the server is running and that "
            "the URL is right"
        )
    return ServingError(details, code=code)


def _stubs(channel: Any) -> dict[str, Any]:
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    return {
        "PredictionService": prediction_service_pb2_grpc.PredictionServiceStub(channel),
        "ModelService": model_service_pb2_grpc.ModelServiceStub(channel),
    }


class GrpcTransport:
    """Calls the PredictionService and ModelService stubs over one ``grpc.Channel``."""

    def __init__(
        self,
        target: str,
        *,
        secure: bool,
        host: str | None,
        timeout: float,
        channel: grpc.Channel | None = None,
    ) -> None:
        import grpc

        self._grpc = grpc
        self._target = target
        self._timeout = timeout
        if channel is None:
            options = grpc_options(host)
            channel = (
                grpc.secure_channel(target, grpc.ssl_channel_credentials(), options)
                if secure
                else grpc.insecure_channel(target, options)
            )
        self._channel = channel
        self._stubs = _stubs(channel)

    def send(self, request: GrpcRequest) -> Any:
        method = getattr(self._stubs[request.service], request.method)
        try:
            return method(request.message, timeout=self._timeout)
        except self._grpc.RpcError as exc:
            raise _rpc_error(exc, self._target, self._timeout) from exc

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcTransport:
    """Calls the stubs over a ``grpc.aio`` channel, opened on first use inside the event loop."""

    def __init__(
        self,
        target: str,
        *,
        secure: bool,
        host: str | None,
        timeout: float,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._target = target
        self._secure = secure
        self._host = host
        self._timeout = timeout
        self._channel = channel
        self._stubs = _stubs(channel) if channel is not None else None

    def _open(self) -> dict[str, Any]:
        if self._stubs is None:
            import grpc

            options = grpc_options(self._host)
            self._channel = (
                grpc.aio.secure_channel(self._target, grpc.ssl_channel_credentials(), options)
                if self._secure
                else grpc.aio.insecure_channel(self._target, options)
            )
            self._stubs = _stubs(self._channel)
        return self._stubs

    async def send(self, request: GrpcRequest) -> Any:
        import grpc

        method = getattr(self._open()[request.service], request.method)
        try:
            return await method(request.message, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _rpc_error(exc, self._target, self._timeout) from exc

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
