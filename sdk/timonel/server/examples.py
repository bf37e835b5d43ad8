"""Serialized tf.Examples for classify and regress, from JSON features or gRPC ``Input`` protos.

TF Serving feeds a classify/regress signature one string tensor of serialized Examples; with a
context (``example_list_with_context``) every example is the context merged with its own
features, the example winning on a name both have.
"""

from __future__ import annotations

from typing import Any

from tensorflow.core.example import example_pb2, feature_pb2

from timonel.codec.json_tensor import Example, ExampleInput
from timonel.errors import ServingError


def serialize_json_examples(examples: ExampleInput) -> list[bytes]:
    """Examples decoded from a REST body, serialized."""
    context = _example_proto(examples.context) if examples.context is not None else None
    return [_merged(context, _example_proto(example)) for example in examples.examples]


def serialize_input(proto: Any) -> list[bytes]:
    """Examples of a ``tensorflow.serving.Input`` (either kind of example list), serialized."""
    kind = proto.WhichOneof("kind")
    if kind == "example_list":
        examples = list(proto.example_list.examples)
        context = None
    elif kind == "example_list_with_context":
        examples = list(proto.example_list_with_context.examples)
        context = proto.example_list_with_context.context
    else:
        raise ServingError("Input is empty.", code="INVALID_ARGUMENT")
    if not examples:
        raise ServingError("Input is empty.", code="INVALID_ARGUMENT")
    return [_merged(context, example) for example in examples]


def _merged(context: Any, example: Any) -> bytes:
    if context is None:
        return bytes(example.SerializeToString())
    merged = example_pb2.Example()
    merged.CopyFrom(context)
    merged.MergeFrom(example)
    return bytes(merged.SerializeToString())


def _example_proto(features: Example) -> Any:
    proto = example_pb2.Example()
    feature_map = proto.features.feature
    for name, feature in features.items():
        value = feature_pb2.Feature()
        if feature.kind == "int64":
            value.int64_list.value.extend(feature.values)
        elif feature.kind == "float":
            value.float_list.value.extend(feature.values)
        else:
            value.bytes_list.value.extend(feature.values)
        feature_map[name].CopyFrom(value)
    return proto
