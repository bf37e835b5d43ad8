"""``Client`` and ``AsyncClient``: TF Serving's REST and gRPC APIs with numpy in and out.

Both clients build each request with the pure ``RestApi``/``GrpcApi`` (``_rest``, ``_grpc``),
send it through a transport (``_transports``) and retry UNAVAILABLE with bounded backoff
(``_retry``). Failures raise ``ServingError`` with TF Serving's code and message, the same for
both protocols. Each method is written once, as a plan: a generator that yields the ``Call``s it
needs and the waits between retries, and receives the replies; ``Client`` runs plans blocking,
``AsyncClient`` awaits them.

Numpy calls need each signature's input and output names and dtypes: the clients ask the server
for the model's metadata once per (model, version, label) and keep it. That lets REST return
typed arrays (JSON has no dtypes), lets gRPC accept a single unnamed array, and casts inputs to
the declared dtype (float64 data to a float32 model) the way the REST server does, so both
protocols accept the same arrays.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import time
import types
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

import httpx
import numpy as np

from timonel.client._call import Api, Arrays, Call, JsonExample, encode_inputs
from timonel.client._rest import RestApi
from timonel.client._retry import Retry, check_timeout
from timonel.client._transports import (
    AsyncGrpcTransport,
    AsyncRestTransport,
    GrpcTransport,
    RestTransport,
)
from timonel.client._types import Classifications, ModelMetadata, ModelVersionStatus, Servable
from timonel.codec.json_tensor import NUMPY_DTYPES
from timonel.errors import ServingError, SpecError
from timonel.signatures import SignatureDef


def lazy_module(name: str) -> types.ModuleType:
    """The module ``name``, executed on its first attribute access (importlib's LazyLoader)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import grpc
    import grpc.aio

    from timonel.kube.client import Cluster
else:
    # The clients' hints name grpc's channel types. Bound lazily, grpc loads when those hints are
    # resolved (typing.get_type_hints, which typer and documentation tools call) or a channel is
    # made, not when the client is imported: a REST-only client does not pay for it.
    grpc = lazy_module("grpc")


R = TypeVar("R")
#: a client method: yields each call it needs (and receives its parsed reply, or its
#: ServingError thrown in) or a float (seconds to wait before retrying), then returns its answer
Plan = Generator[Call[Any] | float, Any, R]
Protocol = Literal["rest", "grpc"]
_DEFAULT_RETRY = Retry()


def _endpoint(url: str, protocol: Protocol | None) -> tuple[Protocol, str, bool]:
    """(protocol, address, secure) from a URL: ``grpc://`` or ``grpcs://`` mean gRPC."""
    if "://" not in url:
        url = f"{'grpc' if protocol == 'grpc' else 'http'}://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "grpc", "grpcs") or not parts.hostname:
        raise SpecError(
            f"cannot use {url!r} as a model server URL; expected http://HOST:PORT for REST or "
            "grpc://HOST:PORT for gRPC",
            field="url",
        )
    chosen: Protocol = protocol or ("grpc" if parts.scheme.startswith("grpc") else "rest")
    secure = parts.scheme in ("https", "grpcs")
    if chosen == "grpc":
        return chosen, parts.netloc, secure
    scheme = "https" if secure else "http"
    return chosen, f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}", secure


def _api(protocol: Protocol) -> Api:
    if protocol == "grpc":
        from timonel.client._grpc import GrpcApi  # imports TensorFlow's protos

        return GrpcApi()
    return RestApi()


def _pick_signature(metadata: ModelMetadata, servable: Servable) -> SignatureDef:
    signature = metadata.signatures.get(servable.signature_key)
    if signature is None:
        raise ServingError(
            f'Serving signature name: "{servable.signature_key}" not found in signature def; '
            f"model {metadata.name} version {metadata.version} has "
            f"{', '.join(sorted(metadata.signatures)) or 'no signatures'}",
            code="INVALID_ARGUMENT",
        )
    return signature


