"""When to try a request again: Retry-After on 429 rate-limited and 503, within a bounded budget.

A quota that is used up (429 ``quota-exceeded``) is not retried: its Retry-After is the end of
the day or month, so the error is raised at once with ``retry_after`` set. A wait longer than
what is left of the budget is not slept either: the error is raised with the wait it asked for.

Hand-written rather than tenacity: the decision reads the problem type and a header of each
answer and sleeps the server's figure, which is most of the code a tenacity policy would need
too, and the SDK then depends on httpx alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
from collections.abc import Mapping

RETRIED_STATUSES = frozenset({429, 503})
QUOTA_EXCEEDED = "https://weatherproxy.dev/problems/quota-exceeded"


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a client tries. ``RetryPolicy(max_attempts=1)`` turns retries off."""

    max_attempts: int = 3  # tries in all, the first one included
    max_wait: float = 30.0  # seconds of waiting in all, across the retries of one call
    default_delay: float = 1.0  # the wait when a retried answer (or a refused connection) names none

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1")
        if self.max_wait < 0 or self.default_delay < 0:
            raise ValueError("max_wait and default_delay: must not be negative")

    def delay(self, wanted: float, attempt: int, waited: float) -> float | None:
        """The wait before try ``attempt + 1``, or None when the budget does not allow one."""
        if attempt >= self.max_attempts or waited + wanted > self.max_wait:
            return None
        return wanted


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def is_retried(status: int, problem_type: str | None) -> bool:
    """Whether an answer may be tried again at all (quota-exceeded never is)."""
    return status in RETRIED_STATUSES and problem_type != QUOTA_EXCEEDED
