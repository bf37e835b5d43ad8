"""An InferenceService in memory, moved by the real patches, with the status KServe writes.

``FakeTraffic`` applies ``timonel.kube.patches``' canary, promote and rollback patches as JSON
merge patches and then writes ``status.components.predictor.traffic`` as KServe's Knative
reconciler does (``KSERVE_FACTS.md`` §4): the latest revision at the canary percent, the last
rolled-out one at the rest with tag ``prev``, and the ``latest`` tag URL only with tag routing.
Each new storage URI makes a new revision. ``calls`` lists what the driver did; ``recorded`` is
the InferenceService's record (``timonel.kube.records``), the ConfigMap the driver writes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from timonel.kube import patches
from timonel.kube.records import record_annotations, record_manifest


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeTraffic:
    def __init__(self, storage_uri: str = "gs://repo/m/v1", name: str = "m") -> None:
        self.isvc: dict[str, Any] = {
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": "b5c4e0a2-0000-4000-8000-000000000001",
                "resourceVersion": "1",
                "annotations": {},
            },
            "spec": {"predictor": {"model": {"storageUri": storage_uri}}},
            "status": {},
        }
        self.revisions = [storage_uri]
        self.rolled_out = 0
        self.calls: list[tuple[Any, ...]] = []
        self.recorded: dict[str, Any] | None = None
        self._write_status()

    def revision(self, index: int) -> str:
        return f"{self.isvc['metadata']['name']}-predictor-{index + 1:05d}"

    def _write_status(self) -> None:
        meta, predictor = self.isvc["metadata"], self.isvc["spec"]["predictor"]
        uri = predictor["model"]["storageUri"]
        if uri not in self.revisions:
            self.revisions.append(uri)
        latest = self.revisions.index(uri)
        percent = predictor.get("canaryTrafficPercent")
        host = f"{meta['name']}-predictor.default.example.com"
        if percent is None or percent >= 100 or latest == self.rolled_out:
            self.rolled_out = latest
            traffic = [
                {"latestRevision": True, "percent": 100, "revisionName": self.revision(latest)}
            ]
        else:
            traffic = [
                {"latestRevision": True, "percent": percent, "revisionName": self.revision(latest)},
                {
                    "latestRevision": False,
                    "percent": 100 - percent,
                    "revisionName": self.revision(self.rolled_out),
                    "tag": "prev",
                    "url": f"http://prev-{host}",
                },
            ]
            if meta["annotations"].get("serving.kserve.io/enable-tag-routing") == "true":
                traffic[0].update(tag="latest", url=f"http://latest-{host}")
        self.isvc["status"] = {
            "conditions": [{"type": "Ready", "status": "True"}],
            "components": {"predictor": {"traffic": traffic}},
        }
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def _patch(self, patch: Mapping[str, Any]) -> None:
        patch = copy.deepcopy(dict(patch))
        patch["metadata"].pop("resourceVersion", None)
        merge(self.isvc, patch)
        self._write_status()

    def read(self) -> dict[str, Any]:
        return copy.deepcopy(self.isvc)

    def canary(self, storage_uri: str, percent: int, *, tag_routing: bool) -> None:
        self._patch(patches.canary_patch(self.isvc, storage_uri, percent, tag_routing=tag_routing))

    def split(self, storage_uri: str, percent: int) -> dict[str, Any]:
        self.calls.append(("split", percent))
        self.canary(storage_uri, percent, tag_routing=True)
        return self.read()

    def promote(self) -> None:
        self.calls.append(("promote",))
        self._patch(patches.promote_patch(self.isvc))

    def rollback(self) -> None:
        self.calls.append(("rollback",))
        self._patch(patches.rollback_patch(self.isvc))

    def record(self, annotations: Mapping[str, str] | None) -> None:
        self.recorded = None if annotations is None else record_manifest(self.isvc, annotations)

    @property
    def annotations(self) -> dict[str, str]:
        """What the record holds."""
        return record_annotations(self.recorded)
