"""When a failed call is tried again: bounded attempts, exponential backoff with jitter.

Only UNAVAILABLE is retried by default: it is what a server sends while it starts, drains or
sheds load (and what KServe's activator answers with 503 while a revision scales up from zero),
and it means the request was not processed, so trying again is safe.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeGuard

from timonel.errors import SpecError


@dataclass(frozen=True)
class Retry:
    """How many times to try a call and how long to wait between tries.

    The n-th wait is ``min(max_backoff, backoff * multiplier**n)``, scaled by a random factor
    in [0.5, 1] when ``jitter`` is on, so many clients do not retry in lockstep.
    """

    attempts: int = 4
    backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 2.0
    jitter: bool = True
    codes: frozenset[str] = frozenset({"UNAVAILABLE"})

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise SpecError(
                f"Retry.attempts must be a whole number of tries, got {self.attempts!r}; give "
                "e.g. Retry(attempts=4), or Retry(attempts=1) for no retry",
                field="retry.attempts",
            )
        if self.attempts < 1:
            raise SpecError(
                f"Retry.attempts must be 1 or more (the first try counts), got {self.attempts}; "
                "give e.g. Retry(attempts=4), or Retry(attempts=1) for no retry",
                field="retry.attempts",
            )
        for name, least, example in (
            ("backoff", 0, "0.1"),
            ("max_backoff", 0, "2"),
            ("multiplier", 1, "2"),
        ):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < least:
                unit = "" if name == "multiplier" else " of seconds"
                raise SpecError(
                    f"Retry.{name} must be a finite number{unit}, {least} or more, got "
                    f"{value!r}; give e.g. Retry({name}={example})",
                    field=f"retry.{name}",
                )

    def delays(self) -> Iterator[float]:
        """The waits before the 2nd, 3rd... attempt: ``attempts - 1`` of them."""
        for n in range(self.attempts - 1):
            delay = min(self.max_backoff, self.backoff * self.multiplier**n)
            yield delay * random.uniform(0.5, 1.0) if self.jitter else delay

    def retries(self, code: str) -> bool:
        return code in self.codes


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_timeout(timeout: object) -> float:
    """A client's timeout, checked: a finite number of seconds above 0 (``SpecError`` else)."""
    if not _is_number(timeout) or not math.isfinite(timeout) or timeout <= 0:
        raise SpecError(
            "timeout must be a finite number of seconds above 0 (how long each try of a call "
            f"may take), got {timeout!r}; give e.g. 30",
            field="timeout",
        )
    return float(timeout)


#: one attempt, no waiting
NO_RETRY = Retry(attempts=1)
