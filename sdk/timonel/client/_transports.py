"""The I/O edge: send a built request over HTTP (httpx) or gRPC and return the raw reply.

Every failure leaves here as ``ServingError`` with a canonical code: HTTP statuses through
``_errors``, ``grpc.RpcError`` by its status code, timeouts as DEADLINE_EXCEEDED and refused
connections as UNAVAILABLE (which the client retries). The HTTP transport is injectable
(``httpx.MockTransport`` in tests), the gRPC one takes any ``grpc.Channel``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from timonel.client._errors import error_from_http
from timonel.client._rest import HttpRequest
from timonel.errors import ServingError

if TYPE_CHECKING:
    import grpc
    import grpc.aio

    from timonel.client._grpc import GrpcRequest

H = TypeVar("H", httpx.Client, httpx.AsyncClient)

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


def _http_client(cls: type[H], url: str, host: str | None, timeout: float, transport: Any) -> H:
    headers = {"Host": host} if host else {}
    return cls(base_url=url, transport=transport, headers=headers, timeout=httpx.Timeout(timeout))


def _build(http: httpx.Client | httpx.AsyncClient, request: HttpRequest) -> httpx.Request:
    content, headers = _encode(request)
    return http.build_request(request.method, request.path, content=content, headers=headers)


@contextmanager
def _http_errors(url: httpx.URL, timeout: float) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError as exc:
        raise _http_error(exc, str(url), timeout) from exc


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
        self._http = _http_client(httpx.Client, url, host, timeout, transport)

    def send(self, request: HttpRequest) -> Any:
        built = _build(self._http, request)
        with _http_errors(built.url, self._timeout):
            return _decode(self._http.send(built))

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
        self._http = _http_client(httpx.AsyncClient, url, host, timeout, transport)

    async def send(self, request: HttpRequest) -> Any:
        built = _build(self._http, request)
        with _http_errors(built.url, self._timeout):
            return _decode(await self._http.send(built))

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


def _channel(channels: Any, target: str, secure: bool, host: str | None) -> Any:
    """A channel from ``grpc`` or ``grpc.aio`` (``channels``), with ``grpc_options``."""
    import grpc

    options = grpc_options(host)
    if secure:
        return channels.secure_channel(target, grpc.ssl_channel_credentials(), options)
    return channels.insecure_channel(target, options)


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
        self._channel = channel or _channel(grpc, target, secure, host)
        self._stubs = _stubs(self._channel)

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
            import grpc.aio

            self._channel = _channel(grpc.aio, self._target, self._secure, self._host)
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
