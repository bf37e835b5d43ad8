"""Request bodies in Kubernetes' protobuf encoding, for the few built-in kinds kubectl sends so.

kubectl 1.37's typed clients (``kubectl create namespace``, ``kubectl delete namespace``,
``kubectl auth can-i``) send built-in kinds as ``application/vnd.kubernetes.protobuf`` and do not
fall back to JSON on 415 (client-go retries in JSON only after a refused CBOR body), so the
server must read protobuf for them. Answers still go out as JSON: kubectl's ``Accept`` lists
``application/json`` after protobuf, and it decodes by the response's Content-Type.

The body is ``k8s\\x00`` followed by a ``runtime.Unknown`` whose ``raw`` field holds the object
(``k8s.io/apimachinery/pkg/runtime/generated.proto``). protobuf's own ``UnknownFieldSet`` splits
the wire format; the schemas below name the fields kubectl sets, with the numbers of the vendored
``generated.proto`` files (``k8s.io/api/core/v1``, ``k8s.io/api/authorization/v1``,
``k8s.io/apimachinery/pkg/apis/meta/v1``). Empty strings and messages are dropped, as Go's JSON
encoding omits them, so the decoded object reads as the same object sent as JSON would.
"""

from __future__ import annotations

from typing import Any, Union

from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from timonel.local.apiserver import statuses

#: The Content-Type of Kubernetes' protobuf encoding.
PROTOBUF = "application/vnd.kubernetes.protobuf"

_MAGIC = b"k8s\x00"

#: A field's JSON name and how its value reads: a scalar type, a map of strings, a list of
#: strings, or a nested message's schema.
Field = tuple[str, Union[str, "Schema"]]
Schema = dict[int, Field]

_TIME: Schema = {1: ("seconds", "int"), 2: ("nanos", "int")}
_OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    14: ("finalizers", "strings"),
}
NAMESPACE: Schema = {
    1: ("metadata", _OBJECT_META),
    2: ("spec", {1: ("finalizers", "strings")}),
}
_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
}
SELF_SUBJECT_ACCESS_REVIEW: Schema = {
    1: ("metadata", _OBJECT_META),
    2: (
        "spec",
        {
            1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
            2: ("nonResourceAttributes", {1: ("path", "string"), 2: ("verb", "string")}),
        },
    ),
}
DELETE_OPTIONS: Schema = {
    1: ("gracePeriodSeconds", "int"),
    2: ("preconditions", {1: ("uid", "string"), 2: ("resourceVersion", "string")}),
    3: ("orphanDependents", "bool"),
    4: ("propagationPolicy", "string"),
    5: ("dryRun", "strings"),
}
_UNKNOWN: Schema = {
    1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")}),
    2: ("raw", "bytes"),
}


def decode(body: bytes, schema: Schema) -> dict[str, Any]:
    """The object in a protobuf request body, as its JSON form; 400 when it is not one."""
    if not body.startswith(_MAGIC):
        raise statuses.bad_request(
            "the protobuf body does not start with the Kubernetes envelope prefix k8s\\x00; "
            "send the object as application/json"
        )
    try:
        envelope = _message(body[len(_MAGIC) :], _UNKNOWN)
        obj = _message(envelope.get("raw", b""), schema)
    except (DecodeError, UnicodeDecodeError, ValueError) as exc:
        raise statuses.bad_request(f"the protobuf body could not be decoded: {exc}") from exc
    type_meta = envelope.get("typeMeta", {})
    return {**type_meta, **obj}


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    holder = empty_pb2.Empty()
    holder.ParseFromString(data)
    obj: dict[str, Any] = {}
    for field in UnknownFieldSet(holder):
        if field.field_number not in schema:
            continue
        name, shape = schema[field.field_number]
        if isinstance(shape, dict):
            value: Any = _message(field.data, shape)
        elif shape == "map":
            entry = _message(field.data, {1: ("key", "string"), 2: ("value", "string")})
            obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
            continue
        elif shape == "strings":
            obj.setdefault(name, []).append(field.data.decode())
            continue
        elif shape == "string":
            value = field.data.decode()
        elif shape == "bool":
            value = bool(field.data)
        else:  # int (a varint) or bytes: as the wire format gives them
            value = field.data
        if value not in ("", {}):
            obj[name] = value
    return obj
