"""The request rows' writer: a bounded queue in memory, emptied in batches by a background task.

A request only appends a tuple to a ``deque`` (well under a microsecond, no I/O, nothing
awaited); the conversion to columns happens in the flush. The flush runs every
``flushIntervalSeconds``, or as soon as ``batchRows`` rows wait, and writes one batch with
one ``COPY`` in one transaction, together with the per-minute upstream call counts.

When the database is slow or down nothing waits for it: the queue keeps the newest
``maxQueuedRows`` rows and drops the oldest, counting them
(``weather_proxy_analytics_rows_dropped_total``, and ``/health/ready``); a failed batch goes
back to the front of the queue as far as there is room. Reconnects back off up to
``MAX_BACKOFF_SECONDS``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg

from weather_proxy import config as config_mod
from weather_proxy.history import database, partitions
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import budget as budget_mod
from weather_proxy.upstream import client as upstream

log = logging.getLogger(__name__)

COLUMNS = (
    "time",
    "key_id",
    "route",
    "location_id",
    "location_name",
    "country",
    "latitude",
    "longitude",
    "status",
    "cache_status",
    "latency_ms",
    "upstream_geocoding",
    "upstream_forecast",
)
COPY_SQL = f"COPY requests ({', '.join(COLUMNS)}) FROM STDIN"
UPSERT_CALLS_SQL = (
    "INSERT INTO upstream_calls (minute, endpoint, origin, calls) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (minute, endpoint, origin) DO UPDATE SET calls = upstream_calls.calls + EXCLUDED.calls"
)
MAX_BACKOFF_SECONDS = 5.0
MAX_CALL_MINUTES = 50_000  # (minute, endpoint, origin) counts kept while the database is away

# What a request leaves in the queue: (epoch seconds, key id, route template, Location | None,
# (lat, lon) | None, HTTP status, cache status | None, latency seconds, CallTally | None).
Row = tuple[
    float,
    str | None,
    str,
    upstream.Location | None,
    tuple[float, float] | None,
    int,
    str | None,
    float,
    budget_mod.CallTally | None,
]


def _round(value: float | None) -> float | None:
    """Coordinates kept to 0.1 degree (about 11 km): a place, not a person's address."""
    return None if value is None else round(value, 1)


def columns(row: Row) -> tuple[Any, ...]:
    """The database columns of a queued row (COLUMNS order)."""
    when, key_id, route, location, coordinates, status, cache, latency, tally = row
    lat = lon = None
    location_id = name = country = None
    if location is not None:
        location_id, name, country = location.id, location.name, location.country
        lat, lon = location.latitude, location.longitude
    elif coordinates is not None:
        lat, lon = coordinates
    return (
        datetime.datetime.fromtimestamp(when, datetime.UTC),
        key_id,
        route,
        location_id,
        name,
        country,
        _round(lat),
        _round(lon),
        status,
        cache,
        round(latency * 1000.0, 3),
        tally.geocoding if tally is not None else 0,
        tally.forecast if tally is not None else 0,
    )


