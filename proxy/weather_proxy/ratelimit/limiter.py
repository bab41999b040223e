"""Rate limits and quotas per key: token buckets (GCRA), fleet-wide in Redis, else in this process.

``requestsPerMinute`` is the sustained rate and ``burst`` the bucket's capacity
(docs/contracts.md, Keys, limits, quotas and scopes; the arithmetic is in ``bucket``).
In Redis one script per check takes the token and counts the quota atomically, so the
limit holds across every replica of the fleet. While Redis is down (or a call fails) each
process keeps its own buckets and counters, so a fleet of N replicas then admits up to N
times the limit, as before.

The clock is a parameter (epoch seconds): tests move it instead of sleeping, and
every replica uses its own (NTP-synced) clock for the bucket's arithmetic.

Even one round trip per request is more than the cache-hit budget, so a key
that is busy in this process takes its tokens in leases (``lease``): one script
call grants several tokens, spent here within ``lease.TTL_SECONDS``. The bound
is in ``lease``: at most ``requestsPerMinute x TTL / 60`` (1%) more than the
bucket's admissions in any 60 s, whatever the number of replicas.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.http import problems
from weather_proxy.ratelimit import bucket as bucket_mod
from weather_proxy.ratelimit import lease as lease_mod

log = logging.getLogger(__name__)

KEY_PREFIX = "weather-proxy:bucket"
QUOTA_PREFIX = "weather-proxy:quota"
# Local buckets kept while Redis is down, before full ones (no state) are swept.
LOCAL_SWEEP_AT = 100_000


def bucket_key(limiter_id: str) -> str:
    """The Redis key of a bucket's tat (a hash tag, so a cluster keeps it with its quota counters)."""
    return f"{KEY_PREFIX}:{{{limiter_id}}}"


def quota_key(limiter_id: str, period: bucket_mod.Period) -> str:
    """The Redis key of a quota period's counter (the bucket's hash tag: one slot for both)."""
    return f"{QUOTA_PREFIX}:{{{limiter_id}}}:{period.label}"


