"""Schemas the project writes for the Kubernetes objects it serves (data files beside this one)."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The schema ``<name>.yaml`` in this package, without its ``x-`` anchor definitions."""
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    schema = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {k: v for k, v in schema.items() if not k.startswith("x-")}
