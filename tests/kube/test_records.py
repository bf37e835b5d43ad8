"""The record beside an InferenceService: a ConfigMap it owns, holding Timonel's annotations."""

from __future__ import annotations

from timonel.kube.records import (
    MIRROR_REVISION,
    isvc_of_record,
    record_annotations,
    record_manifest,
    record_name,
)

ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "digits", "namespace": "models", "uid": "u-1"},
}


def test_the_record_is_a_config_map_named_after_its_owner_and_owned_by_it() -> None:
    record = record_manifest(ISVC, {MIRROR_REVISION: "digits-predictor-00002"})
    assert record == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "digits-rollout",
            "namespace": "models",
            "annotations": {MIRROR_REVISION: "digits-predictor-00002"},
            "ownerReferences": [
                {
                    "apiVersion": "serving.kserve.io/v1beta1",
                    "kind": "InferenceService",
                    "name": "digits",
                    "uid": "u-1",
                    "controller": False,
                }
            ],
        },
    }
    assert record_name("digits") == "digits-rollout"
    assert isvc_of_record(record) == ("models", "digits")
    assert record_annotations(record) == {MIRROR_REVISION: "digits-predictor-00002"}


def test_other_config_maps_are_no_records() -> None:
    record = record_manifest(ISVC, {})
    renamed = {**record, "metadata": {**record["metadata"], "name": "settings"}}
    unowned = {**record, "metadata": {"name": "digits-rollout", "namespace": "models"}}
    assert isvc_of_record(renamed) is None
    assert isvc_of_record(unowned) is None
    assert record_annotations(None) == {}
