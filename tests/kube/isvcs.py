"""InferenceService objects as the API returns them, in the shapes KServe writes, for tests."""

from __future__ import annotations

import copy
from typing import Any

V1 = "gs://models/digits/v1"
V2 = "gs://models/digits/v2"


def isvc(
    *,
    uri: str = V1,
    percent: int | None = None,
    mode: str | None = None,
    generation: int = 1,
    observed: int | None = None,
    ready: bool = True,
    annotations: dict[str, str] | None = None,
    resource_version: str = "7",
    **spec: Any,
) -> dict[str, Any]:
    predictor: dict[str, Any] = {
        "model": {"modelFormat": {"name": "tensorflow"}, "storageUri": uri},
        **spec.pop("predictor", {}),
    }
    if percent is not None:
        predictor["canaryTrafficPercent"] = percent
    meta_annotations = dict(annotations or {})
    if mode:
        meta_annotations["serving.kserve.io/deploymentMode"] = mode
    obj: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "digits",
            "namespace": "ml",
            "generation": generation,
            "resourceVersion": resource_version,
            "annotations": meta_annotations,
        },
        "spec": {"predictor": predictor, **spec},
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "conditions": [
                {
                    "type": "PredictorReady",
                    "status": "True" if ready else "False",
                    # what KServe copies from a Deployment whose rollout is over
                    **(
                        {"reason": "NewReplicaSetAvailable"} if ready and mode == "Standard" else {}
                    ),
                },
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    **({} if ready else {"reason": "RevisionMissing", "message": "not yet"}),
                },
            ],
        },
    }
    return obj


def with_knative_status(
    obj: dict[str, Any],
    *,
    created: str,
    ready_revision: str,
    rolled_out: str | None,
    traffic: list[dict[str, Any]],
    previous: str | None = None,
) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    component: dict[str, Any] = {
        "latestCreatedRevision": created,
        "latestReadyRevision": ready_revision,
        "traffic": traffic,
        "url": "http://digits-predictor.ml.example.com",
    }
    if rolled_out:
        component["latestRolledoutRevision"] = rolled_out
    if previous:
        component["previousRolledoutRevision"] = previous
    out["status"]["components"] = {"predictor": component}
    out["status"]["url"] = "http://digits.ml.example.com"
    return out


def canary_70_30() -> dict[str, Any]:
    """A Knative-mode canary at 30%, as KServe reports it once the new revision is ready."""
    return with_knative_status(
        isvc(
            uri=V2, percent=30, generation=2, annotations={"timonel.dev/previous-storage-uri": V1}
        ),
        created="digits-predictor-00002",
        ready_revision="digits-predictor-00002",
        rolled_out="digits-predictor-00001",
        traffic=[
            {
                "latestRevision": True,
                "percent": 30,
                "revisionName": "digits-predictor-00002",
                "tag": "latest",
                "url": "http://latest-digits-predictor.ml.example.com",
            },
            {
                "latestRevision": False,
                "percent": 70,
                "revisionName": "digits-predictor-00001",
                "tag": "prev",
                "url": "http://prev-digits-predictor.ml.example.com",
            },
        ],
    )
