"""KServe's model status bookkeeping, shared by the Knative-mode and Standard-mode reconcilers.

Pure: each function edits the ``status`` dict it is given, as KServe's ``ModelStatus`` methods in
``pkg/apis/serving/v1beta1/inference_service_status.go`` edit theirs.
"""

from __future__ import annotations

from typing import Any


def set_ready_copies(status: dict[str, Any], ready: int) -> None:
    """``modelStatus.copies``: KServe counts the ready pods (``omitempty``: none drops the key)."""
    copies = status.setdefault("modelStatus", {}).setdefault("copies", {"failedCopies": 0})
    copies.setdefault("failedCopies", 0)
    if ready:
        copies["totalCopies"] = ready
    else:
        copies.pop("totalCopies", None)


def update_model_state(status: dict[str, Any], state: str, info: dict[str, Any] | None) -> None:
    """KServe's ``UpdateModelRevisionStates``."""
    model_status = status.setdefault("modelStatus", {})
    states = model_status.setdefault("states", {"activeModelState": ""})
    states.setdefault("activeModelState", "")
    states["targetModelState"] = state
    if state in ("Pending", "Loading"):
        model_status["transitionStatus"] = "InProgress"
    elif state == "Loaded":
        model_status["transitionStatus"] = "UpToDate"
        states["activeModelState"] = "Loaded"
    elif state == "FailedToLoad":
        model_status["transitionStatus"] = "BlockedByFailedLoad"
    if info is not None:
        model_status["lastFailureInfo"] = info


def update_transition(status: dict[str, Any], transition: str, info: dict[str, Any]) -> None:
    """KServe's ``UpdateModelTransitionStatus``."""
    model_status = status.setdefault("modelStatus", {})
    model_status["transitionStatus"] = transition
    if transition == "InvalidSpec":
        states = model_status.setdefault("states", {"activeModelState": ""})
        states["targetModelState"] = "FailedToLoad"
    model_status["lastFailureInfo"] = info
