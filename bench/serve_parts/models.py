"""Builds the benchmark's SavedModels and the request each load generator sends.

Run in its own process (``python models.py OUTDIR``) so the driver never imports TensorFlow.
For each model it writes ``OUTDIR/<name>/1/`` (TF Serving's layout), ``<name>.json`` (a REST
body with one example) and ``<name>.pb`` (the same example as a serialized PredictRequest).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import tfmodels

from timonel.client._grpc import predict_request
from timonel.client._types import Servable

#: name → write_mlp sizes: digits-sized, and one whose matmuls dominate a request
MODELS = {
    "small": {"features": 64, "hidden": 128, "classes": 10},
    "large": {"features": 1024, "hidden": 4096, "classes": 100},
}


def build(out: Path) -> None:
    for name, sizes in MODELS.items():
        tfmodels.write_mlp(out / name / "1", **sizes)
        example = np.random.default_rng(0).random((1, sizes["features"]), np.float32)
        body = {"instances": [[round(float(v), 6) for v in example[0]]]}
        (out / f"{name}.json").write_text(json.dumps(body))
        request = predict_request(Servable(name), {"inputs": example})
        (out / f"{name}.pb").write_bytes(request.SerializeToString())


if __name__ == "__main__":
    build(Path(sys.argv[1]))
