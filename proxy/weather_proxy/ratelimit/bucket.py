"""Token buckets as GCRA, and quota periods: the arithmetic, in Python and in one Redis script.

GCRA (the generic cell rate algorithm) keeps one number per bucket, the
*theoretical arrival time* ``tat``: the moment the bucket would be full again.
With ``interval = 60 s / requestsPerMinute`` and ``span = capacity x interval``,
a request at ``now`` finds ``(now + span - max(tat, now)) // interval`` whole
tokens; taking ``n`` of them moves ``tat`` forward by ``n x interval``. That is
exactly a token bucket of ``capacity`` tokens refilled at ``requestsPerMinute``
per minute: a bucket never seen (no ``tat``) is full, and no 60 s admit more
than ``requestsPerMinute + capacity`` requests.

Times are integer microseconds since the epoch, so the Lua side (doubles, exact
to 2**53) and the Python side compute the same numbers. No library has these
semantics (``limits`` offers fixed, moving and sliding windows only), hence the
short script; ``tests/unit/proxy/test_token_bucket.py`` checks both sides
against a reference token bucket.

Quotas count requests per UTC calendar day or month in one counter per period
(``...:quota:<bucket>:2026-12-01`` or ``...:2026-12``) that expires after the
period's end. The script checks the quota first (a request refused by its quota
takes no token) and counts it only for the tokens granted.
"""

from __future__ import annotations

import dataclasses
import datetime
import math

from weather_proxy import config as config_mod

MICROS = 1_000_000
MINUTE_MICROS = 60 * MICROS
# A quota counter outlives its period by this much: pods whose clocks differ a little still agree.
QUOTA_GRACE_SECONDS = 3600


@dataclasses.dataclass(frozen=True, slots=True)
class Bucket:
    """A limit in the units of the algorithm."""

    interval: int  # microseconds per token
    capacity: int  # tokens

    @classmethod
    def of(cls, limit: config_mod.Limit) -> Bucket:
        return cls(max(1, round(MINUTE_MICROS / limit.requests_per_minute)), limit.capacity)

    @property
    def span(self) -> int:
        """Microseconds an empty bucket takes to fill."""
        return self.interval * self.capacity

    def take(self, tat: int, now: int, cost: int) -> tuple[int, int]:
        """Take up to ``cost`` tokens at ``now``: (tokens granted, the new ``tat``)."""
        tat = max(tat, now)
        granted = max(0, min(cost, (now + self.span - tat) // self.interval))
        return granted, tat + granted * self.interval

    def tokens(self, ahead: int) -> int:
        """Whole tokens left when the bucket is full ``ahead`` microseconds from now."""
        return max(0, (self.span - max(0, ahead)) // self.interval)

    def wait(self, ahead: int) -> int:
        """Microseconds until one token, when the bucket is full ``ahead`` from now."""
        return max(0, ahead - self.span + self.interval)


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    """One quota period: its label (part of the counter's key) and its bounds in epoch seconds."""

    label: str
    start: float
    end: float


def period_of(period: config_mod.QuotaPeriod, now: float) -> Period:
    """The UTC calendar day or month that contains ``now`` (epoch seconds)."""
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    if period is config_mod.QuotaPeriod.DAY:
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + datetime.timedelta(days=1)
        label = start.strftime("%Y-%m-%d")
    else:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + datetime.timedelta(days=32)).replace(day=1)
        label = start.strftime("%Y-%m")
    return Period(label, start.timestamp(), end.timestamp())


def quota_ttl_ms(period: Period, now: float) -> int:
    """How long a quota counter must live: to the period's end, plus a grace."""
    return max(1, math.ceil((period.end - now + QUOTA_GRACE_SECONDS) * 1000))


# KEYS[1]: the bucket's tat; KEYS[2]: the period's quota counter (read only when ARGV[5] > 0).
# ARGV: now (us), interval (us), capacity, cost, quota (0: none), quota counter TTL (ms).
# Returns {granted, tat - now (us), quota used, 1 when refused by the quota}.
TAKE_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local quota = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local used = 0
if quota > 0 then
  used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= quota then
    return {0, tat - now, used, 1}
  end
  cost = math.min(cost, quota - used)
end
local fits = math.floor((now + interval * capacity - tat) / interval)
local granted = math.max(0, math.min(cost, fits))
if granted > 0 then
  tat = tat + granted * interval
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
  if quota > 0 then
    used = redis.call('INCRBY', KEYS[2], granted)
    if used == granted then
      redis.call('PEXPIRE', KEYS[2], ARGV[6])
    end
  end
end
return {granted, tat - now, used, 0}
"""
