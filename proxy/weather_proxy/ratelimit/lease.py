"""Token leases: a process takes several requests' worth of a key's fleet limit in one round trip.

Why: on the cache-hit path one Redis round trip per request costs about as much
as the whole budget (bench/README.md: ~120 us of client CPU per pipelined limit
check against ~200 us per request at the throughput target). A key that is busy
in this process therefore takes ``size`` tokens at once from the fleet-wide
window (one ``limits`` acquire with ``cost=size``) and spends them locally.

Sizing adapts to the key's request rate in this process: a lease should last
about ``TARGET_SECONDS``; it starts at 1 (exactly one round trip per request,
as without leases) and is capped at ``MAX_SIZE`` and at ``MAX_FRACTION`` of the
limit, so small limits are always counted request by request.

Accuracy, bounded and documented: tokens are counted in Redis when granted, so
the fleet never admits more than the limit's count; a lease's unspent tokens
expire after ``TTL_SECONDS`` (counted, not served: under-admission of at most
``size`` per process), and a request may be served up to ``TTL_SECONDS`` after
its token was counted (the sliding window sees it that much earlier). With R
replicas the deviation from an exact per-request count is at most
R x min(MAX_SIZE, MAX_FRACTION x limit) requests per window.
"""

from __future__ import annotations

import dataclasses
import math
import time

TARGET_SECONDS = 0.05
TTL_SECONDS = 1.0
MAX_SIZE = 64
MAX_FRACTION = 0.01


@dataclasses.dataclass(slots=True)
class Lease:
    """Tokens granted to this process for one (bucket, limit)."""

    size: int  # tokens granted
    tokens: int  # not yet spent
    remaining: int  # fleet remaining right after the grant (our unspent tokens excluded)
    reset_at: float  # epoch seconds: when the window has room again
    granted_at: float  # monotonic
    expires_at: float  # monotonic

    def take(self, now: float) -> bool:
        """Spend one token if the lease is still valid."""
        if self.tokens <= 0 or now >= self.expires_at:
            return False
        self.tokens -= 1
        return True


def cap(limit: int) -> int:
    """The largest lease for a limit: small limits are counted one request at a time."""
    return max(1, min(MAX_SIZE, math.floor(limit * MAX_FRACTION)))


def next_size(previous: Lease | None, now: float, limit: int) -> int:
    """Size of the next lease from how fast the previous one was spent."""
    upper = cap(limit)
    if previous is None or upper == 1:
        return 1
    used = previous.size - previous.tokens
    elapsed = max(now - previous.granted_at, 1e-6)
    if used <= 0 or elapsed >= TTL_SECONDS:
        return 1
    rate = used / elapsed
    return max(1, min(upper, math.ceil(rate * TARGET_SECONDS)))


def grant(size: int, remaining: int, reset_at: float, now: float | None = None) -> Lease:
    """A lease of ``size`` tokens of which the caller spends the first at once."""
    now = time.monotonic() if now is None else now
    return Lease(
        size=size,
        tokens=size - 1,
        remaining=remaining,
        reset_at=reset_at,
        granted_at=now,
        expires_at=now + TTL_SECONDS,
    )
