"""Version policies and TF Serving's availability-preserving load/unload order (pure)."""

from __future__ import annotations

import pytest

from timonel.server.policy import (
    Action,
    State,
    VersionSnapshot,
    aspired_versions,
    next_action,
)
from timonel.tfserving import VersionPolicy

A, S, E, L = State.AVAILABLE, State.START, State.END, State.LOADING


@pytest.mark.parametrize(
    ("policy", "on_disk", "aspired"),
    [
        (VersionPolicy.latest(), {1, 2, 3}, {3}),
        (VersionPolicy.latest(2), {1, 2, 3}, {2, 3}),
        (VersionPolicy.latest(5), {1, 2}, {1, 2}),
        (VersionPolicy.latest(), set(), set()),
        (VersionPolicy.all(), {1, 7}, {1, 7}),
        (VersionPolicy.specific(2, 9), {1, 2, 3}, {2}),
    ],
)
def test_aspired_versions(policy: VersionPolicy, on_disk: set[int], aspired: set[int]) -> None:
    assert aspired_versions(policy, on_disk) == aspired


def snap(*rows: tuple[int, State, bool]) -> list[VersionSnapshot]:
    return [VersionSnapshot(v, s, a) for v, s, a in rows]


@pytest.mark.parametrize(
    ("versions", "action"),
    [
        # A new version loads while the old one keeps serving...
        (snap((1, A, False), (2, S, True)), (Action.LOAD, 2)),
        # ...and the old one unloads only once the new one serves.
        (snap((1, A, False), (2, A, True)), (Action.UNLOAD, 1)),
        # A failed new version leaves the old one serving.
        (snap((1, A, False), (2, E, True)), None),
        (snap((1, E, False), (2, A, False), (3, E, True)), None),
        (snap((1, A, False), (2, L, True)), None),
        # With two unaspired versions serving, the lower one can go.
        (snap((1, A, False), (2, A, False), (3, S, True)), (Action.UNLOAD, 1)),
        # A model removed from the config unloads everything.
        (snap((4, A, False)), (Action.UNLOAD, 4)),
        # The highest new aspired version loads first.
        (snap((1, S, True), (2, S, True)), (Action.LOAD, 2)),
        (snap((3, A, True)), None),
    ],
)
def test_next_action(versions: list[VersionSnapshot], action: tuple[Action, int] | None) -> None:
    assert next_action(versions) == action
