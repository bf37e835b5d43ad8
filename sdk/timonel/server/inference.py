"""Predict, classify and regress, shared by the REST and gRPC front ends.

A request names a model (and maybe a version or label) and a signature; this module resolves the
servable, holds it while the call runs (so an unload waits for it), checks the signature, runs the
session call through the runner (direct or batched) and records runtime metrics. The front ends
only translate their wire formats and error codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from timonel.errors import ServingError
from timonel.server.manager import ModelManager
from timonel.server.metrics import ServerMetrics
from timonel.server.runner import Runner
from timonel.server.servable import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD,
    Call,
    Servable,
    Signature,
    classification_results,
    regression_results,
)

access_log = logging.getLogger("timonel.server.access")


@dataclass(frozen=True)
class ModelSpec:
    """What a request asks for: model name, and at most one of version and label."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


@dataclass(frozen=True)
class Prediction:
    servable: Servable
    signature_name: str
    outputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class Classification:
    servable: Servable
    signature_name: str
    results: list[list[tuple[str, float]]]


@dataclass(frozen=True)
class Regression:
    servable: Servable
    signature_name: str
    results: list[float]


class Inference:
    """The request path from a ModelSpec to TensorFlow and back."""

    def __init__(
        self, manager: ModelManager, runner: Runner, metrics: ServerMetrics, *, timeout_ms: int = 0
    ) -> None:
        self.manager = manager
        self.runner = runner
        self.metrics = metrics
        self.timeout_ms = timeout_ms

    @asynccontextmanager
    async def servable(self, spec: ModelSpec) -> AsyncIterator[Servable]:
        """The servable a spec resolves to, held for the duration of the block."""
        servable = self.manager.resolve(spec.name, spec.version, spec.label)
        servable.acquire()
        try:
            yield servable
        finally:
            servable.release()

    async def predict(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        call = servable.prepare_predict(signature, inputs, output_filter)
        values = await self._run(servable, call, "Predict")
        return dict(zip(call.aliases, values, strict=True))

    async def classify(
        self, servable: Servable, signature: Signature, examples: Sequence[bytes]
    ) -> list[list[tuple[str, float]]]:
        call = servable.prepare_examples(signature, examples, CLASSIFY_METHOD)
        values = await self._run(servable, call, "Classify")
        self.metrics.record_examples(servable.name, len(examples))
        return classification_results(dict(zip(call.aliases, values, strict=True)), len(examples))

    async def regress(
        self, servable: Servable, signature: Signature, examples: Sequence[bytes]
    ) -> list[float]:
        call = servable.prepare_examples(signature, examples, REGRESS_METHOD)
        values = await self._run(servable, call, "Regress")
        self.metrics.record_examples(servable.name, len(examples))
        return regression_results(dict(zip(call.aliases, values, strict=True)), len(examples))

    def finished(
        self,
        start: float,
        *,
        model: str,
        api: str,
        entrypoint: str,
        code: str,
        counted: bool = True,
        **fields: Any,
    ) -> None:
        """One request answered (``start`` from ``time.perf_counter``): its request metrics, when
        ``counted``, and its access-log line with the front end's ``fields``."""
        elapsed_us = (time.perf_counter() - start) * 1e6
        if counted:
            self.metrics.record_request(model, api, entrypoint, code, elapsed_us)
        if access_log.isEnabledFor(logging.INFO):
            entry = {**fields, "model": model, "status": code}
            access_log.info(
                "", extra={"fields": {**entry, "latency_ms": round(elapsed_us / 1e3, 3)}}
            )

    async def _run(self, servable: Servable, call: Call, api: str) -> list[np.ndarray]:
        start = time.perf_counter()
        values = await self.runner.run(servable, call, self.timeout_ms)
        self.metrics.record_runtime(servable.name, api, (time.perf_counter() - start) * 1e6)
        return values


def signature_key(name: str) -> str:
    return name or DEFAULT_SIGNATURE


def predict_signature(servable: Servable, name: str, *, rest: bool) -> Signature:
    """The signature a predict request names; REST and gRPC word a missing one differently."""
    key = signature_key(name)
    signature = servable.signatures.get(key)
    if signature is None:
        if rest:
            raise ServingError(
                f'Serving signature name: "{key}" not found in signature def',
                code="INVALID_ARGUMENT",
            )
        raise ServingError(f'Serving signature key "{key}" not found.', code="FAILED_PRECONDITION")
    return signature


def example_signature(servable: Servable, name: str) -> Signature:
    """The signature a classify or regress request names."""
    key = signature_key(name)
    signature = servable.signatures.get(key)
    if signature is None:
        raise ServingError(f"No signature was found with the name: {key}", code="INVALID_ARGUMENT")
    return signature
