"""The usage history as the app holds it: schema, writer, maintenance and reads, in the background.

Started by the app's lifespan as one task: it applies the migrations (retrying with a backoff
while the database is away: the proxy serves weather meanwhile, the rows wait in the queue),
then runs the writer, the maintenance timer and the key lifecycle audit (``key_events``: what
changed in the key ring, recorded in the background after each change, :meth:`keys_changed`).
Reads for the routes go through :meth:`read`, which bounds them in time and turns any failure
into ``DatabaseUnavailable`` (503).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from weather_proxy import config as config_mod
from weather_proxy.history import database, key_events, maintenance, migrations, queries, writer
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

T = TypeVar("T")
MIGRATE_RETRY_MAX_SECONDS = 10.0
MAINTENANCE_RETRY_SECONDS = 60.0
KEY_EVENTS_RETRY_SECONDS = 5.0


class UsageHistory:
    """One process's link to the analytics database."""

    def __init__(
        self,
        cfg: config_mod.Analytics,
        password: str | None,
        metrics: metrics_mod.Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.db = database.Database(cfg.database, password, metrics)
        self.writer = writer.RequestWriter(self.db, cfg.writer, metrics, clock)
        self.migrated = False
        self.last_maintenance: maintenance.Report | None = None
        self._writing: asyncio.Task[None] | None = None
        self._keys: Mapping[str, config_mod.KeysFile] | None = None
        self._keys_changed = asyncio.Event()
        self.key_events_recorded = 0

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)

    async def prepare(self) -> bool:
        """Apply the migrations once; False (and the reason in ``db.last_error``) when it failed."""
        try:
            async with asyncio.timeout(self.db.wait_seconds * 2):
                async with self.db.connection() as conn:
                    await migrations.apply(conn)
        except (database.DatabaseUnavailable, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self.db.failed(exc)
            log.info("analytics schema not ready: %s", self.db.last_error)
            return False
        self.migrated = True
        self.writer.enabled = True
        return True

    async def maintain_once(self) -> maintenance.Report:
        """Partitions ahead and retention (one process of the fleet at a time)."""
        report = await self.read(lambda conn: maintenance.run_once(conn, self.cfg.retention_days, self.now()))
        self.last_maintenance = report
        return report

    def keys_changed(self, parts: Mapping[str, config_mod.KeysFile]) -> None:
        """The key ring changed: ``parts`` are its sources (Secret or file name -> keys file).

        Never waits: the latest view is recorded in the background (an earlier one not yet
        recorded is superseded; what changed in between is in the latest one too).
        """
        self._keys = dict(parts)
        self._keys_changed.set()

    async def record_keys_once(self) -> list[key_events.Event]:
        """Record the latest key view now (DatabaseUnavailable when the database is away)."""
        parts = self._keys
        if parts is None:
            return []
        events = await self.read(lambda conn: key_events.record(conn, parts, self.now()))
        self.key_events_recorded += len(events)
        return events

    async def erase_key(self, key_id: str) -> int:
        return await self.read(lambda conn: maintenance.erase_key(conn, key_id))

    async def read(self, query: Callable[[queries.Connection], Awaitable[T]]) -> T:
        """Run ``query`` on a connection, bounded in time; DatabaseUnavailable when it cannot."""
        if not self.migrated:
            raise database.DatabaseUnavailable(self.db.last_error or "schema not ready")
        try:
            async with asyncio.timeout(self.db.wait_seconds):
                async with self.db.connection() as conn:
                    return await query(conn)
        except TimeoutError as exc:
            self.db.failed(exc)
            raise database.DatabaseUnavailable("the analytics database did not answer in time") from exc

    async def run(self) -> None:
        delay = 0.5
        while not await self.prepare():
            await asyncio.sleep(delay)
            delay = min(MIGRATE_RETRY_MAX_SECONDS, delay * 2)
        loop = asyncio.get_running_loop()
        background = [
            loop.create_task(self._maintain(), name="usage-history:maintenance"),
            loop.create_task(self._audit_keys(), name="usage-history:key-events"),
        ]
        self._writing = asyncio.current_task()
        try:
            await self.writer.run()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let the writer finish the batch in progress (then the app cancels what is left)."""
        self.writer.stop()
        if self._writing is not None and not self._writing.done():
            await asyncio.wait({self._writing}, timeout=grace_seconds)

    async def _maintain(self) -> None:
        while True:
            try:
                await self.maintain_once()
            except database.DatabaseUnavailable as exc:
                log.info("analytics maintenance postponed: %s", exc)
                await asyncio.sleep(MAINTENANCE_RETRY_SECONDS)
                continue
            await asyncio.sleep(maintenance.INTERVAL_SECONDS)

    async def _audit_keys(self) -> None:
        while True:
            await self._keys_changed.wait()
            self._keys_changed.clear()
            try:
                await self.record_keys_once()
            except database.DatabaseUnavailable as exc:
                log.info("key lifecycle audit postponed: %s", exc)
                await asyncio.sleep(KEY_EVENTS_RETRY_SECONDS)
                self._keys_changed.set()

    def as_json(self) -> dict[str, Any]:
        """The readiness detail: never a reason to stop serving, the weather does not need it."""
        last = self.last_maintenance
        return {
            "configured": True,
            "up": self.db.up,
            "error": self.db.last_error,
            "schemaReady": self.migrated,
            "retentionDays": self.cfg.retention_days,
            "writer": self.writer.as_json(),
            "maintenance": None if last is None else {"ran": last.ran, "dropped": list(last.dropped)},
        }

    async def aclose(self) -> None:
        await self.writer.aclose()
        await self.db.aclose()