def _cast(value: Any, dtype_name: str) -> np.ndarray[Any, Any]:
    array = np.asarray(value)
    wanted = NUMPY_DTYPES.get(dtype_name)
    if wanted is None or array.dtype == wanted:
        return array
    if np.can_cast(array.dtype, wanted, casting="same_kind") or (
        array.dtype.kind in "iub" and wanted.kind == "f"
    ):
        return array.astype(wanted)
    return array  # the server reports the mismatch in its own words


def _named_inputs(inputs: Any, signature: SignatureDef, servable: Servable) -> Arrays:
    """Name a bare array after the signature's only input; cast to the declared dtypes."""
    if not isinstance(inputs, Mapping):
        if len(signature.inputs) != 1:
            raise SpecError(
                f"signature {servable.signature_key!r} of model {servable.model!r} takes "
                f"{len(signature.inputs)} inputs ({', '.join(sorted(signature.inputs))}); pass a "
                "dict of arrays by input name",
                field="inputs",
            )
        inputs = {next(iter(signature.inputs)): inputs}
    arrays = encode_inputs(inputs, np.asarray)
    return {
        name: _cast(array, signature.inputs[name].dtype if name in signature.inputs else "")
        for name, array in arrays.items()
    }


def _json_servable(
    model: str,
    body: Mapping[str, Any],
    signature: str | None,
    version: int | None,
    label: str | None,
) -> tuple[Servable, dict[str, Any]]:
    sent = dict(body)
    if signature is not None:
        sent["signature_name"] = signature
    name = sent.get("signature_name", "")
    if not isinstance(name, str):
        raise ServingError(
            "JSON Value: 'signature_name' key must be a string value.", code="INVALID_ARGUMENT"
        )
    return Servable(model, version, label, name), sent


class _Base:
    """What both clients share: endpoint, protocol, retry policy, the signature cache, and every
    method as a plan."""

    def __init__(
        self, url: str, protocol: Protocol | None, host: str | None, timeout: float, retry: Retry
    ) -> None:
        self.protocol, self._address, self._secure = _endpoint(url, protocol)
        self.url = url
        self._host = host
        self._timeout = check_timeout(timeout)
        self._retry = retry
        self._api = _api(self.protocol)
        self._metadata: dict[tuple[str, int | None, str | None], ModelMetadata] = {}

    @classmethod
    def for_service(
        cls,
        name: str,
        *,
        namespace: str | None = None,
        cluster: Cluster | None = None,
        gateway: str | None = None,
        protocol: Protocol | None = None,
        **options: Any,
    ) -> Self:
        """A client for the InferenceService ``name``, found from its status as a cluster's
        clients find it: ``status.url`` through the ingress gateway, with its host as the Host
        header (gRPC ``:authority``), so the same call works on ``timonel local`` and on GKE.

        ``cluster`` defaults to ``Cluster.connect()`` (the kubeconfig kubectl would use, else
        ``timonel local``'s). ``gateway`` (``http://HOST:PORT``) is the ingress address; without
        it, it is discovered: ``timonel local``'s ingress port, else the LoadBalancer address of
        ``istio-system/istio-ingressgateway``, else ``status.url`` is used as it is (DNS must
        resolve the cluster's domain). With Kourier or the Gateway API, pass the gateway's
        external address. ``options`` are the constructor's (``timeout``, ``retry``, ...).
        """
        from timonel.kube.client import Cluster
        from timonel.kube.endpoints import find_endpoint

        with contextlib.ExitStack() as owned:
            if cluster is None:
                cluster = owned.enter_context(Cluster.connect(namespace=namespace))
            where = find_endpoint(name, cluster=cluster, namespace=namespace, gateway=gateway)
        url = where.grpc if protocol == "grpc" else where.rest
        return cls(url, protocol=protocol, host=where.host, **options)

    def _signature(self, servable: Servable) -> Plan[SignatureDef]:
        metadata = self._metadata.get((servable.model, servable.version, servable.label))
        if metadata is None:
            lookup = Servable(servable.model, servable.version, servable.label)
            metadata = yield from self._metadata_plan(lookup)
        return _pick_signature(metadata, servable)

    def _metadata_plan(self, servable: Servable) -> Plan[ModelMetadata]:
        metadata = yield from self._call(self._api.metadata(servable))
        self._metadata[(servable.model, servable.version, servable.label)] = metadata
        return metadata

    def _predict(self, servable: Servable, inputs: Mapping[str, Any] | Any) -> Plan[Arrays]:
        signature_def = yield from self._signature(servable)
        named = _named_inputs(inputs, signature_def, servable)
        return (yield from self._call(self._api.predict(servable, named, signature_def)))

    def _predict_json(self, servable: Servable, body: dict[str, Any]) -> Plan[dict[str, Any]]:
        signature_def = None
        if self._api.json_needs_signature:
            signature_def = yield from self._signature(servable)
        return (yield from self._call(self._api.predict_json(servable, body, signature_def)))

    def _call(self, call: Call[R]) -> Plan[R]:
        """One call, tried again after a wait while it fails with a code ``retry`` retries."""
        delays = self._retry.delays()
        while True:
            try:
                reply: R = yield call
                return reply
            except ServingError as exc:
                delay = next(delays, None) if self._retry.retries(exc.code) else None
                if delay is None:
                    raise
            yield delay

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, protocol={self.protocol!r})"