class RequestWriter:
    """Queues request rows and upstream call counts; writes them in batches."""

    def __init__(
        self,
        db: database.Database,
        cfg: config_mod.AnalyticsWriter,
        metrics: metrics_mod.Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.cfg = cfg
        self.metrics = metrics
        self.clock = clock
        self.enabled = False  # set once the schema is in place
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._queue: collections.deque[Row] = collections.deque(maxlen=cfg.max_queued_rows)
        self._max_rows = cfg.max_queued_rows
        self._batch_rows = cfg.batch_rows
        self._calls: collections.Counter[tuple[int, str, str]] = collections.Counter()
        self._wake = asyncio.Event()
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._known_days: set[datetime.date] = set()
        self._backoff = 0.0
        self._retry_at = 0.0
        self._dropped_reported = 0
        self._stopping = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    def record(self, row: Row) -> None:
        """Queue one request's row (the hot path: no I/O; the oldest row goes when full)."""
        queue = self._queue
        if len(queue) >= self._max_rows:
            self.dropped += 1
        queue.append(row)
        if len(queue) >= self._batch_rows:
            self._wake.set()

    def count_upstream(self, endpoint: str, call_origin: str, when: float) -> None:
        """Count one upstream call in its minute (a listener of the upstream budget)."""
        key = (int(when // 60), endpoint, call_origin)
        if key in self._calls or len(self._calls) < MAX_CALL_MINUTES:
            self._calls[key] += 1

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = await self.db.connect()
            self._known_days.clear()
        return self._conn

    async def flush(self) -> int:
        """Write one batch (and the pending upstream counts); the rows written. Raises on failure."""
        if not self._queue and not self._calls:
            return 0
        batch = [self._queue.popleft() for _ in range(min(self._batch_rows, len(self._queue)))]
        calls, self._calls = self._calls, collections.Counter()
        try:
            async with asyncio.timeout(self.db.wait_seconds):
                conn = await self._connection()
                rows = [columns(row) for row in batch]
                days = {row[0].date() for row in rows} - self._known_days
                if days:
                    await partitions.ensure(conn, days)
                    self._known_days |= days
                async with conn.transaction():
                    if rows:
                        async with conn.cursor().copy(COPY_SQL) as copy:
                            for row in rows:
                                await copy.write_row(row)
                    if calls:
                        async with conn.cursor() as cur:
                            await cur.executemany(
                                UPSERT_CALLS_SQL,
                                [
                                    (datetime.datetime.fromtimestamp(m * 60, datetime.UTC), e, o, n)
                                    for (m, e, o), n in calls.items()
                                ],
                            )
        except BaseException as exc:
            self._give_back(batch, calls)
            await self._drop_connection()
            if isinstance(exc, database.ERRORS):
                self.db.failed(exc)
            raise
        self.db.ok()
        self.written += len(batch)
        self.metrics.analytics_rows_written.inc(len(batch))
        return len(batch)

    def _give_back(self, batch: list[Row], calls: collections.Counter[tuple[int, str, str]]) -> None:
        """A failed batch goes back to the front, as far as newer rows left room; the rest is dropped."""
        room = self._max_rows - len(self._queue)
        keep = batch[len(batch) - room :] if room < len(batch) else batch
        self.dropped += len(batch) - len(keep)
        self._queue.extendleft(reversed(keep))
        for key, n in calls.items():
            if key in self._calls or len(self._calls) < MAX_CALL_MINUTES:
                self._calls[key] += n

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await database.close_quietly(conn)

    def _report(self) -> None:
        self.metrics.analytics_queue_rows.set(len(self._queue))
        if self.dropped > self._dropped_reported:
            self.metrics.analytics_rows_dropped.inc(self.dropped - self._dropped_reported)
            self._dropped_reported = self.dropped

    async def flush_due(self) -> None:
        """Flush what waits, full batches back to back; back off after a failure."""
        if not self.enabled or time.monotonic() < self._retry_at:
            return
        while True:
            try:
                written = await self.flush()
            except database.ERRORS as exc:
                self.metrics.analytics_flush_failures.inc()
                self.last_error = database.describe(exc)
                doubled = max(self.cfg.flush_interval_seconds, self._backoff * 2)
                self._backoff = min(MAX_BACKOFF_SECONDS, doubled)
                self._retry_at = time.monotonic() + self._backoff
                log.info("analytics rows not written, retrying in %.1f s: %s", self._backoff, self.last_error)
                return
            self.last_error = None
            self._backoff = 0.0
            if written < self._batch_rows:
                return

    def stop(self) -> None:
        """Make ``run`` return after the flush in progress (a cancelled COPY would be lost work)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.flush_interval_seconds):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            await self.flush_due()
            self._report()

    def as_json(self) -> dict[str, Any]:
        return {
            "queued": len(self._queue),
            "written": self.written,
            "dropped": self.dropped,
            "lastError": self.last_error,
        }

    async def aclose(self, grace_seconds: float = 2.0) -> None:
        """One last bounded flush of what waits, then close the connection."""
        if self.enabled and (self._queue or self._calls):
            with contextlib.suppress(*database.ERRORS):
                async with asyncio.timeout(grace_seconds):
                    while self._queue or self._calls:
                        if await self.flush() == 0:
                            break
        self._report()
        await self._drop_connection()
