"""The merge patches that move traffic: canary, promote, rollback, in both KServe modes.

Each function reads the InferenceService as it is now and returns the one merge patch that makes
the change, so a canary's new storage URI and its percentage land in the same update (two
updates would briefly send the percentage to the wrong model). Every patch carries the
``resourceVersion`` it was computed from: the server refuses it with 409 if the object changed in
between, and the caller recomputes it from a fresh read.

Knative mode (``spec.predictor.canaryTrafficPercent``):
    canary    new storageUri + percent P; the previous rolled-out revision keeps 100-P (tag prev)
    promote   percent removed: the latest revision takes 100%
    rollback  during a canary: percent 0, all traffic back on the previous revision at once;
              after a promotion: the storage URI goes back to the previous release

Standard mode (``spec.canary[]``, which KServe only weights through a Gateway API HTTPRoute):
    canary    one ``spec.canary`` entry named after the rollout step, with the new storage URI
    promote   the stable predictor takes the canary's name and model; ``spec.canary`` emptied
    rollback  during a canary: ``spec.canary`` emptied; after a promotion: as in Knative mode

The storage URI that was serving before a canary is kept in the ``PREVIOUS_STORAGE_URI``
annotation; that is what "back to the previous release" returns to (and a second rollback
returns to where the first one started).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from timonel.errors import ReleaseError, SpecError
from timonel.kserve.vocabulary import CONTAINER_NAME, TAG_ROUTING
from timonel.kube.status import deployment_mode, implementation, predictor_storage_uri

#: The storage URI that served before the current rollout: where ``rollback`` goes back to.
PREVIOUS_STORAGE_URI = "timonel.dev/previous-storage-uri"

_CANARY_NAME = re.compile(r"^canary-(\d+)$")


def check_percent(percent: int) -> int:
    """KServe does not range-check canaryTrafficPercent (Knative rejects it later): we do."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise SpecError(
            f"canary traffic percent {percent!r} is out of range; expected an integer from 0 "
            "to 100 (the share of requests the new model receives)",
            field="spec.predictor.canaryTrafficPercent",
        )
    return percent


def in_canary(isvc: dict[str, Any]) -> bool:
    """Whether a canary is in progress (including one rolled back to 0% and not yet replaced)."""
    spec = isvc.get("spec", {})
    if deployment_mode(isvc) == "Standard":
        return bool(spec.get("canary"))
    percent = spec.get("predictor", {}).get("canaryTrafficPercent")
    return percent is not None and int(percent) < 100


