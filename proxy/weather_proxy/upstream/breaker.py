"""The upstream circuit breaker (pybreaker) and its fleet-wide state in Redis.

pybreaker's decorator never opens on an ``async def`` (pybreaker#7), so callers
use ``with breaker.calling():`` around the awaited call: the context manager
runs the block as the guarded operation and sees its exception.

pybreaker's Redis storage is synchronous, so the fleet state is synced here
without blocking the loop: a local trip publishes ``SET <key> <opened_at> PX
<reset timeout>``; a background task polls the key every second and opens the
local breaker (with the same opened_at) when another replica tripped; when the
key disappears (expired or deleted by a replica whose trial call succeeded),
a breaker opened by the fleet goes half-open: one trial call per replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Iterator
from typing import Any

import pybreaker
import redis.asyncio as aioredis
import redis.exceptions

from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

FLEET_KEY = "weather-proxy:breaker:upstream"


def fleet_key(scope: str | None = None) -> str:
    """The Redis key of the breaker state the replicas of ``scope`` share (None: the whole fleet)."""
    return FLEET_KEY if not scope else f"{FLEET_KEY}:{scope}"


POLL_SECONDS = 1.0


class TransientFailure(Exception):
    """An upstream failure worth retrying and counted by the breaker (429, 5xx, timeout, I/O)."""


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: UpstreamBreaker) -> None:
        self.owner = owner

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.owner._on_state_change(old_state.name if old_state else None, new_state.name)


class UpstreamBreaker:
    """A pybreaker breaker counting transient upstream failures, optionally fleet-synced."""

    def __init__(
        self, cfg: config_mod.CircuitBreaker, metrics: metrics_mod.Metrics, scope: str | None = None
    ) -> None:
        self.metrics = metrics
        self.key = fleet_key(scope)
        self.storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=cfg.failure_threshold,
            reset_timeout=cfg.reset_timeout_seconds,
            exclude=[lambda exc: not isinstance(exc, TransientFailure)],
            listeners=[_Listener(self)],
            state_storage=self.storage,
            name="open-meteo",
        )
        self.redis: aioredis.Redis | None = None
        self._from_fleet = False
        self._tasks: set[asyncio.Task[None]] = set()
        metrics.set_breaker_state(self.state)

    @property
    def state(self) -> str:
        """closed | half-open | open."""
        return str(self.breaker.current_state)

    def rejects_now(self) -> bool:
        """True while the breaker is open and its reset timeout has not passed (a call is refused)."""
        opened_at = self.storage.opened_at
        if self.state != pybreaker.STATE_OPEN or opened_at is None:
            return False
        left = (opened_at - datetime.datetime.now(datetime.UTC)).total_seconds() + self.breaker.reset_timeout
        return left > 0

    def retry_after(self) -> int:
        """Seconds until an open breaker lets a trial call through (at least 1)."""
        opened_at = self.storage.opened_at
        if self.state != pybreaker.STATE_OPEN or opened_at is None:
            return 1
        left = (opened_at - datetime.datetime.now(datetime.UTC)).total_seconds() + self.breaker.reset_timeout
        return max(1, int(left + 0.999))

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """Guard one awaited call: ``with breaker.calling(): await ...``."""
        with self.breaker.calling():
            yield

    def reconfigure(self, cfg: config_mod.CircuitBreaker) -> None:
        self.breaker.fail_max = cfg.failure_threshold
        self.breaker.reset_timeout = cfg.reset_timeout_seconds

    # -- fleet sync ------------------------------------------------------------------

    def _on_state_change(self, old: str | None, new: str) -> None:
        self.metrics.set_breaker_state(new)
        log.warning("upstream circuit breaker %s -> %s", old, new)
        if self.redis is None:
            return
        if new == pybreaker.STATE_OPEN and not self._from_fleet:
            self._spawn(self._publish_open())
        elif new == pybreaker.STATE_CLOSED:
            self._from_fleet = False
            self._spawn(self._publish_closed())

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop: a sync caller (tests); nothing to publish to
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_open(self) -> None:
        assert self.redis is not None
        opened_at = self.storage.opened_at or datetime.datetime.now(datetime.UTC)
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await self.redis.set(
                self.key, repr(opened_at.timestamp()), px=int(self.breaker.reset_timeout * 1000)
            )

    async def _publish_closed(self) -> None:
        assert self.redis is not None
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await self.redis.delete(self.key)

    async def sync_once(self) -> None:
        """Apply the fleet state to the local breaker (one poll)."""
        if self.redis is None:
            return
        raw = await self.redis.get(self.key)
        state = self.state
        if raw is not None and state == pybreaker.STATE_CLOSED:
            opened_at = datetime.datetime.fromtimestamp(float(raw), datetime.UTC)
            self._from_fleet = True
            self.breaker.open()
            self.storage.opened_at = opened_at
            log.warning("upstream circuit breaker opened by another replica")
        elif raw is None and state == pybreaker.STATE_OPEN and self._from_fleet:
            self._from_fleet = False
            self.breaker.half_open()

    async def run_sync(self) -> None:
        """Poll the fleet state until cancelled; Redis errors are ignored (local state rules)."""
        while True:
            try:
                await self.sync_once()
            except (redis.exceptions.RedisError, OSError, ValueError) as exc:
                log.debug("breaker fleet sync failed: %s", exc)
            await asyncio.sleep(POLL_SECONDS)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
