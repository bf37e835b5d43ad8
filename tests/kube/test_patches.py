"""Canary, promote and rollback are each one merge patch computed from the current object."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.errors import ReleaseError, SpecError
from timonel.kserve.vocabulary import TAG_ROUTING
from timonel.kube.patches import (
    PREVIOUS_STORAGE_URI,
    canary_patch,
    promote_patch,
    rollback_patch,
    with_previous,
)

from .isvcs import V1, V2, isvc

V3 = "gs://models/digits/v3"
RV = {"resourceVersion": "7"}


def remember(uri: str) -> dict[str, Any]:
    return {**RV, "annotations": {PREVIOUS_STORAGE_URI: uri}}


# --- Knative mode: spec.predictor.canaryTrafficPercent ---------------------------------------


@pytest.mark.parametrize(
    ("current", "uri", "percent", "patch"),
    [
        pytest.param(
            isvc(),
            V2,
            30,
            {
                "metadata": remember(V1),
                "spec": {"predictor": {"model": {"storageUri": V2}, "canaryTrafficPercent": 30}},
            },
            id="new canary: URI and percent together, the served URI remembered",
        ),
        pytest.param(
            isvc(uri=V2, percent=30, annotations={PREVIOUS_STORAGE_URI: V1}),
            V2,
            60,
            {
                "metadata": RV,
                "spec": {"predictor": {"model": {"storageUri": V2}, "canaryTrafficPercent": 60}},
            },
            id="same canary: only the percent moves",
        ),
        pytest.param(
            isvc(uri=V2, percent=30, annotations={PREVIOUS_STORAGE_URI: V1}),
            V3,
            10,
            {
                "metadata": remember(V1),
                "spec": {"predictor": {"model": {"storageUri": V3}, "canaryTrafficPercent": 10}},
            },
            id="replaced canary: the stable URI is still the one remembered",
        ),
        pytest.param(
            isvc(percent=100),
            V2,
            5,
            {
                "metadata": remember(V1),
                "spec": {"predictor": {"model": {"storageUri": V2}, "canaryTrafficPercent": 5}},
            },
            id="percent left at 100 counts as no canary",
        ),
    ],
)
def test_knative_canary(current, uri, percent, patch) -> None:
    assert canary_patch(current, uri, percent) == patch


def test_knative_canary_turns_tag_routing_on_in_the_same_update_when_asked() -> None:
    on = {TAG_ROUTING: "true"}
    assert canary_patch(isvc(), V2, 0, tag_routing=True)["metadata"]["annotations"] == {
        PREVIOUS_STORAGE_URI: V1,
        **on,
    }
    assert canary_patch(isvc(annotations=on), V2, 0, tag_routing=True)["metadata"] == remember(V1)
    assert TAG_ROUTING not in canary_patch(isvc(), V2, 0)["metadata"]["annotations"]


def test_knative_canary_keeps_a_tensorflow_predictor() -> None:
    current = isvc()
    current["spec"]["predictor"] = {"tensorflow": {"storageUri": V1}}
    assert canary_patch(current, V2, 50)["spec"] == {
        "predictor": {"tensorflow": {"storageUri": V2}, "canaryTrafficPercent": 50}
    }


def test_knative_promote_removes_the_percent() -> None:
    current = isvc(uri=V2, percent=30, annotations={PREVIOUS_STORAGE_URI: V1})
    assert promote_patch(current) == {
        "metadata": RV,
        "spec": {"predictor": {"canaryTrafficPercent": None}},
    }


def test_knative_rollback_during_a_canary_sets_zero() -> None:
    current = isvc(uri=V2, percent=30, annotations={PREVIOUS_STORAGE_URI: V1})
    assert rollback_patch(current) == {
        "metadata": RV,
        "spec": {"predictor": {"canaryTrafficPercent": 0}},
    }


def test_rollback_after_a_promotion_returns_to_the_previous_release() -> None:
    current = isvc(uri=V2, annotations={PREVIOUS_STORAGE_URI: V1})
    assert rollback_patch(current) == {
        "metadata": remember(V2),
        "spec": {"predictor": {"model": {"storageUri": V1}}},
    }


# --- Standard mode: spec.canary[] ------------------------------------------------------------


def standard_canary(uri: str = V2, percent: int = 20, name: str = "canary-1") -> dict[str, Any]:
    return isvc(
        mode="Standard",
        annotations={PREVIOUS_STORAGE_URI: V1},
        canary=[
            {
                "predictor": {
                    "name": name,
                    "model": {
                        "name": "kserve-container",
                        "modelFormat": {"name": "tensorflow"},
                        "storageUri": uri,
                    },
                },
                "trafficPercent": percent,
            }
        ],
    )


def test_standard_canary_adds_one_entry_with_the_stable_model_and_the_new_uri() -> None:
    assert canary_patch(isvc(mode="Standard"), V2, 20) == {
        "metadata": remember(V1),
        "spec": {
            "canary": [
                {
                    "predictor": {
                        "name": "canary-1",
                        "model": {
                            "modelFormat": {"name": "tensorflow"},
                            "storageUri": V2,
                            "name": "kserve-container",
                        },
                    },
                    "trafficPercent": 20,
                }
            ]
        },
    }


def test_standard_canary_step_only_changes_the_percent() -> None:
    patch = canary_patch(standard_canary(), V2, 50)
    assert patch["metadata"] == RV
    assert patch["spec"]["canary"][0]["trafficPercent"] == 50
    assert patch["spec"]["canary"][0]["predictor"]["name"] == "canary-1"


def test_standard_canary_names_never_repeat_the_stable_one() -> None:
    current = isvc(mode="Standard", predictor={"name": "canary-1"})
    assert canary_patch(current, V2, 10)["spec"]["canary"][0]["predictor"]["name"] == "canary-2"


def test_standard_promote_makes_the_canary_the_stable_predictor() -> None:
    assert promote_patch(standard_canary()) == {
        "metadata": remember(V1),
        "spec": {
            "predictor": {
                "name": "canary-1",
                "model": {"modelFormat": {"name": "tensorflow"}, "storageUri": V2},
            },
            "canary": [],
        },
    }


def test_standard_rollback_during_a_canary_empties_the_list() -> None:
    assert rollback_patch(standard_canary()) == {"metadata": RV, "spec": {"canary": []}}


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [-1, 101, 12.5, True])
def test_percent_out_of_range(percent) -> None:
    with pytest.raises(SpecError) as caught:
        canary_patch(isvc(), V2, percent)
    assert str(caught.value) == (
        f"canary traffic percent {percent!r} is out of range; expected an integer from 0 to 100 "
        "(the share of requests the new model receives)"
    )
    assert caught.value.field == "spec.predictor.canaryTrafficPercent"


@pytest.mark.parametrize("mode", [None, "Standard"])
def test_a_canary_of_the_served_model_is_refused(mode) -> None:
    with pytest.raises(SpecError) as caught:
        canary_patch(isvc(mode=mode), V1, 30)
    assert str(caught.value) == (
        f"ml/digits already serves {V1} to all traffic; a canary needs a different storage URI "
        "(the new release to try)"
    )


@pytest.mark.parametrize("mode", [None, "Standard"])
def test_promote_without_a_canary_is_refused(mode) -> None:
    with pytest.raises(ReleaseError) as caught:
        promote_patch(isvc(mode=mode))
    assert str(caught.value) == (
        "ml/digits has no canary to promote; start one with "
        "`timonel canary digits --storage-uri URI --percent P`"
    )


def test_rollback_without_a_previous_release_is_refused() -> None:
    with pytest.raises(ReleaseError) as caught:
        rollback_patch(isvc())
    assert str(caught.value) == (
        f"ml/digits has no previous release to roll back to: it has only served {V1}; deploy or "
        "canary another release first"
    )


# --- deploy remembers what it replaces --------------------------------------------------------


def test_with_previous() -> None:
    manifest = isvc(uri=V2)
    del manifest["status"]
    assert with_previous(manifest, None) is manifest
    replaced = with_previous(manifest, isvc(uri=V1))
    assert replaced["metadata"]["annotations"] == {PREVIOUS_STORAGE_URI: V1}
    assert manifest["metadata"]["annotations"] == {}, "the input is not modified"
    again = with_previous(manifest, isvc(uri=V2, annotations={PREVIOUS_STORAGE_URI: V1}))
    assert again["metadata"]["annotations"] == {PREVIOUS_STORAGE_URI: V1}, "kept on re-apply"
    assert with_previous(manifest, isvc(uri=V2)) is manifest
