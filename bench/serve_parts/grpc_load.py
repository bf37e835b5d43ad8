"""A closed-loop gRPC load generator in its own process: N callers, each waiting for its reply.

Sends one pre-serialized ``PredictRequest`` as raw bytes over ``grpc.aio`` (no per-call proto
work), so the generator costs as little CPU as a Python process can. Prints one JSON line:
requests, errors, seconds, p50/p99 latency in ms.
Run: ``python grpc_load.py TARGET REQUEST_FILE CONCURRENCY SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc
import numpy as np

METHOD = "/tensorflow.serving.PredictionService/Predict"


async def main(target: str, request: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)
        await call(request, timeout=30)  # connect before the clock starts
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal errors
            while (start := time.perf_counter()) < deadline:
                try:
                    await call(request, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


if __name__ == "__main__":
    target, path, concurrency, seconds = sys.argv[1:5]
    with open(path, "rb") as file:
        body = file.read()
    print(json.dumps(asyncio.run(main(target, body, int(concurrency), float(seconds)))))
