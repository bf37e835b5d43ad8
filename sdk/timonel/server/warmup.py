"""Warmup at load: replay a version's ``assets.extra/tf_serving_warmup_requests``.

TF Serving runs every record (Predict, Classify, Regress, MultiInference) through the freshly
loaded session before the version turns AVAILABLE, so TF's lazy initialisation happens before
live traffic; any failure fails the load. Records are read (and their limits checked) by
``timonel.tfserving.read_warmup``; this module only replays them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from timonel.codec.tensor_proto import request_inputs
from timonel.errors import ServingError
from timonel.server.examples import serialize_input
from timonel.server.inference import example_signature, predict_signature
from timonel.server.servable import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    Servable,
    classification_results,
    regression_results,
)


def replay_warmup(servable: Servable, logs: Sequence[Any], iterations: int = 1) -> int:
    """Run each PredictionLog's request ``iterations`` times (``--num_request_iterations_for_
    warmup``) against ``servable``; returns how many records there were."""
    for log in [log for _ in range(max(1, iterations)) for log in logs]:
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            _predict(servable, log.predict_log.request)
        elif kind == "classify_log":
            request = log.classify_log.request
            _examples(servable, request.model_spec.signature_name, request.input, CLASSIFY_METHOD)
        elif kind == "regress_log":
            request = log.regress_log.request
            _examples(servable, request.model_spec.signature_name, request.input, REGRESS_METHOD)
        elif kind == "multi_inference_log":
            request = log.multi_inference_log.request
            for task in request.tasks:
                _examples(servable, task.model_spec.signature_name, request.input, task.method_name)
        else:
            number = log.DESCRIPTOR.fields_by_name[kind].number if kind else 0
            raise ServingError(f"Unsupported log_type for warmup: {number}", code="UNIMPLEMENTED")
    return len(logs)


def _predict(servable: Servable, request: Any) -> None:
    signature = predict_signature(servable, request.model_spec.signature_name, rest=False)
    call = servable.prepare_predict(
        signature, request_inputs(request.inputs), list(request.output_filter)
    )
    servable.run(call.feeds, call.fetches)


def _examples(servable: Servable, signature_name: str, input_proto: Any, method: str) -> None:
    signature = example_signature(servable, signature_name)
    examples = serialize_input(input_proto)
    call = servable.prepare_examples(signature, examples, method)
    outputs = dict(zip(call.aliases, servable.run(call.feeds, call.fetches), strict=True))
    if method == CLASSIFY_METHOD:
        classification_results(outputs, len(examples))
    elif method == REGRESS_METHOD:
        regression_results(outputs, len(examples))
    else:
        raise ServingError(f"Unsupported signature method_name: {method}", code="UNIMPLEMENTED")
