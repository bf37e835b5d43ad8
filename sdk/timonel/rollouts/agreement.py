"""Whether two revisions answer alike, example by example: pure, on numpy outputs.

The outputs of one predict call are arrays by output name whose first axis is the example. An
example agrees when every output agrees:

- class scores (a float output whose last axis has more than one entry, as a classifier's
  probabilities or logits): the same argmax;
- other float outputs (regressions): a relative difference of at most ``tolerance`` on every
  value, measured against the larger magnitude of the two (two zeros agree);
- integers, booleans and strings: equality.

An output missing on one side, or shaped differently, disagrees on every example.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from timonel.rollouts.evidence import Agreement

Outputs = Mapping[str, "np.ndarray[Any, Any]"]


def _rows(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The array as (examples, values): a scalar or vector output is one value per example."""
    if array.ndim == 0:
        return array.reshape(1, 1)
    return array.reshape(array.shape[0], -1)


def is_class_scores(array: np.ndarray[Any, Any]) -> bool:
    return array.dtype.kind == "f" and array.ndim >= 2 and array.shape[-1] > 1


def _agreeing_rows(
    stable: np.ndarray[Any, Any], canary: np.ndarray[Any, Any], tolerance: float
) -> np.ndarray[Any, Any]:
    if is_class_scores(stable) and is_class_scores(canary):
        same = np.asarray(np.argmax(stable, axis=-1) == np.argmax(canary, axis=-1))
        return np.asarray(_rows(same).all(axis=1))
    if stable.dtype.kind == "f" or canary.dtype.kind == "f":
        a = _rows(stable.astype(np.float64))
        b = _rows(canary.astype(np.float64))
        scale = np.maximum(np.abs(a), np.abs(b))
        close = np.abs(a - b) <= tolerance * scale
        return np.asarray((close | (scale == 0) | (np.isnan(a) & np.isnan(b))).all(axis=1))
    return np.asarray((_rows(stable) == _rows(canary)).all(axis=1))


def compare_outputs(stable: Outputs, canary: Outputs, *, tolerance: float = 0.01) -> Agreement:
    """How many examples of one call agree between the stable and canary revisions' outputs."""
    examples = max((_rows(np.asarray(v)).shape[0] for v in stable.values()), default=0)
    agree = np.ones(examples, dtype=bool)
    for name, value in stable.items():
        a = np.asarray(value)
        b = np.asarray(canary[name]) if name in canary else None
        if b is None or a.shape != b.shape:
            return Agreement(compared=examples, agreed=0)
        agree &= _agreeing_rows(a, b, tolerance)
    if set(canary) - set(stable):
        return Agreement(compared=examples, agreed=0)
    return Agreement(compared=examples, agreed=int(agree.sum()))
