"""The fleet's upstream call budget: calls per UTC minute, hour and day, counted before each call.

Open-Meteo's free tier allows 600 calls a minute, 5,000 an hour and 10,000 a day per client
IP, and a fleet behind one egress address shares that. Each upstream attempt first takes one
unit of every window that has a limit, in one Redis script (fixed windows aligned to the UTC
minute, hour and day, so every replica counts in the same keys); while Redis is down each
process counts alone. A call that would exceed a window is refused with
:class:`BudgetExhausted`, whose ``retry_after`` is the time to that window's end.

Calls are user-driven (a request's cache miss) or background (stale-while-revalidate
refreshes, cache warming; marked with :func:`background`). Background calls stop at
``backgroundPercent`` of each window, so what is left belongs to users.

Every admitted call is also tallied: in the current request's :class:`CallTally`
(``request_calls``, set by the weather route) and for the listeners (the usage history's
per-minute counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator

from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

PREFIX = "weather-proxy:budget:"
REQUEST, BACKGROUND = "request", "background"
# (name, seconds): fixed UTC windows; a day is 86,400 s since the epoch, so it starts at midnight UTC.
WINDOWS = (("minute", 60), ("hour", 3600), ("day", 86400))
REFRESH_SECONDS = 5.0

# KEYS: one counter per limited window; ARGV: per window its cap then its lifetime in seconds.
# Either every window takes the call or none does: {1, used...} or {0, index of the full window}.
SPEND_SCRIPT = """
for i = 1, #KEYS do
    local used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used + 1 > tonumber(ARGV[2 * i - 1]) then
        return {0, i}
    end
