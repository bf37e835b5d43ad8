"""Validating an InferenceService as a cluster with KServe does: the CRD schema, then the webhook;
and a ConfigMap's keys as kube-apiserver does.

The schema is the project's (``timonel/kserve/schemas/inferenceservice.yaml``), checked by
``timonel.kserve.crd``; its violations become 422 Invalid with one cause per field, worded as the
API server's OpenAPI validation words them. The webhook is ``timonel.kserve.admission.admit``; its
denial becomes a 403 in the form kube-apiserver gives a validating webhook's answer.

A ConfigMap's ``data`` and ``binaryData`` keys are checked as ``ValidateConfigMap`` checks them
(``IsConfigMapKey`` in apimachinery's ``util/validation``: at most 253 characters of
``[-._a-zA-Z0-9]``, not ``.``, ``..`` or starting with ``..``; no key in both); its limit of
1 MiB in all is not checked here.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema

from timonel.errors import SpecError
from timonel.kserve import admission, schemas
from timonel.kserve.crd import Schema, field_path
from timonel.kube.resources import CONFIG_MAP, INFERENCE_SERVICE, Kind
from timonel.local.apiserver import statuses
from timonel.local.apiserver.statuses import FieldError

WEBHOOK = "inferenceservice.kserve-webhook-server.validator"

_JSON_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


@functools.cache
def _schema() -> Schema:
    return Schema(schemas.load("inferenceservice"))


def _value(value: Any) -> str:
    """A value as Go's ``field.Error`` prints it: strings quoted, numbers bare."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "object")


def _field_errors(error: jsonschema.ValidationError) -> list[FieldError]:
    path = field_path(error.absolute_path)
    where = path or "<root>"
    if error.validator == "required":
        missing = str(error.message).split("'")[1]
        return [
            FieldError(
                f"{path}.{missing}" if path else missing, "FieldValueRequired", "Required value"
            )
        ]
    if error.validator in ("type", "anyOf"):
        expected = (
            error.validator_value
            if error.validator == "type"
            else ",".join(s.get("type", "") for s in error.validator_value)
        )
        actual = _type_name(error.instance)
        return [
            FieldError(
                where,
                "FieldValueTypeInvalid",
                f'Invalid value: "{actual}": {where} in body must be of type '
                f'{expected}: "{actual}"',
            )
        ]
    if error.validator == "enum":
        allowed = ", ".join(_value(v) for v in error.validator_value)
        return [
            FieldError(
                where,
                "FieldValueNotSupported",
                f"Unsupported value: {_value(error.instance)}: supported values: {allowed}",
            )
        ]
    words = {
        "minimum": f"should be greater than or equal to {error.validator_value}",
        "maximum": f"should be less than or equal to {error.validator_value}",
        "pattern": f"should match '{error.validator_value}'",
    }
    detail = words.get(str(error.validator), error.message)
    return [
        FieldError(
            where,
            "FieldValueInvalid",
            f"Invalid value: {_value(error.instance)}: {where} in body {detail}",
        )
    ]


def check_schema(obj: dict[str, Any]) -> list[FieldError]:
    """Every field error the project's schema finds in ``obj``, in path order."""
    return [fe for error in _schema().violations(obj) for fe in _field_errors(error)]


_CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def config_map_key_errors(key: str) -> list[str]:
    """What ``IsConfigMapKey`` says of a key; nothing for a good one."""
    errors = []
    if len(key) > 253:
        errors.append("must be no more than 253 characters")
    if not _CONFIG_MAP_KEY.match(key):
        errors.append(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
            "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
            "'[-._a-zA-Z0-9]+')"
        )
    if key in (".", ".."):
        errors.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def check_config_map(obj: dict[str, Any]) -> list[FieldError]:
    """The field errors of a ConfigMap's keys, data's before binaryData's."""
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    found = []
    for where, keys in (("data", data), ("binaryData", binary)):
        for key in keys:
            messages = config_map_key_errors(key)
            if where == "data" and key in binary:
                messages.append("duplicate of key present in binaryData")
            found += [
                FieldError(
                    f"{where}[{key}]", "FieldValueInvalid", f"Invalid value: {_value(key)}: {m}"
                )
                for m in messages
            ]
    return found


def validate(kind: Kind, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """The registry's validator: schema (422), then KServe's webhook (403), for ISVCs; the keys
    (422) of ConfigMaps."""
    if kind is CONFIG_MAP:
        errors = check_config_map(new)
        if errors:
            raise statuses.invalid(kind, new["metadata"].get("name", ""), errors)
        return
    if kind is not INFERENCE_SERVICE:
        return
    name = new["metadata"].get("name", "")
    errors = check_schema(new)
    if errors:
        raise statuses.invalid(kind, name, errors)
    try:
        admission.admit(new, old=old)
    except SpecError as exc:
        details: dict[str, Any] = {}
        if exc.field:
            details["causes"] = [
                {"reason": "FieldValueForbidden", "message": str(exc), "field": exc.field}
            ]
        raise statuses.error(
            403, "Forbidden", f'admission webhook "{WEBHOOK}" denied the request: {exc}', details
        ) from exc
