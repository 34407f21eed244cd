"""Retries declared as data per step: attempts, exponential backoff with jitter, Retry-After.

Nothing here sleeps: the engine turns the delay into a ``next_attempt_at`` and the transaction
waits in the store, so a worker is never blocked and a restart loses no schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    initial_seconds: float = 0.5
    max_seconds: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.2
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a step needs at least one attempt")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    def delay(
        self,
        attempt: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait after failed ``attempt`` (1-based).

        The vendor's Retry-After is a floor: q2c never comes back sooner than asked, even if
        that is longer than ``max_seconds``.
        """
        base = min(self.max_seconds, self.initial_seconds * self.multiplier ** (attempt - 1))
        spread = base * self.jitter
        wait = base + (rng or random).uniform(-spread, spread)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return max(0.0, wait)

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.attempts
