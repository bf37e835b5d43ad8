"""Strategic merge patches on built-in kinds, as far as the local API server takes them."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.kube.resources import CONFIG_MAP, INFERENCE_SERVICE, POD
from timonel.local.apiserver.patches import built_in, strategic

OWNED: dict[str, Any] = {
    "metadata": {
        "name": "cm",
        "finalizers": ["a"],
        "ownerReferences": [{"uid": "1", "name": "one"}, {"uid": "2", "name": "two"}],
    },
    "data": {"k": "v", "gone": "x"},
}


@pytest.mark.parametrize(
    ("patch", "result"),
    [
        pytest.param(
            {"data": {"k": "w", "gone": None}},
            {**OWNED, "data": {"k": "w"}},
            id="maps merge and null deletes, as a merge patch",
        ),
        pytest.param(
            {"metadata": {"ownerReferences": [{"uid": "2", "name": "renamed"}, {"uid": "3"}]}},
            {
                **OWNED,
                "metadata": {
                    **OWNED["metadata"],
                    "ownerReferences": [
                        {"uid": "1", "name": "one"},
                        {"uid": "2", "name": "renamed"},
                        {"uid": "3"},
                    ],
                },
            },
            id="ownerReferences merge by uid",
        ),
        pytest.param(
            {"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]}},
            {
                **OWNED,
                "metadata": {**OWNED["metadata"], "ownerReferences": [{"uid": "2", "name": "two"}]},
            },
            id="$patch delete removes a list item by its key",
        ),
        pytest.param(
            {"metadata": {"finalizers": ["a", "b"]}},
            {**OWNED, "metadata": {**OWNED["metadata"], "finalizers": ["a", "b"]}},
            id="finalizers merge as a set",
        ),
        pytest.param(
            {"data": {"$patch": "replace", "only": "this"}},
            {**OWNED, "data": {"only": "this"}},
            id="$patch replace replaces a map",
        ),
    ],
)
def test_a_strategic_merge_patch(patch: dict[str, Any], result: dict[str, Any]) -> None:
    assert strategic(OWNED, patch) == result


def test_only_kubernetes_own_kinds_take_strategic_merge_patches() -> None:
    assert built_in(CONFIG_MAP) and built_in(POD)
    assert not built_in(INFERENCE_SERVICE)
