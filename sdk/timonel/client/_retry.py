"""When a failed call is tried again: bounded attempts, exponential backoff with jitter.

Only UNAVAILABLE is retried by default: it is what a server sends while it starts, drains or
sheds load (and what KServe's activator answers with 503 while a revision scales up from zero),
and it means the request was not processed, so trying again is safe.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


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
        if self.attempts < 1:
            raise ValueError(f"Retry.attempts must be at least 1 (one try), got {self.attempts}")
        if self.backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError(
                "Retry needs backoff >= 0, max_backoff >= 0 and multiplier >= 1, got "
                f"{self.backoff}, {self.max_backoff}, {self.multiplier}"
            )

    def delays(self) -> Iterator[float]:
        """The waits before the 2nd, 3rd... attempt: ``attempts - 1`` of them."""
        for n in range(self.attempts - 1):
            delay = min(self.max_backoff, self.backoff * self.multiplier**n)
            yield delay * random.uniform(0.5, 1.0) if self.jitter else delay

    def retries(self, code: str) -> bool:
        return code in self.codes


#: one attempt, no waiting
NO_RETRY = Retry(attempts=1)
