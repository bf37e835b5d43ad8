"""Predict, classify and regress, shared by the REST and gRPC front ends.

A request names a model (and maybe a version or label) and a signature; this module resolves the
servable, holds it while the call runs (so an unload waits for it), checks the signature, prepares
the session call as a ``Job`` and runs it through the runner (direct or batched), recording runtime
metrics. Both front ends await jobs on the event loop: REST with ``--rest_api_timeout_in_ms``,
gRPC with the time left of the client's deadline, as TF Serving does. The front ends only
translate their wire formats and error codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from timonel.errors import ServingError
from timonel.server.access_log import AccessLog
from timonel.server.manager import ModelManager
from timonel.server.metrics import ServerMetrics
from timonel.server.runner import Runner
from timonel.server.servable import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    Call,
    Servable,
    Signature,
    classification_results,
    example_endpoints,
    regression_results,
)
from timonel.signatures import DEFAULT_SIGNATURE

T = TypeVar("T")
#: A classify result (``(label, score)`` per class, per example) or a regress result.
ExampleResult = list[list[tuple[str, float]]] | list[float]


@dataclass(frozen=True)
class ModelSpec:
    """What a request asks for: model name, and at most one of version and label."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


@dataclass(frozen=True)
class ExampleTask:
    """A checked task of a MultiInference request: its signature and method, the input tensor
    it reads the serialized Examples from, and its outputs (tensor names and aliases)."""

    signature: Signature
    method: str
    feed: str
    fetches: tuple[str, ...]
    aliases: tuple[str, ...]


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
        self,
        manager: ModelManager,
        runner: Runner,
        metrics: ServerMetrics,
        *,
        access_log: AccessLog | None = None,
    ) -> None:
        self.manager = manager
        self.runner = runner
        self.metrics = metrics
        self.access_log = access_log

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

    def multi_inference(
        self, servable: Servable, tasks: Sequence[ExampleTask], examples: Sequence[bytes]
    ) -> Job[list[ExampleResult]]:
        """Several classify/regress tasks on the same Examples, answered by one session call
        that feeds the Examples to every task's input (TF2 signatures each have their own) and
        fetches the union of their outputs (TF Serving's MultiInference,
        ``PerformOneShotTensorComputation``)."""
        fetches = tuple(sorted({name for task in tasks for name in task.fetches}))
        batch = np.array(list(examples), dtype=object)
        feeds = dict.fromkeys(sorted({task.feed for task in tasks}), batch)
        call = Call(feeds, fetches, fetches)

        def answer(values: list[np.ndarray]) -> list[ExampleResult]:
            self.metrics.record_examples(servable.name, len(examples))
            by_tensor = dict(zip(fetches, values, strict=True))
            results: list[ExampleResult] = []
            for task in tasks:
                outputs = {
                    alias: by_tensor[name]
                    for alias, name in zip(task.aliases, task.fetches, strict=True)
                }
                if task.method == CLASSIFY_METHOD:
                    results.append(classification_results(outputs, len(examples)))
                else:
                    results.append(regression_results(outputs, len(examples)))
            return results

        return Job(servable, call, "MultiInference", answer)

    async def run(self, job: Job[T], timeout_ms: int) -> T:
        """Run a job from the event loop; a ``timeout_ms`` of 0 means none."""
        start = time.perf_counter()
        values = await self.runner.run(job.servable, job.call, timeout_ms)
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
        if self.access_log is not None:
            self.access_log.add(
                {**fields, "model": model, "status": code, "latency_ms": round(elapsed_us / 1e3, 3)}
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


def check_tasks(servable: Servable, tasks: Sequence[tuple[str, str, str]]) -> list[ExampleTask]:
    """MultiInference tasks, each ``(model name, signature name, method name)``, checked in TF
    Serving's order and words (``servables/tensorflow/multi_inference.cc``)."""
    model = ""
    checked: list[ExampleTask] = []
    for name, signature_name, method in tasks:
        if not name:
            raise _invalid("Found ModelSpec with an empty model name.")
        if model and name != model:
            raise _invalid(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        model = name
        key = signature_key(signature_name)
        if any(task.signature.key == key for task in checked):
            raise _invalid(f"Duplicate evaluation of signature: {key}")
        signature = servable.signatures.get(key)
        if signature is None:
            raise _invalid(f"Requested signature not found in model graph: {key}")
        if method not in (CLASSIFY_METHOD, REGRESS_METHOD):
            raise ServingError(f"Unsupported signature method_name: {method}", code="UNIMPLEMENTED")
        feed, fetches, aliases = example_endpoints(signature, method, servable.check_method_name)
        checked.append(ExampleTask(signature, method, feed, fetches, aliases))
    return checked


def _invalid(message: str) -> ServingError:
    return ServingError(message, code="INVALID_ARGUMENT")


def example_signature(servable: Servable, name: str) -> Signature:
    """The signature a classify or regress request names."""
    key = signature_key(name)
    signature = servable.signatures.get(key)
    if signature is None:
        raise ServingError(f"No signature was found with the name: {key}", code="INVALID_ARGUMENT")
    return signature
