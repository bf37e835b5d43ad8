"""Status conditions with the semantics of Knative's ``apis.ConditionSet`` (knative.dev/pkg).

KServe's InferenceService and Knative's Service both keep their conditions through this manager:
one *happy* condition (``Ready``) that follows a fixed list of *dependents*, every other condition
informational (``severity: Info``). How a mark on one condition moves the happy one decides what
``kubectl get isvc`` shows, so the local controller reproduces the rules exactly rather than
approximating them:

- ``mark_true(t)`` sets ``t``; the happy condition turns True only when every dependent is True,
  and is otherwise left as it was.
- ``mark_false(t)`` sets ``t`` and, when ``t`` is a dependent, the happy condition, with the same
  reason and message.
- ``mark_unknown(t)`` sets ``t``; if some dependent is already False the happy condition is made
  False (with this reason) unless it is False already; otherwise a dependent ``t`` makes the happy
  condition Unknown with its reason.
- ``lastTransitionTime`` changes only when status, reason, message or severity change; the list
  stays sorted by type.

Conditions are the plain dicts of the Kubernetes JSON (``type``, ``status``, ``severity``,
``lastTransitionTime``, ``reason``, ``message``; empty fields omitted). Nothing here reads a clock:
the caller passes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"

#: Severity of every condition that is neither the happy one nor a dependent.
INFO = "Info"

Condition = dict[str, Any]


@dataclass(frozen=True)
class ConditionSet:
    """A happy condition and the conditions it depends on (Knative's ``NewLivingConditionSet``)."""

    happy: str
    dependents: tuple[str, ...]

    def severity(self, condition_type: str) -> str:
        return "" if condition_type == self.happy or condition_type in self.dependents else INFO

    def manage(self, conditions: list[Condition], now: str) -> ConditionManager:
        return ConditionManager(self, conditions, now)


class ConditionManager:
    """Edits one condition list in place, stamping changes with ``now``."""

    def __init__(self, condition_set: ConditionSet, conditions: list[Condition], now: str) -> None:
        self._set = condition_set
        self._conditions = conditions
        self._now = now

    def get(self, condition_type: str) -> Condition | None:
        for condition in self._conditions:
            if condition.get("type") == condition_type:
                return condition
        return None

    def status_of(self, condition_type: str) -> str:
        """The status of a condition; a missing one counts as Unknown, as in Knative."""
        condition = self.get(condition_type)
        return str(condition.get("status", UNKNOWN)) if condition else UNKNOWN

    def is_true(self, condition_type: str) -> bool:
        return self.status_of(condition_type) == TRUE

    def is_happy(self) -> bool:
        return self.is_true(self._set.happy)

    def initialize(self) -> None:
        """Add the happy condition and the dependents as Unknown when they are missing."""
        for condition_type in (self._set.happy, *self._set.dependents):
            if self.get(condition_type) is None:
                self._put(condition_type, UNKNOWN, "", "")

    def mark_true(self, condition_type: str) -> None:
        self.mark_true_with_reason(condition_type, "", "")

    def mark_true_with_reason(self, condition_type: str, reason: str, message: str) -> None:
        self._put(condition_type, TRUE, reason, message)
        if all(self.is_true(dependent) for dependent in self._set.dependents):
            self._put(self._set.happy, TRUE, "", "")

    def mark_false(self, condition_type: str, reason: str, message: str = "") -> None:
        self._put(condition_type, FALSE, reason, message)
        if condition_type in self._set.dependents:
            self._put(self._set.happy, FALSE, reason, message)

    def mark_unknown(self, condition_type: str, reason: str, message: str = "") -> None:
        self._put(condition_type, UNKNOWN, reason, message)
        for dependent in self._set.dependents:
            if self.status_of(dependent) == FALSE:
                if self.status_of(self._set.happy) != FALSE:
                    self._put(self._set.happy, FALSE, reason, message)
                return
        if condition_type in self._set.dependents:
            self._put(self._set.happy, UNKNOWN, reason, message)

    def mark(self, condition_type: str, status: str, reason: str = "", message: str = "") -> None:
        """Copy a condition's status onto ``condition_type`` (KServe's ``SetCondition``)."""
        if status == TRUE:
            self.mark_true(condition_type)
        elif status == FALSE:
            self.mark_false(condition_type, reason, message)
        else:
            self.mark_unknown(condition_type, reason, message)

    def remove(self, condition_type: str) -> None:
        existing = self.get(condition_type)
        if existing is not None:
            self._conditions.remove(existing)

    def mark_info(self, condition_type: str, status: str, reason: str, message: str) -> None:
        """Set an informational condition with its reason kept even when True."""
        self._put(condition_type, status, reason, message)

    def _put(self, condition_type: str, status: str, reason: str, message: str) -> None:
        new: Condition = {"type": condition_type, "status": status}
        severity = self._set.severity(condition_type)
        if severity:
            new["severity"] = severity
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        existing = self.get(condition_type)
        if existing is not None:
            same = all(existing.get(key, "") == new.get(key, "") for key in _COMPARED)
            if same:
                return
            self._conditions.remove(existing)
        new["lastTransitionTime"] = self._now
        self._conditions.append(new)
        self._conditions.sort(key=lambda condition: str(condition.get("type", "")))


_COMPARED = ("status", "reason", "message", "severity")