end
local out = {1}
for i = 1, #KEYS do
    local used = redis.call('INCR', KEYS[i])
    if used == 1 then
        redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
    end
    out[#out + 1] = used
end
return out
"""

origin: contextvars.ContextVar[str] = contextvars.ContextVar("upstream_origin", default=REQUEST)


@dataclasses.dataclass(slots=True)
class CallTally:
    """Upstream calls one request made (the tasks it started share the object)."""

    geocoding: int = 0
    forecast: int = 0


request_calls: contextvars.ContextVar[CallTally | None] = contextvars.ContextVar(
    "upstream_request_calls", default=None
)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Mark the upstream calls made inside (and by tasks started inside) as background ones."""
    token = origin.set(BACKGROUND)
    try:
        yield
    finally:
        origin.reset(token)


class BudgetExhausted(Exception):
    """A window of the upstream budget is spent: no call was made."""

    def __init__(self, window: str, retry_after: int, by_background: bool) -> None:
        super().__init__(f"upstream budget per {window} spent")
        self.window = window
        self.retry_after = retry_after
        self.by_background = by_background  # refused at the background share, not at the limit


def _limits(cfg: config_mod.Budget) -> list[tuple[str, int, int]]:
    """(window, seconds, limit) of each window that has a limit."""
    limits = {"minute": cfg.per_minute, "hour": cfg.per_hour, "day": cfg.per_day}
    out = []
    for name, seconds in WINDOWS:
        limit = limits[name]
        if limit is not None:
            out.append((name, seconds, limit))
    return out


def _cap(limit: int, cfg: config_mod.Budget, call_origin: str) -> int:
    return limit if call_origin == REQUEST else limit * cfg.background_percent // 100


def _retry_after(seconds: int, now: float) -> int:
    return max(1, int(seconds - now % seconds + 0.999))


class UpstreamBudget:
    """Counts upstream calls fleet-wide (Redis) or per process, and refuses those over a window."""

    def __init__(
        self,
        budget: Callable[[], config_mod.Budget],
        link: redis_link.RedisLink,
        metrics: metrics_mod.Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._budget = budget  # read per call: the budget reloads live
        self.link = link
        self.metrics = metrics
        self.clock = clock
        self.listeners: list[Callable[[str, str, float], None]] = []  # (endpoint, origin, time)
        # window -> (window index, calls counted): the fleet's as last seen, or this process's alone.
        self._seen: dict[str, tuple[int, int]] = {}
        self._local: dict[str, tuple[int, int]] = {}
        self._script = link.client.register_script(SPEND_SCRIPT) if link.client is not None else None
        metrics.on_render(self._show_used)

    def _show_used(self) -> None:
        for name, _ in WINDOWS:
            self.metrics.upstream_budget_used.labels(name).set(self.used_ratio(name))

    def used(self, window: str) -> int:
        """Calls counted in the current ``window`` (the fleet's as last seen when Redis answers)."""
        seconds = dict(WINDOWS)[window]
        index, used = self._seen.get(window, (-1, 0))
        return used if index == int(self.clock() // seconds) else 0

    def used_ratio(self, window: str) -> float:
        """Share of ``window``'s limit used (0 when the window has no limit)."""
        limit = {name: lim for name, _, lim in _limits(self._budget())}.get(window)
        return self.used(window) / limit if limit else 0.0

    def as_json(self) -> dict[str, dict[str, int | None]]:
        cfg = self._budget()
        limits = {"minute": cfg.per_minute, "hour": cfg.per_hour, "day": cfg.per_day}
        return {name: {"used": self.used(name), "limit": limits[name]} for name, _ in WINDOWS}

    async def spend(self, endpoint: str) -> None:
        """Take one call of every limited window, or raise BudgetExhausted taking none."""
        cfg = self._budget()
        call_origin = origin.get()
        now = self.clock()
        limits = _limits(cfg)
        if limits:
            refused = await self._take(limits, cfg, call_origin, now)
            if refused is not None:
                name, seconds = refused
                self.metrics.upstream_budget_exhausted.labels(name, call_origin).inc()
                raise BudgetExhausted(name, _retry_after(seconds, now), call_origin == BACKGROUND)
        tally = request_calls.get()
        if tally is not None:
            if endpoint == "geocoding":
                tally.geocoding += 1
            else:
                tally.forecast += 1
        for listener in self.listeners:
            listener(endpoint, call_origin, now)

    async def _take(
        self, limits: list[tuple[str, int, int]], cfg: config_mod.Budget, call_origin: str, now: float
    ) -> tuple[str, int] | None:
        """None when taken, else the (window, seconds) that is full."""
        indexes = [int(now // seconds) for _, seconds, _ in limits]
        if self._script is not None and self.link.usable:
            keys = [f"{PREFIX}{name}:{index}" for (name, _, _), index in zip(limits, indexes, strict=True)]
            args: list[int] = []
            for _, seconds, limit in limits:
                args += [_cap(limit, cfg, call_origin), seconds + 60]
            try:
                reply = await self._script(keys=keys, args=args)
            except redis_link.ERRORS as exc:
                self.link.failed(exc)
            else:
                self.link.ok()
                if int(reply[0]) == 0:
                    name, seconds, _ = limits[int(reply[1]) - 1]
                    return name, seconds
                for (name, _, _), index, used in zip(limits, indexes, reply[1:], strict=True):
                    self._seen[name] = (index, int(used))
                return None
        return self._take_locally(limits, cfg, call_origin, indexes)

    def _take_locally(
        self, limits: list[tuple[str, int, int]], cfg: config_mod.Budget, call_origin: str, indexes: list[int]
    ) -> tuple[str, int] | None:
        counts = []
        for (name, seconds, limit), index in zip(limits, indexes, strict=True):
            local_index, used = self._local.get(name, (index, 0))
            used = used if local_index == index else 0
            if used + 1 > _cap(limit, cfg, call_origin):
                return name, seconds
            counts.append((name, index, used + 1))
        for name, index, used in counts:
            self._local[name] = (index, used)
            self._seen[name] = (index, used)
        return None

    async def refresh(self) -> None:
        """Read the fleet's counts (for the gauge and readiness, between this process's own calls)."""
        if self._script is None or not self.link.usable:
            return
        assert self.link.client is not None
        now = self.clock()
        windows = [(name, int(now // seconds)) for name, seconds in WINDOWS]
        try:
            values = await self.link.client.mget([f"{PREFIX}{name}:{index}" for name, index in windows])
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            return
        for (name, index), value in zip(windows, values, strict=True):
            self._seen[name] = (index, int(value or 0))

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_SECONDS)
