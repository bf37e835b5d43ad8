"""The limit: the SavedModel called in this process by N threads, no network, no serialization.

First prints ``{"rss_bytes": ...}``, the resident memory of TensorFlow with the model loaded
(after one call), the baseline for the serving processes' RSS. Then reads ``THREADS SECONDS``
lines on stdin and answers each with a JSON line of the point it measured, so the driver can
take points between the servers' all through a run, while the model stays loaded.
Run: ``python inprocess.py MODEL_DIR FEATURES``.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np
import psutil
import tensorflow as tf


def run(
    function: object, inputs: dict[str, object], threads: int, seconds: float
) -> dict[str, float]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    deadline = time.perf_counter() + seconds

    def caller(mine: list[float]) -> None:
        while (start := time.perf_counter()) < deadline:
            function(**inputs)  # type: ignore[operator]
            mine.append(time.perf_counter() - start)

    workers = [threading.Thread(target=caller, args=(mine,)) for mine in latencies]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    ms = np.concatenate([np.array(x) for x in latencies]) * 1000
    return {
        "requests": int(ms.size),
        "errors": 0,
        "seconds": elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


if __name__ == "__main__":
    model_dir, features = sys.argv[1:]
    function = tf.saved_model.load(model_dir).signatures["serving_default"]
    [(name, spec)] = function.structured_input_signature[1].items()
    inputs = {name: tf.constant(np.random.default_rng(0).random((1, int(features)), np.float32))}
    function(**inputs)
    print(json.dumps({"rss_bytes": psutil.Process().memory_info().rss}), flush=True)
    for line in sys.stdin:
        threads, seconds = line.split()
        run(function, inputs, int(threads), 1.0)  # warm the threads up
        print(json.dumps(run(function, inputs, int(threads), float(seconds))), flush=True)