def _base(isvc: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": isvc["metadata"]["resourceVersion"]}}


def _remember(patch: dict[str, Any], storage_uri: str | None) -> None:
    patch["metadata"]["annotations"] = {PREVIOUS_STORAGE_URI: storage_uri}


def _stable_uri(isvc: dict[str, Any]) -> str | None:
    """The storage URI of what is rolled out now, the one a rollback returns to."""
    spec = isvc.get("spec", {})
    if deployment_mode(isvc) == "Knative" and in_canary(isvc):
        # Knative keeps the old model only as a revision; its URI is what we remembered.
        previous = isvc["metadata"].get("annotations", {}).get(PREVIOUS_STORAGE_URI)
        return previous if isinstance(previous, str) else None
    return predictor_storage_uri(spec.get("predictor", {}))


def _name(isvc: dict[str, Any]) -> str:
    meta = isvc["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")


def _next_canary_name(isvc: dict[str, Any]) -> str:
    """``canary-N``, never the stable predictor's name (KServe rejects that) nor a reused one."""
    spec = isvc.get("spec", {})
    taken = [spec.get("predictor", {}).get("name") or ""]
    taken += [c.get("predictor", {}).get("name") or "" for c in spec.get("canary") or []]
    numbers = [int(m.group(1)) for m in map(_CANARY_NAME.match, taken) if m]
    return f"canary-{max(numbers, default=0) + 1}"


def canary_patch(
    isvc: dict[str, Any], storage_uri: str, percent: int, *, tag_routing: bool = False
) -> dict[str, Any]:
    """Send ``percent`` of the traffic to the model at ``storage_uri``, the rest to the stable one.

    Called again with the same URI during a canary, it only moves the percentage (a progressive
    step); with a new URI it replaces the canary's model. ``tag_routing`` turns KServe's tag
    routing on in the same update (Knative mode), since KServe copies the annotation into the
    revision template: written on its own it would make one more revision.
    """
    check_percent(percent)
    spec = isvc.get("spec", {})
    predictor = spec.get("predictor", {})
    key = implementation(predictor)
    patch = _base(isvc)
    if deployment_mode(isvc) == "Standard":
        canaries = spec.get("canary") or []
        current = canaries[0] if canaries else None
        if current and predictor_storage_uri(current.get("predictor", {})) == storage_uri:
            entry = copy.deepcopy(current)
            entry["trafficPercent"] = percent
        else:
            if predictor_storage_uri(predictor) == storage_uri:
                raise _same_model(isvc, storage_uri)
            model = copy.deepcopy(predictor[key])
            model["storageUri"] = storage_uri
            model["name"] = CONTAINER_NAME  # the CRD requires it on a canary, refuses it on stable
            entry = {
                "predictor": {"name": _next_canary_name(isvc), key: model},
                "trafficPercent": percent,
            }
            _remember(patch, predictor_storage_uri(predictor))
        patch["spec"] = {"canary": [entry]}
        return patch
    serving = predictor_storage_uri(predictor)
    if serving == storage_uri and not in_canary(isvc):
        raise _same_model(isvc, storage_uri)
    if serving != storage_uri:
        _remember(patch, _stable_uri(isvc))
    annotations = isvc["metadata"].get("annotations") or {}
    if tag_routing and annotations.get(TAG_ROUTING) != "true":
        patch["metadata"].setdefault("annotations", {})[TAG_ROUTING] = "true"
    patch["spec"] = {
        "predictor": {key: {"storageUri": storage_uri}, "canaryTrafficPercent": percent}
    }
    return patch


def _same_model(isvc: dict[str, Any], storage_uri: str) -> SpecError:
    return SpecError(
        f"{_name(isvc)} already serves {storage_uri} to all traffic; a canary needs a different "
        "storage URI (the new release to try)",
        field="storageUri",
    )


def promote_patch(isvc: dict[str, Any]) -> dict[str, Any]:
    """Give the canary all the traffic and make it the stable predictor."""
    if not in_canary(isvc):
        raise ReleaseError(
            f"{_name(isvc)} has no canary to promote; start one with "
            f"`timonel canary {isvc['metadata']['name']} --storage-uri URI --percent P`"
        )
    patch = _base(isvc)
    if deployment_mode(isvc) == "Standard":
        predictor = isvc["spec"]["predictor"]
        canary = isvc["spec"]["canary"][0]["predictor"]
        key = implementation(canary, where="spec.canary[0].predictor")
        _remember(patch, predictor_storage_uri(predictor))
        model = {field: value for field, value in canary[key].items() if field != "name"}
        patch["spec"] = {"predictor": {"name": canary["name"], key: model}, "canary": []}
        return patch
    patch["spec"] = {"predictor": {"canaryTrafficPercent": None}}
    return patch


def rollback_patch(isvc: dict[str, Any]) -> dict[str, Any]:
    """Send all traffic back to the previous model.

    During a canary this only moves traffic (the old revision is still running, so it is
    instant); after a promotion it redeploys the previous release's storage URI.
    """
    patch = _base(isvc)
    spec = isvc.get("spec", {})
    if in_canary(isvc):
        if deployment_mode(isvc) == "Standard":
            patch["spec"] = {"canary": []}
        else:
            patch["spec"] = {"predictor": {"canaryTrafficPercent": 0}}
        return patch
    previous = isvc["metadata"].get("annotations", {}).get(PREVIOUS_STORAGE_URI)
    predictor = spec.get("predictor", {})
    current = predictor_storage_uri(predictor)
    if not previous or previous == current:
        raise ReleaseError(
            f"{_name(isvc)} has no previous release to roll back to: it has only served "
            f"{current}; deploy or canary another release first"
        )
    _remember(patch, current)
    patch["spec"] = {"predictor": {implementation(predictor): {"storageUri": previous}}}
    return patch


def as_canary(manifest: dict[str, Any], percent: int) -> dict[str, Any]:
    """The manifest whose new revision takes ``percent`` of the traffic (Knative mode)."""
    check_percent(percent)
    if deployment_mode(manifest) == "Standard":
        raise SpecError(
            f"{_name(manifest)} runs in Standard mode, where a canary is a second predictor; "
            f"use `timonel canary {manifest['metadata']['name']} --storage-uri URI --percent "
            f"{percent}` instead of deploying with a canary percent",
            field="spec.canary",
        )
    out = copy.deepcopy(manifest)
    out["spec"]["predictor"]["canaryTrafficPercent"] = percent
    return out


def with_previous(manifest: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest to apply, remembering the storage URI it replaces (for ``rollback``).

    Nothing is added on a first deploy or when the storage URI does not change, so re-applying
    the same manifest stays a no-op.
    """
    if current is None:
        return manifest
    served = _stable_uri(current)
    new = predictor_storage_uri(manifest.get("spec", {}).get("predictor", {}))
    kept = current["metadata"].get("annotations", {}).get(PREVIOUS_STORAGE_URI)
    remembered = served if served and served != new else kept
    if not remembered:
        return manifest
    out = copy.deepcopy(manifest)
    out["metadata"].setdefault("annotations", {})[PREVIOUS_STORAGE_URI] = remembered
    return out