class Client(_Base):
    """A blocking client for a TF-Serving-compatible server (``timonel serve``, TF Serving,
    KServe's TF Serving runtime), over REST (``http://host:8501``) or gRPC
    (``grpc://host:8500`` or ``protocol="grpc"``).

    ``host`` sets the HTTP ``Host`` header and gRPC ``:authority``, which KServe's ingress
    routes on (``<isvc>.<namespace>.example.com``). ``timeout`` bounds each attempt in seconds;
    ``retry`` says how UNAVAILABLE replies are retried. ``transport`` (an httpx transport) and
    ``channel`` (a gRPC channel) replace the network, for tests or custom TLS.
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: Protocol | None = None,
        host: str | None = None,
        timeout: float = 30.0,
        retry: Retry = _DEFAULT_RETRY,
        transport: httpx.BaseTransport | None = None,
        channel: grpc.Channel | None = None,
    ) -> None:
        super().__init__(url, protocol, host, timeout, retry)
        self._transport: RestTransport | GrpcTransport
        if self.protocol == "grpc":
            self._transport = GrpcTransport(
                self._address, secure=self._secure, host=host, timeout=timeout, channel=channel
            )
        else:
            self._transport = RestTransport(
                self._address, host=host, timeout=timeout, transport=transport
            )

    def _run(self, plan: Plan[R]) -> R:
        """Send the calls and sleep the waits the plan yields, until it answers."""
        reply: Any = None
        failure: ServingError | None = None
        while True:
            try:
                step = plan.throw(failure) if failure else plan.send(reply)
            except StopIteration as done:
                result: R = done.value
                return result
            reply, failure = None, None
            if not isinstance(step, Call):
                time.sleep(step)
                continue
            try:
                reply = step.parse(self._transport.send(step.request))
            except ServingError as exc:
                failure = exc

    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any] | Any,
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run a predict signature on tensors (columnar): arrays by input name in, arrays by
        output name out, typed as the signature declares. A single array is fine when the
        signature has one input.
        """
        return self._run(self._predict(Servable(model, version, label, signature), inputs))

    def predict_json(
        self,
        model: str,
        body: Mapping[str, Any],
        *,
        signature: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """Send a REST predict body (row ``instances`` or columnar ``inputs``) and return the
        REST reply (``predictions`` or ``outputs``); over gRPC the body is typed by the signature
        and the reply converted back, so both protocols answer alike.
        """
        return self._run(
            self._predict_json(*_json_servable(model, body, signature, version, label))
        )

    def classify(
        self,
        model: str,
        examples: list[JsonExample],
        *,
        context: JsonExample | None = None,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> Classifications:
        """Run a classify signature on examples (feature name → value or list of values)."""
        servable = Servable(model, version, label, signature)
        return self._run(self._call(self._api.classify(servable, examples, context)))

    def regress(
        self,
        model: str,
        examples: list[JsonExample],
        *,
        context: JsonExample | None = None,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> list[float]:
        """Run a regress signature on examples; one value per example."""
        servable = Servable(model, version, label, signature)
        return self._run(self._call(self._api.regress(servable, examples, context)))

    def model_status(
        self, model: str, *, version: int | None = None, label: str | None = None
    ) -> list[ModelVersionStatus]:
        """The state of each version the server knows (or of one version)."""
        return self._run(self._call(self._api.status(Servable(model, version, label))))

    def metadata(
        self, model: str, *, version: int | None = None, label: str | None = None
    ) -> ModelMetadata:
        """The signatures of the served version (latest unless a version or label is given)."""
        return self._run(self._metadata_plan(Servable(model, version, label)))

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_Base):
    """``Client`` for asyncio: the same arguments and methods, each a coroutine.

    ``transport`` is an ``httpx.AsyncBaseTransport``, ``channel`` a ``grpc.aio.Channel``.
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: Protocol | None = None,
        host: str | None = None,
        timeout: float = 30.0,
        retry: Retry = _DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(url, protocol, host, timeout, retry)
        self._transport: AsyncRestTransport | AsyncGrpcTransport
        if self.protocol == "grpc":
            self._transport = AsyncGrpcTransport(
                self._address, secure=self._secure, host=host, timeout=timeout, channel=channel
            )
        else:
            self._transport = AsyncRestTransport(
                self._address, host=host, timeout=timeout, transport=transport
            )

    async def _run(self, plan: Plan[R]) -> R:
        """``Client._run``, awaiting the transport and the waits."""
        reply: Any = None
        failure: ServingError | None = None
        while True:
            try:
                step = plan.throw(failure) if failure else plan.send(reply)
            except StopIteration as done:
                result: R = done.value
                return result
            reply, failure = None, None
            if not isinstance(step, Call):
                await asyncio.sleep(step)
                continue
            try:
                reply = step.parse(await self._transport.send(step.request))
            except ServingError as exc:
                failure = exc

    async def predict(
        self,
        model: str,
        inputs: Mapping[str, Any] | Any,
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, np.ndarray[Any, Any]]:
        """See ``Client.predict``."""
        return await self._run(self._predict(Servable(model, version, label, signature), inputs))

    async def predict_json(
        self,
        model: str,
        body: Mapping[str, Any],
        *,
        signature: str | None = None,
        version: int | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """See ``Client.predict_json``."""
        servable, sent = _json_servable(model, body, signature, version, label)
        return await self._run(self._predict_json(servable, sent))

    async def classify(
        self,
        model: str,
        examples: list[JsonExample],
        *,
        context: JsonExample | None = None,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> Classifications:
        """See ``Client.classify``."""
        servable = Servable(model, version, label, signature)
        return await self._run(self._call(self._api.classify(servable, examples, context)))

    async def regress(
        self,
        model: str,
        examples: list[JsonExample],
        *,
        context: JsonExample | None = None,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> list[float]:
        """See ``Client.regress``."""
        servable = Servable(model, version, label, signature)
        return await self._run(self._call(self._api.regress(servable, examples, context)))

    async def model_status(
        self, model: str, *, version: int | None = None, label: str | None = None
    ) -> list[ModelVersionStatus]:
        """See ``Client.model_status``."""
        return await self._run(self._call(self._api.status(Servable(model, version, label))))

    async def metadata(
        self, model: str, *, version: int | None = None, label: str | None = None
    ) -> ModelMetadata:
        """See ``Client.metadata``."""
        return await self._run(self._metadata_plan(Servable(model, version, label)))

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