# The values a check returns are plain slotted classes, not frozen ones: a frozen dataclass's
# __init__ costs several times more, and every cache hit makes a Decision. Treat them as values.
@dataclasses.dataclass(slots=True)
class QuotaState:
    """A key's quota in the current period."""

    limit: int
    used: int
    resets_at: float  # epoch seconds: the period's end

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclasses.dataclass(slots=True)
class Decision:
    """Whether one request is admitted, and the numbers of its RateLimit-* headers."""

    allowed: bool
    limit: int  # the bucket's capacity
    remaining: int  # whole tokens left
    reset_seconds: int  # until the bucket is full
    retry_after: int = 0  # when refused: seconds until it may be retried (at least 1)
    quota: QuotaState | None = None
    quota_exceeded: bool = False

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out

    def problem(self) -> problems.ProblemError:
        """The 429 of a refused request: rate-limited, or quota-exceeded."""
        if self.quota_exceeded:
            assert self.quota is not None
            return problems.ProblemError(
                429,
                f"Quota of {self.quota.limit} requests per period used up; it resets at the period's end.",
                title="Quota exceeded",
                slug="quota-exceeded",
                headers=self.headers(),
            )
        return problems.ProblemError(
            429,
            f"Rate limit exceeded: a bucket of {self.limit} requests; retry after {self.retry_after} s.",
            headers=self.headers(),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Taken:
    """What one take returned: tokens granted and the state after it."""

    granted: int
    ahead: int  # microseconds until the bucket is full
    used: int  # quota used in the period
    quota_refused: bool


class LocalBuckets:
    """The buckets and quota counters of this process (while Redis is down)."""

    def __init__(self) -> None:
        self.tats: dict[str, int] = {}
        self.quotas: dict[tuple[str, str], tuple[int, float]] = {}  # (bucket, period) -> (used, end)

    def take(
        self,
        limiter_id: str,
        bucket: bucket_mod.Bucket,
        now: int,
        cost: int,
        quota: int,
        period: bucket_mod.Period | None,
    ) -> _Taken:
        tat = max(self.tats.get(limiter_id, 0), now)
        used = 0
        counter = (limiter_id, period.label) if period is not None else None
        if counter is not None:
            used = self.quotas.get(counter, (0, 0.0))[0]
            if used >= quota:
                return _Taken(0, tat - now, used, True)
            cost = min(cost, quota - used)
        granted, tat = bucket.take(tat, now, cost)
        if granted:
            if len(self.tats) >= LOCAL_SWEEP_AT:
                self._sweep(now)
            self.tats[limiter_id] = tat
            if counter is not None and period is not None:
                used += granted
                self.quotas[counter] = (used, period.end)
        return _Taken(granted, tat - now, used, False)

    def _sweep(self, now: int) -> None:
        """Forget full buckets and ended periods: their absence means the same."""
        self.tats = {key: tat for key, tat in self.tats.items() if tat > now}
        seconds = now / bucket_mod.MICROS
        self.quotas = {key: value for key, value in self.quotas.items() if value[1] > seconds}


class Limiter:
    """Token buckets and quotas: fleet-wide through Redis, else in this process."""

    def __init__(
        self,
        link: redis_link.RedisLink,
        *,
        leasing: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.leasing = leasing
        self.clock = clock
        self.local = LocalBuckets()
        self._script: Any = (
            link.client.register_script(bucket_mod.TAKE_LUA) if link.client is not None else None
        )
        self._buckets: dict[tuple[int, int], bucket_mod.Bucket] = {}
        self._caps: dict[bucket_mod.Bucket, int] = {}  # the largest lease of each bucket
        self._by_limit: dict[int, tuple[config_mod.Limit, bucket_mod.Bucket]] = {}
        self._leases: dict[tuple[str, bucket_mod.Bucket], lease_mod.Lease] = {}
        self._renewing: dict[tuple[str, bucket_mod.Bucket], asyncio.Future[None]] = {}
        self._waiting: dict[tuple[str, bucket_mod.Bucket], int] = {}  # requests waiting on a renewal
        self._paces: dict[tuple[str, bucket_mod.Bucket], lease_mod.Pace] = {}

    def bucket(self, limit: config_mod.Limit) -> bucket_mod.Bucket:
        # By the limit object first: a key's Limit is one object until the keys or config change.
        known = self._by_limit.get(id(limit))
        if known is not None and known[0] is limit:
            return known[1]
        if len(self._by_limit) >= LOCAL_SWEEP_AT:
            self._by_limit.clear()
        found = self._bucket_of(limit)
        self._by_limit[id(limit)] = (limit, found)
        return found

    def _bucket_of(self, limit: config_mod.Limit) -> bucket_mod.Bucket:
        spec = (limit.requests_per_minute, limit.capacity)
        found = self._buckets.get(spec)
        if found is None:
            found = self._buckets[spec] = bucket_mod.Bucket.of(limit)
        return found

    @property
    def fleet_wide(self) -> bool:
        """Whether checks go to Redis now (else to this process's buckets)."""
        return self._script is not None and self.link.usable

    def hit_leased(
        self, limiter_id: str, limit: config_mod.Limit, quota: config_mod.Quota | None = None
    ) -> Decision | None:
        """``hit`` without I/O when this process holds a token of the key's lease; None: await ``hit``."""
        bucket = self.bucket(limit)
        key = (limiter_id, bucket)
        held = self._leases.get(key)
        if held is None or not self.fleet_wide:
            return None
        now = self.clock()
        if not held.take(now):
            return None
        pace = self._paces.get(key)
        if pace is not None:  # it is: the lease was granted by hit, which made it
            pace.tick(now)
        return self._leased(bucket, quota, held, now)

    async def hit(
        self, limiter_id: str, limit: config_mod.Limit, quota: config_mod.Quota | None = None
    ) -> Decision:
        """Take one token (and one request of the quota); from a lease when this process holds one."""
        bucket = self.bucket(limit)
        cap = self._caps.get(bucket)
        if cap is None:
            cap = self._caps[bucket] = lease_mod.cap(limit.requests_per_minute, bucket.capacity)
        if not self.leasing or cap == 1 or not self.fleet_wide:
            decision, _ = await self._take(limiter_id, bucket, quota, 1)
            return decision
        key = (limiter_id, bucket)
        now = self.clock()
        pace = self._paces.get(key)
        if pace is None:
            pace = self._paces[key] = lease_mod.Pace(now)
        pace.tick(now)
        while True:
            held = self._leases.get(key)
            if held is not None and held.take(now):
                return self._leased(bucket, quota, held, now)
            pending = self._renewing.get(key)
            if pending is None:
                break
            # Someone is renewing this key's lease: share it rather than take another.
            self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                await asyncio.shield(pending)
            finally:
                left = self._waiting[key] - 1
                if left:
                    self._waiting[key] = left
                else:
                    del self._waiting[key]
            now = self.clock()
        renewal = asyncio.get_running_loop().create_future()
        self._renewing[key] = renewal
        if held is not None and held.tokens > 0:
            self.link.metrics.lease_unspent.inc(held.tokens)  # taken from the bucket, never served
        try:
            # Enough for the requests already waiting on this key too: a key busy after a quiet
            # spell has no pace yet, and one token per round trip would serve one request each.
            size = max(lease_mod.next_size(pace, cap), min(cap, 1 + self._waiting.get(key, 0)))
            decision, granted = await self._take(limiter_id, bucket, quota, size)
            if granted > 1:
                self._leases[key] = lease_mod.grant(
                    granted,
                    decision.remaining,
                    self.clock() + decision.reset_seconds,
                    decision.quota,
                    self.clock(),
                )
                decision = dataclasses.replace(decision, remaining=decision.remaining + granted - 1)
            else:
                self._leases.pop(key, None)
            return decision
        finally:
            del self._renewing[key]
            renewal.set_result(None)

    def unspent(self, limiter_id: str, limit: config_mod.Limit) -> int:
        """Tokens this process holds for a bucket: taken from the fleet's bucket, not yet used."""
        held = self._leases.get((limiter_id, self.bucket(limit)))
        return held.tokens if held is not None and self.clock() < held.expires_at else 0

    async def peek(
        self, limiter_id: str, limit: config_mod.Limit, quota: config_mod.Quota | None = None
    ) -> Decision:
        """The bucket (and the ``quota``'s period) now, taking nothing: a peek is never refused.

        This process's unspent lease counts as left, and as not yet used of the quota.
        """
        bucket = self.bucket(limit)
        now_s = self.clock()
        now = int(now_s * bucket_mod.MICROS)
        period = bucket_mod.period_of(quota.period, now_s) if quota is not None else None
        tat = self.local.tats.get(limiter_id, 0)
        used = self.local.quotas.get((limiter_id, period.label), (0, 0.0))[0] if period is not None else 0
        if self.fleet_wide:
            assert self.link.client is not None
            keys = [bucket_key(limiter_id)]
            if period is not None:
                keys.append(quota_key(limiter_id, period))
            try:
                raw = await self.link.client.mget(keys)
            except redis_link.ERRORS as exc:
                self.link.failed(exc)
            else:
                self.link.ok()
                tat = int(raw[0] or 0)
                used = int(raw[1] or 0) if period is not None else 0
        held = self.unspent(limiter_id, limit)
        ahead = max(0, tat - now)
        remaining = bucket.tokens(ahead) + held
        state = None
        if quota is not None and period is not None:
            state = QuotaState(quota.requests, max(0, used - held), period.end)
        return Decision(True, bucket.capacity, remaining, math.ceil(ahead / bucket_mod.MICROS), quota=state)

    def _leased(
        self, bucket: bucket_mod.Bucket, quota: config_mod.Quota | None, held: lease_mod.Lease, now: float
    ) -> Decision:
        reset = max(0, math.ceil(held.full_at - now))
        state = held.quota
        if state is not None and quota is not None:
            state = dataclasses.replace(state, used=state.used - held.tokens)
        return Decision(True, bucket.capacity, held.remaining + held.tokens, reset, quota=state)

    async def _take(
        self, limiter_id: str, bucket: bucket_mod.Bucket, quota: config_mod.Quota | None, cost: int
    ) -> tuple[Decision, int]:
        """Take up to ``cost`` tokens: in Redis, or here while it is down; the decision and tokens granted."""
        now_s = self.clock()
        now = int(now_s * bucket_mod.MICROS)
        period = bucket_mod.period_of(quota.period, now_s) if quota is not None else None
        requests = quota.requests if quota is not None else 0
        taken: _Taken | None = None
        if self.fleet_wide:
            keys = [bucket_key(limiter_id)]
            ttl = 0
            if period is not None:
                keys.append(quota_key(limiter_id, period))
                ttl = bucket_mod.quota_ttl_ms(period, now_s)
            try:
                reply = await self._script(
                    keys=keys, args=[now, bucket.interval, bucket.capacity, cost, requests, ttl]
                )
            except redis_link.ERRORS as exc:
                self.link.failed(exc)
            else:
                self.link.ok()
                taken = _Taken(int(reply[0]), int(reply[1]), int(reply[2]), bool(int(reply[3])))
        if taken is None:
            taken = self.local.take(limiter_id, bucket, now, 1, requests, period)
        return self._decision(bucket, taken, requests, period, now_s), taken.granted

    @staticmethod
    def _decision(
        bucket: bucket_mod.Bucket, taken: _Taken, requests: int, period: bucket_mod.Period | None, now: float
    ) -> Decision:
        state = QuotaState(requests, taken.used, period.end) if period is not None else None
        reset = math.ceil(max(0, taken.ahead) / bucket_mod.MICROS)
        remaining = bucket.tokens(taken.ahead)
        if taken.granted:
            return Decision(True, bucket.capacity, remaining, reset, quota=state)
        if taken.quota_refused:
            assert period is not None
            retry = max(1, math.ceil(period.end - now))  # the period's end
            return Decision(False, bucket.capacity, remaining, reset, retry, state, quota_exceeded=True)
        retry = max(1, math.ceil(bucket.wait(taken.ahead) / bucket_mod.MICROS))
        return Decision(False, bucket.capacity, remaining, reset, retry, state)
