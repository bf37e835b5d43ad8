"""The local controller's writes of Knative Services and Revisions, over the pure
``timonel.local.knative``.

Before it reconciles an InferenceService the controller reads its Knative Service
(``service``): its generation and traffic block are where the next ones continue from. After it
has reconciled, ``write`` makes the API hold what KServe and Knative would: the Service with the
spec KServe writes (the API server moves its generation when that spec changes) and the status
Knative reports, one Revision per revision with the status of its process, and no Revision the
outcome no longer has. ``delete`` removes them when the InferenceService goes or is stopped, as
Knative's owner references make the garbage collector do on a cluster.

Every write carries the field manager ``timonel.local.knative.WRITER``, the only one the local
API server accepts for these kinds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from timonel.errors import ApiError
from timonel.kube.client import Cluster
from timonel.kube.requests import (
    create_object,
    delete_object,
    get_object,
    list_objects,
    replace_object,
    replace_status,
)
from timonel.kube.resources import KNATIVE_REVISION, KNATIVE_SERVICE, Kind
from timonel.local.knative import (
    CONFIGURATION_LABEL,
    WRITER,
    revision_manifest,
    service_manifest,
)
from timonel.local.reconcile import Outcome, RevisionObservation, predictor_service_name


class KnativeObjects:
    """Reads and writes one cluster's Knative Services and Revisions for the controller."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def service(self, namespace: str, isvc: str) -> dict[str, Any] | None:
        """The InferenceService's Knative Service as last written; None when there is none."""
        try:
            return self._cluster.send(
                get_object(KNATIVE_SERVICE, namespace, predictor_service_name(isvc))
            )
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    def write(
        self,
        isvc: Mapping[str, Any],
        outcome: Outcome,
        observed: Mapping[str, RevisionObservation],
        *,
        replicas: Mapping[str, Sequence[RevisionObservation]],
        now: str,
    ) -> bool:
        """Write the Service and Revisions the outcome describes; True when one changed (a 409)
        or went (a 404: the garbage collector follows a deleted InferenceService) meanwhile, so
        the InferenceService is reconciled again on a fresh read.

        ``replicas``: the processes of each revision that has any (its desired replicas).
        Nothing is written when KServe would not have reached the Service (a spec it cannot
        reconcile), which then stays as it was.
        """
        if outcome.service_status is None or not outcome.revisions:
            return False
        metadata = isvc["metadata"]
        namespace, name = str(metadata.get("namespace") or "default"), str(metadata["name"])
        desired = service_manifest(isvc, outcome.revisions[-1], outcome.route)
        try:
            current = self.service(namespace, name)
            if current is None:
                service = self._cluster.send(create_object(desired, field_manager=WRITER))
            else:
                desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                service = self._cluster.send(replace_object(desired, field_manager=WRITER))
            if service.get("status") != outcome.service_status:
                service = self._cluster.send(
                    replace_status(
                        {**service, "status": outcome.service_status}, field_manager=WRITER
                    )
                )
            self._write_revisions(service, isvc, outcome, observed, replicas, now)
        except ApiError as exc:
            if exc.status.code in (404, 409):
                return True
            raise
        return False

    def _write_revisions(
        self,
        service: dict[str, Any],
        isvc: Mapping[str, Any],
        outcome: Outcome,
        observed: Mapping[str, RevisionObservation],
        replicas: Mapping[str, Sequence[RevisionObservation]],
        now: str,
    ) -> None:
        routed = {
            str(target.get("revisionName"))
            for target in (outcome.service_status or {}).get("traffic") or []
        }
        existing = {item["metadata"]["name"]: item for item in self._revisions(service["metadata"])}
        for revision in outcome.revisions:
            manifest = revision_manifest(
                service,
                isvc,
                revision,
                observed.get(revision.name, RevisionObservation()),
                routed=revision.name in routed,
                replicas=replicas.get(revision.name, ()),
                now=now,
            )
            status = manifest.pop("status")
            found = existing.pop(revision.name, None)
            if found is None:
                found = self._cluster.send(create_object(manifest, field_manager=WRITER))
            elif any(
                found["metadata"].get(key) != manifest["metadata"][key]
                for key in ("labels", "annotations")
            ):
                manifest["metadata"]["resourceVersion"] = found["metadata"]["resourceVersion"]
                found = self._cluster.send(replace_object(manifest, field_manager=WRITER))
            if found.get("status") != status:
                self._cluster.send(
                    replace_status({**found, "status": status}, field_manager=WRITER)
                )
        for gone in existing.values():
            self._delete(KNATIVE_REVISION, gone["metadata"])

    def delete(self, namespace: str, isvc: str) -> None:
        """Remove the InferenceService's Knative Service and Revisions (a 404 is no error)."""
        service = predictor_service_name(isvc)
        for revision in self._revisions({"namespace": namespace, "name": service}):
            self._delete(KNATIVE_REVISION, revision["metadata"])
        self._delete(KNATIVE_SERVICE, {"namespace": namespace, "name": service})

    def _revisions(self, service: Mapping[str, Any]) -> list[dict[str, Any]]:
        listing = self._cluster.send(
            list_objects(
                KNATIVE_REVISION,
                str(service["namespace"]),
                label_selector=f"{CONFIGURATION_LABEL}={service['name']}",
            )
        )
        return list(listing.get("items") or [])

    def _delete(self, kind: Kind, metadata: Mapping[str, Any]) -> None:
        try:
            self._cluster.send(
                delete_object(
                    kind, str(metadata["namespace"]), str(metadata["name"]), field_manager=WRITER
                )
            )
        except ApiError as exc:
            if exc.status.code != 404:
                raise
