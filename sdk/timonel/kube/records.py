"""What Timonel records beside an InferenceService: a ConfigMap of its own, ``<isvc>-rollout``.

An unfinished rollout's progress (``timonel.dev/rollout``) and the shadow phase's mirror settings
(``timonel.dev/mirror-revision``, ``timonel.dev/mirror-percent``) cannot be annotations of the
InferenceService: KServe copies its annotations into the Knative revision template (all but
``ServiceAnnotationDisallowedList``, ``pkg/constants/constants.go``, and the keys the
``inferenceservice`` ConfigMap adds; ``components/predictor.go``), so every write would make a
new revision, and on a cluster a new pod. A ConfigMap feeds no template.

The record is a ConfigMap in the InferenceService's namespace, named ``<isvc>-rollout``, holding
the settings as annotations under the names above (a ConfigMap's data keys may not contain
``/``; the annotations keep the names Timonel always used). It is owned by the InferenceService
(an ownerReference with ``controller: false``; no ``blockOwnerDeletion``, which would need
``update`` on the owner's finalizers), so Kubernetes' garbage collector deletes it with its owner.

``record_manifest`` and ``record_annotations`` are pure; ``read_record`` and ``write_record``
send the requests (``get``; server-side apply, which may create; ``delete``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from timonel.errors import ApiError
from timonel.kube.client import Cluster
from timonel.kube.requests import apply_object, delete_object, get_object
from timonel.kube.resources import CONFIG_MAP, INFERENCE_SERVICE

#: The annotation holding an unfinished rollout's state (JSON, ``timonel.rollouts.state``).
ROLLOUT_STATE = "timonel.dev/rollout"
#: The annotation naming the revision that gets a copy of the requests (mirroring).
MIRROR_REVISION = "timonel.dev/mirror-revision"
#: The share of requests, 0..100, that are mirrored (100 when only the revision is given).
MIRROR_PERCENT = "timonel.dev/mirror-percent"

_SUFFIX = "-rollout"


def record_name(isvc: str) -> str:
    """The name of the ConfigMap recorded beside InferenceService ``isvc``."""
    return f"{isvc}{_SUFFIX}"


def record_manifest(isvc: Mapping[str, Any], annotations: Mapping[str, str]) -> dict[str, Any]:
    """The record of ``isvc`` holding ``annotations``, owned by it."""
    metadata = isvc["metadata"]
    return {
        "apiVersion": CONFIG_MAP.api_version,
        "kind": CONFIG_MAP.kind,
        "metadata": {
            "name": record_name(metadata["name"]),
            "namespace": metadata.get("namespace") or "default",
            "annotations": dict(annotations),
            "ownerReferences": [
                {
                    "apiVersion": INFERENCE_SERVICE.api_version,
                    "kind": INFERENCE_SERVICE.kind,
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": False,
                }
            ],
        },
    }


def record_annotations(record: Mapping[str, Any] | None) -> dict[str, str]:
    """What a record holds; nothing when there is none."""
    if record is None:
        return {}
    return dict((record.get("metadata") or {}).get("annotations") or {})


def isvc_of_record(config_map: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the InferenceService a ConfigMap is the record of; None for any
    other ConfigMap."""
    metadata = config_map.get("metadata") or {}
    for owner in metadata.get("ownerReferences") or []:
        if (
            owner.get("apiVersion") == INFERENCE_SERVICE.api_version
            and owner.get("kind") == INFERENCE_SERVICE.kind
            and record_name(str(owner.get("name"))) == metadata.get("name")
        ):
            return str(metadata.get("namespace") or "default"), str(owner["name"])
    return None


def read_record(cluster: Cluster, namespace: str, isvc: str) -> dict[str, Any] | None:
    """The record of ``isvc``, or None when it has none."""
    try:
        return cluster.send(get_object(CONFIG_MAP, namespace, record_name(isvc)))
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


def write_record(
    cluster: Cluster, isvc: Mapping[str, Any], annotations: Mapping[str, str] | None
) -> None:
    """Make ``isvc``'s record hold exactly ``annotations``; None deletes the record."""
    metadata = isvc["metadata"]
    namespace = metadata.get("namespace") or "default"
    if annotations is not None:
        cluster.send(apply_object(record_manifest(isvc, annotations)))
        return
    try:
        cluster.send(delete_object(CONFIG_MAP, namespace, record_name(metadata["name"])))
    except ApiError as exc:
        if exc.status.code != 404:
            raise
