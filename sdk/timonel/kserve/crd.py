"""Custom resource schemas (a CRD's ``openAPIV3Schema``) checked with jsonschema.

One place sets up the validator and names the field of each violation, for the two users:

* the local API server validates InferenceServices against the project's schema
  (``timonel.kserve.schemas``) and turns each violation into a Kubernetes field cause;
* tests prove that what Timonel renders fits KServe's real CRD. A CRD loaded with ``load_crd``
  is made strict first (``strict``): an API server prunes every field a structural schema does
  not name, so here such a field is an error instead of something a cluster would silently drop.

Field paths are written as Kubernetes writes them: ``spec.canary[0].predictor.minReplicas``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: The ObjectMeta fields a manifest may carry; the API server validates metadata itself, so a
#: CRD says only ``type: object`` for it.
_OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "generateName": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def field_path(parts: Iterable[str | int]) -> str:
    """A path into an object as Kubernetes prints it (``spec.canary[0].predictor``); ``""`` for
    the object itself."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def strict(schema: Any, *, root: bool = True) -> Any:
    """The schema with every field it does not name made an error (pruning would drop it), and
    the root ``metadata`` checked as ObjectMeta."""
    if isinstance(schema, list):
        return [strict(item, root=False) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value, root=False) for key, value in schema.items()}
    if root and "metadata" in out.get("properties", {}):
        out["properties"]["metadata"] = copy.deepcopy(_OBJECT_META)
    if (
        out.get("type") == "object"
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


class Schema:
    """An ``openAPIV3Schema`` as a jsonschema validator (Draft 7 unless it names another)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        self._validator = validator(schema)

    @classmethod
    def from_crd(cls, crd: Mapping[str, Any], version: str) -> Schema:
        """The strict schema of one version of a CustomResourceDefinition document."""
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        return cls(strict(versions[version]["schema"]["openAPIV3Schema"]))

    @classmethod
    @functools.cache
    def load_crd(cls, path: str | Path, version: str = "v1beta1") -> Schema:
        """Read a CRD file once per process (the InferenceService CRD is 2 MB of YAML)."""
        with open(path, encoding="utf-8") as handle:
            crd = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return cls.from_crd(crd, version)

    def violations(self, obj: Mapping[str, Any]) -> list[jsonschema.ValidationError]:
        """Every violation in ``obj``, in field-path order."""
        found = self._validator.iter_errors(obj)
        return sorted(found, key=lambda e: ([str(p) for p in e.absolute_path], e.message))

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        """Every violation as ``path: message`` (``<root>`` for the object itself)."""
        return [
            f"{field_path(e.absolute_path) or '<root>'}: {e.message}" for e in self.violations(obj)
        ]
