"""A reference token bucket and a sliding-minute count, for the limiter's tests and bench figure 4."""

from __future__ import annotations

import fractions


class ReferenceBucket:
    """A token bucket as a textbook states it, in exact fractions: tokens refill continuously.

    ``units_per_second``: the unit of the times given to ``admit`` (1: seconds; 10**6: microseconds).
    """

    def __init__(self, per_minute: int, capacity: int, units_per_second: int = 1) -> None:
        self.rate = fractions.Fraction(per_minute, 60 * units_per_second)  # tokens per time unit
        self.capacity = fractions.Fraction(capacity)
        self.tokens = fractions.Fraction(capacity)
        self.last: fractions.Fraction | None = None

    def admit(self, now: float) -> bool:
        moment = fractions.Fraction(now)
        if self.last is not None:
            self.tokens = min(self.capacity, self.tokens + (moment - self.last) * self.rate)
        self.last = moment
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def most_in_any_minute(moments: list[float]) -> int:
    """The most of these sorted times (seconds) that fall in one 60 s window."""
    best, start = 0, 0
    for end, moment in enumerate(moments):
        while moment - moments[start] >= 60:
            start += 1
        best = max(best, end - start + 1)
    return best
