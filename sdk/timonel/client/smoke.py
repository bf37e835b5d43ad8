"""A smoke test of a served model: the same inputs over REST and over gRPC, the same answers.

What a deploy pipeline checks before it moves traffic: both APIs clients use answer, agree with
each other, and how long each took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from timonel.client._client import Client
from timonel.errors import ServingError


@dataclass(frozen=True)
class SmokeReport:
    """Seconds each protocol took for one predict call."""

    rest_seconds: float
    grpc_seconds: float


def smoke_test(
    model: str,
    instances: Any,
    *,
    rest_url: str,
    grpc_target: str,
    host: str | None = None,
    timeout: float = 30.0,
) -> SmokeReport:
    """Predict ``instances`` over REST at ``rest_url`` and gRPC at ``grpc_target`` (host:port).

    ``host`` is the Host header (an ingress gateway routes by it). A ServingError when either
    call fails or their outputs differ beyond float rounding.
    """
    inputs = np.asarray(instances)
    started = time.perf_counter()
    with Client(rest_url, host=host, timeout=timeout) as rest:
        by_rest = rest.predict(model, inputs)
    middle = time.perf_counter()
    with Client(f"grpc://{grpc_target}", host=host, timeout=timeout) as grpc:
        by_grpc = grpc.predict(model, inputs)
    ended = time.perf_counter()
    for name, value in by_rest.items():
        other = by_grpc.get(name)
        if other is None or not np.allclose(value, other, atol=1e-6, equal_nan=True):
            raise ServingError(
                f"model {model}: output {name!r} differs between REST ({rest_url}) and gRPC "
                f"({grpc_target}); the two ports serve different models or versions: check "
                "that both reach the same revision"
            )
    return SmokeReport(rest_seconds=middle - started, grpc_seconds=ended - middle)
