"""Token leases: a process takes several of a key's tokens from the fleet's bucket in one round trip.

Why: on the cache-hit path one Redis round trip per request costs about as much
as the whole budget (bench/README.md: ~120 us of client CPU per limit check
against ~200 us per request at the throughput target). A key that is busy in
this process therefore takes ``size`` tokens at once (one script call with
``cost=size``; the bucket grants what it holds) and spends them locally.

Sizing adapts to the key's request rate in this process, measured over windows
of at least ``PACE_WINDOW_SECONDS`` (``Pace``): a lease should last about
``TARGET_SECONDS``. It starts at 1 (exactly one round trip per request, as
without leases), is never less than the requests already waiting for it (a key
busy after a quiet spell has no pace yet: one token per round trip served its
queue one request at a time: the proxy's first wrk round after start had a p99
of 430 ms), and is capped at ``MAX_SIZE``, at ``MAX_FRACTION`` of the
per-minute rate and at the bucket's capacity, so small limits are always
counted request by request. ``MAX_SIZE`` only bounds the leases of very large
limits: the accuracy bounds below come from the TTL and ``MAX_FRACTION``. (At 64, a
busy key's hits waited for Redis once every 64 requests: 12 us of the 71 us per hit
of ``bench.hitpath``; at 1,024 a lease lasts its 50 ms.) (Measuring the pace by how
fast the previous lease went is wrong: the requests queued behind a renewal spend a new lease at once,
so every lease looked fast and most of a large one expired; bench figure 4
counted 10% of the rate lost that way.)

Accuracy, bounded and documented: a token is taken from the fleet's bucket when
its lease is granted and spent at most ``TTL_SECONDS`` later, or never.
* Over-admission: the requests served in any 60 s window had their tokens taken
  in a window of 60 s + TTL, which the bucket bounds by ``capacity + rate x
  (60 + TTL) / 60``; so at most ``rate x TTL / 60`` = 1% of the per-minute rate
  above the exact bound, whatever the number of replicas.
* Under-admission: a lease's unspent tokens expire (taken, not served): at most
  one lease, ``cap`` tokens, per replica each time a busy key goes quiet.
``bench/`` measures both with three processes sharing one Redis.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

TARGET_SECONDS = 0.05
TTL_SECONDS = 0.6
PACE_WINDOW_SECONDS = 1.0
MAX_SIZE = 1024
MAX_FRACTION = 0.01


@dataclasses.dataclass(slots=True)
class Lease:
    """Tokens granted to this process for one (bucket, limit)."""

    size: int  # tokens granted
    tokens: int  # not yet spent
    remaining: int  # tokens left in the fleet's bucket right after the grant (ours excluded)
    full_at: float  # epoch seconds: when the fleet's bucket is full again
    quota: Any  # the key's limiter.QuotaState right after the grant, or None
    granted_at: float  # on the limiter's clock (epoch seconds)
    expires_at: float  # on the limiter's clock

    def take(self, now: float) -> bool:
        """Spend one token if the lease is still valid."""
        if self.tokens <= 0 or now >= self.expires_at:
            return False
        self.tokens -= 1
        return True


def cap(requests_per_minute: int, capacity: int) -> int:
    """The largest lease for a limit: small limits are counted one request at a time."""
    return max(1, min(MAX_SIZE, math.floor(requests_per_minute * MAX_FRACTION), capacity))


@dataclasses.dataclass(slots=True)
class Pace:
    """A key's request rate in this process, over windows of at least ``PACE_WINDOW_SECONDS``."""

    since: float
    count: int = 0
    rate: float = 0.0  # requests per second in the last complete window

    def tick(self, now: float) -> None:
        self.count += 1
        elapsed = now - self.since
        if elapsed >= PACE_WINDOW_SECONDS:
            self.rate = self.count / elapsed
            self.since, self.count = now, 0


def next_size(pace: Pace, upper: int) -> int:
    """Size of the next lease (at most ``upper``): about ``TARGET_SECONDS`` of the key's requests."""
    if upper == 1:
        return 1
    return max(1, min(upper, math.ceil(pace.rate * TARGET_SECONDS)))


def grant(size: int, remaining: int, full_at: float, quota: Any, now: float) -> Lease:
    """A lease of ``size`` tokens of which the caller spends the first at once.

    ``now`` is on the limiter's clock, as every time of a lease is (no clock of its own).
    """
    return Lease(
        size=size,
        tokens=size - 1,
        remaining=remaining,
        full_at=full_at,
        quota=quota,
        granted_at=now,
        expires_at=now + TTL_SECONDS,
    )
