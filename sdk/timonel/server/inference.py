"""Predict, classify and regress, shared by the REST and gRPC front ends.

A request names a model (and maybe a version or label) and a signature; this module resolves the
servable, holds it while the call runs (so an unload waits for it), checks the signature, prepares
the session call as a ``Job`` and runs it through the runner (direct or batched), recording runtime
metrics. REST runs jobs on the event loop (``run``); gRPC handlers run them from their own threads
(``run_blocking``). The front ends only translate their wire formats and error codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
T = TypeVar("T")


@dataclass(frozen=True)
class ModelSpec:
    """What a request asks for: model name, and at most one of version and label."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


@dataclass(frozen=True)
class Job(Generic[T]):
    """A checked request: the session call that answers it, and how its outputs become the
    answer (``api`` names it in the runtime metrics)."""

    servable: Servable
    call: Call
    api: str
    answer: Callable[[list[np.ndarray]], T]


class Inference:
    """The request path from a ModelSpec to TensorFlow and back."""

    def __init__(
        self, manager: ModelManager, runner: Runner, metrics: ServerMetrics, *, timeout_ms: int = 0
    ) -> None:
        self.manager = manager
        self.runner = runner
        self.metrics = metrics
        self.timeout_ms = timeout_ms

    @contextmanager
    def servable(self, spec: ModelSpec) -> Iterator[Servable]:
        """The servable a spec resolves to, held for the duration of the block."""
        servable = self.manager.resolve(spec.name, spec.version, spec.label)
        servable.acquire()
        try:
            yield servable
        finally:
            servable.release()

    def predict(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> Job[dict[str, np.ndarray]]:
        call = servable.prepare_predict(signature, inputs, output_filter)
        return Job(servable, call, "Predict", lambda values: _named(call, values))

    def classify(
        self, servable: Servable, signature: Signature, examples: Sequence[bytes]
    ) -> Job[list[list[tuple[str, float]]]]:
        call = servable.prepare_examples(signature, examples, CLASSIFY_METHOD)

        def answer(values: list[np.ndarray]) -> list[list[tuple[str, float]]]:
            self.metrics.record_examples(servable.name, len(examples))
            return classification_results(_named(call, values), len(examples))

        return Job(servable, call, "Classify", answer)

    def regress(
        self, servable: Servable, signature: Signature, examples: Sequence[bytes]
    ) -> Job[list[float]]:
        call = servable.prepare_examples(signature, examples, REGRESS_METHOD)

        def answer(values: list[np.ndarray]) -> list[float]:
            self.metrics.record_examples(servable.name, len(examples))
            return regression_results(_named(call, values), len(examples))

        return Job(servable, call, "Regress", answer)

    async def run(self, job: Job[T]) -> T:
        """Run a job from the event loop."""
        start = time.perf_counter()
        values = await self.runner.run(job.servable, job.call, self.timeout_ms)
        return self._answer(job, values, start)

    def run_blocking(self, job: Job[T]) -> T:
        """Run a job from a thread other than the event loop's, blocking it."""
        start = time.perf_counter()
        values = self.runner.run_blocking(job.servable, job.call, self.timeout_ms)
        return self._answer(job, values, start)

    def _answer(self, job: Job[T], values: list[np.ndarray], start: float) -> T:
        elapsed_us = (time.perf_counter() - start) * 1e6
        self.metrics.record_runtime(job.servable.name, job.api, elapsed_us)
        return job.answer(values)

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


def _named(call: Call, values: list[np.ndarray]) -> dict[str, np.ndarray]:
    return dict(zip(call.aliases, values, strict=True))


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
