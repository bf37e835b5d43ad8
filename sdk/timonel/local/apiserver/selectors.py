"""Label and field selectors in the syntax of ``?labelSelector=`` and ``?fieldSelector=``.

Hand-written because no maintained Python package parses Kubernetes selectors; the grammar is
apimachinery's (``k8s.io/apimachinery/pkg/labels``): ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x)``, ``a`` (exists) and ``!a``, joined by commas. Field selectors allow only the
equality forms, on ``metadata.name`` and ``metadata.namespace``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from timonel.local.apiserver import statuses

Selector = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQUALITY = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_./-]*)\s*$")


def _split(selector: str) -> list[str]:
    """Split on the commas that are not inside an ``in (...)`` value list."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    match = _EQUALITY.match(text)
    if match:
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    match = _SET.match(text)
    if match:
        negated, key, op, values = match.groups()
        if op:
            if negated:
                raise ValueError(text)
            wanted = {v.strip() for v in values.split(",")}
            if op == "in":
                return lambda labels: labels.get(key) in wanted
            return lambda labels: labels.get(key) not in wanted
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ValueError(text)


def label_selector(selector: str | None) -> Selector:
    """A predicate on objects for a label selector; an empty selector matches everything."""
    if not selector:
        return lambda obj: True
    try:
        requirements = [_requirement(part) for part in _split(selector)]
    except ValueError as exc:
        raise statuses.bad_request(
            f"unable to parse requirement: found '{exc}', expected: a label selector "
            "like 'app=web', 'tier in (a,b)' or '!canary'"
        ) from exc

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda obj: obj["metadata"].get("name", ""),
    "metadata.namespace": lambda obj: obj["metadata"].get("namespace", ""),
}


def _field_test(
    get: Callable[[dict[str, Any]], str], value: str, *, negated: bool
) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (get(obj) == value) != negated


def field_selector(selector: str | None) -> Selector:
    """A predicate for a field selector on ``metadata.name``/``metadata.namespace``."""
    if not selector:
        return lambda obj: True
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split(selector):
        match = _EQUALITY.match(part)
        if not match:
            raise statuses.bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        key, op, value = match.groups()
        if key not in _FIELDS:
            raise statuses.bad_request(f"field label not supported: {key}")
        tests.append(_field_test(_FIELDS[key], value, negated=op == "!="))
    return lambda obj: all(test(obj) for test in tests)
