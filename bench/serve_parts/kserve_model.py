"""KServe's own Python model server around a SavedModel: the peer ``bench/serve.py`` measures.

Written as a KServe user writes one (``kserve.Model`` with a synchronous ``predict``, V1
protocol, ``kserve.ModelServer`` defaults), so the comparison is with what people deploy.
Run: ``python kserve_model.py --model_name NAME --model_dir DIR --http_port PORT``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import tensorflow as tf

import kserve


class SavedModelPredictor(kserve.Model):
    """Calls the SavedModel's ``serving_default`` on V1 ``instances``."""

    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.load()

    def load(self) -> bool:
        self.function = tf.saved_model.load(self.model_dir).signatures["serving_default"]
        [(self.input_name, spec)] = self.function.structured_input_signature[1].items()
        self.input_dtype = spec.dtype.as_numpy_dtype
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
        inputs = np.asarray(payload["instances"], dtype=self.input_dtype)
        outputs = self.function(**{self.input_name: tf.constant(inputs)})
        [output] = outputs.values()
        return {"predictions": output.numpy().tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = SavedModelPredictor(args.model_name, args.model_dir)
    kserve.ModelServer(enable_grpc=False).start([model])
