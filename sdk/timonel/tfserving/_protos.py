"""Message classes for the TF Serving config protos that the tensorflow-serving-api wheel lacks.

The wheel ships ``model_server_config_pb2`` but not ``monitoring_config.proto``
(``config/monitoring_config.proto``), ``BatchingParameters``
(``servables/tensorflow/session_bundle_config.proto``) nor ``SSLConfig``
(``config/ssl_config.proto``). Their text files are still protos, so
rather than hand-writing a text parser we declare the same messages (same package, names, field
numbers and wrapper types as upstream) in a private descriptor pool and let protobuf's own
``text_format`` read and write them: comments, both ``f { value: 1 }`` and ``f: { value: 1 }``
spellings, and error positions behave exactly as for the protos that are in the wheel.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_PACKAGE = "tensorflow.serving"


@cache
def _pool() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    F = descriptor_pb2.FieldDescriptorProto
    optional, repeated = F.LABEL_OPTIONAL, F.LABEL_REPEATED

    def message(file: Any, name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        msg = file.message_type.add(name=name)
        for field_name, number, ftype, label, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package=_PACKAGE,
        syntax="proto3",
    )
    message(
        monitoring,
        "PrometheusConfig",
        [("enable", 1, F.TYPE_BOOL, optional, None), ("path", 2, F.TYPE_STRING, optional, None)],
    )
    message(
        monitoring,
        "MonitoringConfig",
        [("prometheus_config", 1, F.TYPE_MESSAGE, optional, f".{_PACKAGE}.PrometheusConfig")],
    )
    pool.Add(monitoring)

    int64 = ".google.protobuf.Int64Value"
    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message(
        batching,
        "BatchingParameters",
        [
            ("max_batch_size", 1, F.TYPE_MESSAGE, optional, int64),
            ("batch_timeout_micros", 2, F.TYPE_MESSAGE, optional, int64),
            ("max_enqueued_batches", 3, F.TYPE_MESSAGE, optional, int64),
            ("num_batch_threads", 4, F.TYPE_MESSAGE, optional, int64),
            ("thread_pool_name", 5, F.TYPE_MESSAGE, optional, ".google.protobuf.StringValue"),
            ("allowed_batch_sizes", 6, F.TYPE_INT64, repeated, None),
            ("pad_variable_length_inputs", 7, F.TYPE_BOOL, optional, None),
            (
                "enable_large_batch_splitting",
                8,
                F.TYPE_MESSAGE,
                optional,
                ".google.protobuf.BoolValue",
            ),
            ("max_execution_batch_size", 9, F.TYPE_MESSAGE, optional, int64),
        ],
    )
    pool.Add(batching)

    ssl = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/ssl_config.proto", package=_PACKAGE, syntax="proto3"
    )
    message(
        ssl,
        "SSLConfig",
        [
            ("server_key", 1, F.TYPE_STRING, optional, None),
            ("server_cert", 2, F.TYPE_STRING, optional, None),
            ("custom_ca", 3, F.TYPE_STRING, optional, None),
            ("client_verify", 4, F.TYPE_BOOL, optional, None),
        ],
    )
    pool.Add(ssl)
    return pool


def message_class(name: str) -> Any:
    """The class of ``tensorflow.serving.<name>`` (``MonitoringConfig``, ``BatchingParameters``,
    ``SSLConfig``)."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{_PACKAGE}.{name}"))
