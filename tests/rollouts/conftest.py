"""Fixtures of the rollout tests."""

from __future__ import annotations

import pytest

from rollouts.fakeclock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
