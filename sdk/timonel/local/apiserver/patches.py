"""The patch formats the API server accepts, chosen by Content-Type as kube-apiserver does.

JSON merge patch (RFC 7386) is a few lines and written here; JSON patch (RFC 6902) comes from the
``jsonpatch`` package. Strategic merge patch is refused with 415 for custom resources, exactly as a
real server refuses it, because it needs Go struct tags that CRDs do not have. For the built-in
kinds (core v1: what ``kubectl patch`` and the ``kubernetes`` client send by default) it is a merge
patch whose lists in ``metadata`` merge as their struct tags say (``ownerReferences`` by ``uid``,
``finalizers`` as a set) and whose ``$patch: replace``/``delete`` directives on objects are
honoured. Where it differs: the lists of other fields (a Pod's ``containers`` by ``name``...) are
replaced whole, and the ``$setElementOrder``/``$retainKeys``/``$deleteFromPrimitiveList``
directives are not read; the server serves built-in kinds whose patches are maps (ConfigMaps) or
written by its own controller (Pods).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from timonel.kube.resources import Kind
from timonel.local.apiserver import statuses

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

#: API groups of Kubernetes' own kinds (besides ``*.k8s.io``), whose Go types carry patch tags.
_BUILT_IN_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy"})


def built_in(kind: Kind) -> bool:
    """Whether a kind is Kubernetes' own (it takes strategic merge patches), not a CRD's."""
    return kind.group in _BUILT_IN_GROUPS or kind.group.endswith(".k8s.io")


#: What a custom resource accepts, in the order the real server lists them in its 415 message.
CUSTOM_RESOURCE_PATCHES = [JSON_PATCH, MERGE, APPLY]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """A strategic merge patch on a built-in kind; see the module docstring for its reach."""
    if not isinstance(patch, dict):
        if path == ("metadata", "ownerReferences") and isinstance(target, list):
            return _merge_by_key(target, patch, "uid")
        if path == ("metadata", "finalizers") and isinstance(target, list):
            return [*target, *(item for item in patch or [] if item not in target)]
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {key: value for key, value in patch.items() if key != "$patch"}
    if directive == "replace":
        return copy.deepcopy(body)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in body.items():
        merged = None if value is None else strategic(result.get(key), value, (*path, key))
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _merge_by_key(target: list[Any], patch: Any, key: str) -> list[Any]:
    """A list of objects merged by their key: a patched item merges into the one with its key,
    ``$patch: delete`` removes it, a new key is appended."""
    result = [copy.deepcopy(item) for item in target]
    for item in patch if isinstance(patch, list) else []:
        at = [
            i
            for i, old in enumerate(result)
            if isinstance(old, dict) and old.get(key) == item.get(key)
        ]
        if item.get("$patch") == "delete":
            result = [old for i, old in enumerate(result) if i not in at]
        elif at:
            result[at[0]] = strategic(result[at[0]], item)
        else:
            result.append({k: v for k, v in item.items() if k != "$patch"})
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 operations; a malformed patch is 400, one that cannot apply is 422."""
    if not isinstance(operations, list):
        raise statuses.bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    try:
        patch = jsonpatch.JsonPatch(operations)
    except jsonpatch.InvalidJsonPatch as exc:
        raise statuses.bad_request(str(exc)) from exc
    try:
        result = patch.apply(target)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise statuses.error(422, "Invalid", str(exc)) from exc
    if not isinstance(result, dict):
        raise statuses.error(
            422, "Invalid", "the patch replaced the whole object with a non-object"
        )
    return result
