"""Which versions a model should serve, and the next load or unload to get there. Pure.

``aspired_versions`` applies a ``model_version_policy`` (latest N, all, specific) to the versions
found on disk. ``next_action`` is TF Serving's AvailabilityPreservingPolicy
(``core/availability_preserving_policy.cc``): a new version loads before the old one unloads,
and the last serving version is never unloaded while its replacement is not serving, so a
version that fails to load leaves the previous one in service.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from timonel.tfserving import VersionPolicy


class State(enum.Enum):
    """A version's state, named as ``ModelVersionStatus.State``."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


class Action(enum.Enum):
    LOAD = "load"
    UNLOAD = "unload"


@dataclass(frozen=True)
class VersionSnapshot:
    """What the policy needs to know about one version the manager tracks."""

    version: int
    state: State
    aspired: bool


def aspired_versions(policy: VersionPolicy, on_disk: Iterable[int]) -> set[int]:
    """The versions ``policy`` asks for among those found under the base path."""
    found = set(on_disk)
    if policy.kind == "all":
        return found
    if policy.kind == "specific":
        return found & set(policy.versions)
    return set(sorted(found)[-policy.num_versions :]) if found else set()


def next_action(versions: Sequence[VersionSnapshot]) -> tuple[Action, int] | None:
    """The one load or unload to do next, or None when the model is where it should be."""
    aspired = [v for v in versions if v.aspired]
    aspired_serving = any(v.state is State.AVAILABLE for v in aspired)
    unaspired_serving = [v for v in versions if not v.aspired and v.state is State.AVAILABLE]
    if (not aspired or aspired_serving or len(unaspired_serving) > 1) and unaspired_serving:
        return Action.UNLOAD, min(v.version for v in unaspired_serving)
    new = [v.version for v in aspired if v.state is State.START]
    if new:
        return Action.LOAD, max(new)
    return None
