"""The patch formats the API server accepts, chosen by Content-Type as kube-apiserver does.

JSON merge patch (RFC 7386) is a few lines and written here; JSON patch (RFC 6902) comes from the
``jsonpatch`` package. Strategic merge patch is refused with 415 for custom resources, exactly as a
real server refuses it, because it needs Go struct tags that CRDs do not have.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from timonel.local.apiserver import statuses

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

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
