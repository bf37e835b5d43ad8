from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from timonel.rollouts.agreement import compare_outputs
from timonel.rollouts.evidence import Agreement

SCORES = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]], dtype=np.float32)


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [
        # classifiers: the same argmax agrees, whatever the scores
        ({"p": SCORES}, {"p": SCORES * 0.5 + 0.01}, Agreement(3, 3)),
        ({"p": SCORES}, {"p": SCORES[:, ::-1]}, Agreement(3, 0)),
        ({"p": SCORES}, {"p": np.array([[0.1, 0.9], [0.3, 0.7], [0.4, 0.6]])}, Agreement(3, 2)),
        # regressions: relative difference against the larger magnitude
        ({"y": np.array([1.0, 2.0, 0.0])}, {"y": np.array([1.005, 2.5, 0.0])}, Agreement(3, 2)),
        ({"y": np.array([[100.0], [-4.0]])}, {"y": np.array([[100.9], [-4.01]])}, Agreement(2, 2)),
        # integers and strings: equality
        ({"k": np.array([1, 2, 3])}, {"k": np.array([1, 2, 4])}, Agreement(3, 2)),
        (
            {"s": np.array([b"a", b"b"], dtype=object)},
            {"s": np.array([b"a", b"c"], dtype=object)},
            Agreement(2, 1),
        ),
        # every output must agree for the example to agree
        (
            {"p": SCORES, "y": np.array([1.0, 1.0, 1.0])},
            {"p": SCORES, "y": np.array([1.0, 9.0, 1.0])},
            Agreement(3, 2),
        ),
        # missing, extra or reshaped outputs disagree everywhere
        ({"p": SCORES}, {"q": SCORES}, Agreement(3, 0)),
        ({"p": SCORES}, {"p": SCORES, "q": SCORES}, Agreement(3, 0)),
        ({"p": SCORES}, {"p": SCORES[:2]}, Agreement(3, 0)),
    ],
)
def test_agreement_per_example(
    stable: dict[str, Any], canary: dict[str, Any], expected: Agreement
) -> None:
    assert compare_outputs(stable, canary, tolerance=0.01) == expected


def test_agreement_adds_up_over_calls() -> None:
    total = Agreement(3, 2) + Agreement(5, 5)
    assert (total.compared, total.agreed, round(total.rate, 3)) == (8, 7, 0.875)
    assert Agreement().rate == 1.0
