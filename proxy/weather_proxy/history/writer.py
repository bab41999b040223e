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

A batch can also fail because of one of its rows: a value the database refuses (SQLSTATE
classes 22 and 23: a NUL in a text column, a number out of range, a CHECK constraint) or one
the driver cannot send. Retried whole, such a batch would never pass: the queue would fill up
behind it and good rows would be dropped while readiness said the database was down. So a
refused batch is split in halves until each refused row stands alone; the good rows are written
(the upstream call counts on their own first), the refused ones dropped one by one and counted
(``weather_proxy_analytics_rows_rejected_total``). Each kind of refusal is logged once with its
SQLSTATE, column or constraint but never the row's values (the server's DETAIL and CONTEXT quote
the row), then summed up at most every ``REFUSAL_LOG_SECONDS``. The database answered, so it
stays up for readiness. A batch with one bad row costs about ``2 * log2(batchRows)`` more
transactions, once: nothing refused is retried.

At shutdown the rows still queued get one last flush, bounded by ``SHUTDOWN_FLUSH_SECONDS``
(the pod's grace period must also cover the rest of the shutdown); whatever is left is counted
as dropped and logged in one warning, never lost silently.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import re
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
SHUTDOWN_FLUSH_SECONDS = 2.0  # the last flush at shutdown; then what is still queued is counted lost
REFUSAL_LOG_SECONDS = 60.0  # a kind of refusal logged once, then summed up at most this often
ROW = "request row"
# A row's own fault, not the connection's: the server's classes 22 (data exception) and 23
# (integrity constraint violation), and what the driver or the conversion cannot encode.
REFUSED: tuple[type[BaseException], ...] = (
    psycopg.DataError,
    psycopg.IntegrityError,
    ValueError,
    TypeError,
    OverflowError,
)
_COLUMN_IN_CONTEXT = re.compile(r"\bcolumn (\w+)")
_QUOTED = re.compile(r'"([^"]*)"')

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
Prepared = tuple[Row, tuple[Any, ...]]  # a row and its columns
Calls = collections.Counter[tuple[int, str, str]]


def _round(value: float | None) -> float | None:
    """Coordinates kept to 0.1 degree (about 11 km): a place, not a person's address."""
    return None if value is None else round(value, 1)


def refusal(exc: BaseException) -> tuple[tuple[str, ...], str]:
    """A refusal's kind and a line about it, without the row's values.

    Only the server's primary message is kept, cut before its first ``": "`` (where PostgreSQL
    puts the offending value) and with any other quoted text but the names of the table, column,
    constraint or type masked (``value "70000" is out of range``); the column comes from the COPY
    context, whose text is dropped (it quotes the row), as is the DETAIL (``Failing row contains``).
    A Python error is named by its type only: its text may quote the value.
    """
    if not isinstance(exc, psycopg.Error):
        return (type(exc).__name__,), type(exc).__name__
    diag = exc.diag
    context = _COLUMN_IN_CONTEXT.search(diag.context or "")
    column = diag.column_name or (context.group(1) if context else None)
    names = {diag.schema_name, diag.table_name, diag.column_name, diag.constraint_name, diag.datatype_name}
    primary = (diag.message_primary or str(exc)).strip()
    message = primary.splitlines()[0].split(": ", 1)[0] if primary else ""
    message = _QUOTED.sub(lambda m: m.group(0) if m.group(1) in names else '"…"', message)
    kind = (type(exc).__name__, exc.sqlstate or "", column or "", diag.constraint_name or "")
    parts = [type(exc).__name__]
    if exc.sqlstate:
        parts.append(f"SQLSTATE {exc.sqlstate}")
    if column:
        parts.append(f"column {column}")
    if diag.constraint_name:
        parts.append(f"constraint {diag.constraint_name}")
    return kind, f"{', '.join(parts)}: {message}" if message else ", ".join(parts)


class _Refusals:
    """How many of one kind of refusal were not logged yet, and when that kind was last logged."""

    __slots__ = ("description", "logged_at", "unlogged")

    def __init__(self, description: str, now: float) -> None:
        self.description = description
        self.logged_at = now
        self.unlogged = 0


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
        # Epoch seconds (the history's clock): when a failed flush is retried and refusals summed up.
        self.clock = clock
        self.enabled = False  # set once the schema is in place
        self.written = 0
        self.dropped = 0
        self.rejected = 0
        self.last_error: str | None = None
        self._queue: collections.deque[Row] = collections.deque(maxlen=cfg.max_queued_rows)
        self._max_rows = cfg.max_queued_rows
        self._batch_rows = cfg.batch_rows
        self._calls: Calls = collections.Counter()
        self._wake = asyncio.Event()
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._known_days: set[datetime.date] = set()
        self._backoff = 0.0
        self._retry_at = 0.0
        self._dropped_reported = 0
        self._refusals: dict[tuple[str, ...], _Refusals] = {}
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
        """Write one batch (and the pending upstream counts); returns the rows taken off the queue.

        A refused row is dropped alone (``_split``), the others written. Raises when the database
        fails (``database.ERRORS``): what was not written yet goes back to the queue.
        """
        if not self._queue and not self._calls:
            return 0
        batch = [self._queue.popleft() for _ in range(min(self._batch_rows, len(self._queue)))]
        calls, self._calls = self._calls, collections.Counter()
        # What is left to write, the next part on top: after a failure only these go back.
        parts: list[tuple[list[Prepared], Calls]] = [(self._prepare(batch), calls)]
        answered = False  # not when every row was refused before reaching the database
        refused = False
        try:
            while parts:
                rows, part_calls = parts[-1]
                if not rows and not part_calls:
                    parts.pop()
                    continue
                try:
                    await self._write(rows, part_calls)
                except REFUSED as exc:
                    if not refused:  # a day's partition may have been dropped since we saw it
                        self._known_days.clear()
                    answered = refused = True
                    parts.pop()
                    parts.extend(self._split(rows, part_calls, exc))
                    continue
                answered = True
                parts.pop()
                if rows:
                    self.written += len(rows)
                    self.metrics.analytics_rows_written.inc(len(rows))
        except BaseException as exc:
            left: Calls = collections.Counter()
            for _, part_calls in parts:
                left.update(part_calls)
            self._give_back([row for rows, _ in reversed(parts) for row, _ in rows], left)
            await self._drop_connection()
            if isinstance(exc, database.ERRORS):
                self.db.failed(exc)
            raise
        if answered:
            self.db.ok()
        return len(batch)

    def _prepare(self, batch: list[Row]) -> list[Prepared]:
        """The rows with their columns; a row that cannot be converted is refused here."""
        prepared = []
        for row in batch:
            try:
                prepared.append((row, columns(row)))
            except Exception as exc:  # whatever the cause, it is this row's alone
                self._refused(ROW, exc)
        return prepared

    async def _write(self, rows: list[Prepared], calls: Calls) -> None:
        """Rows and upstream counts in one transaction (partitions first, outside it)."""
        async with asyncio.timeout(self.db.wait_seconds):
            conn = await self._connection()
            days = {values[0].date() for _, values in rows} - self._known_days
            if days:
                await partitions.ensure(conn, days)
                self._known_days |= days
            async with conn.transaction():
                if rows:
                    async with conn.cursor().copy(COPY_SQL) as copy:
                        for _, values in rows:
                            await copy.write_row(values)
                if calls:
                    async with conn.cursor() as cur:
                        await cur.executemany(
                            UPSERT_CALLS_SQL,
                            [
                                (datetime.datetime.fromtimestamp(m * 60, datetime.UTC), e, o, n)
                                for (m, e, o), n in calls.items()
                            ],
                        )

    def _split(
        self, rows: list[Prepared], calls: Calls, exc: BaseException
    ) -> list[tuple[list[Prepared], Calls]]:
        """The parts to write instead of a refused one (to push on the stack: the first part last)."""
        if rows and calls:  # the counts alone first: a refused row must not take them along
            return [(rows, collections.Counter()), ([], calls)]
        if len(rows) > 1:
            half = len(rows) // 2
            return [(rows[half:], collections.Counter()), (rows[:half], collections.Counter())]
        self._refused(ROW if rows else "upstream call counts", exc)
        return []

    def _refused(self, what: str, exc: BaseException) -> None:
        """Drop one refused row (or the upstream counts): counted, logged once per kind."""
        if what == ROW:
            self.rejected += 1
            self.metrics.analytics_rows_rejected.inc()
        kind, description = refusal(exc)
        seen = self._refusals.get((what, *kind))
        if seen is None:
            self._refusals[(what, *kind)] = _Refusals(description, self.clock())
            log.warning(
                "analytics %s refused by the database and dropped (%s); more of this kind are "
                "summed up at most every %.0f s",
                what,
                description,
                REFUSAL_LOG_SECONDS,
            )
        else:
            seen.unlogged += 1

    def _log_refusals(self, everything: bool = False) -> None:
        """Sum up the refusals not logged yet, of the kinds last logged long enough ago."""
        now = self.clock()
        for (what, *_), seen in self._refusals.items():
            if seen.unlogged and (everything or now - seen.logged_at >= REFUSAL_LOG_SECONDS):
                log.warning(
                    "analytics: %d more %s refused by the database and dropped (%s)",
                    seen.unlogged,
                    "request rows" if what == ROW else what,
                    seen.description,
                )
                seen.unlogged = 0
                seen.logged_at = now

    def _give_back(self, batch: list[Row], calls: Calls) -> None:
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
        self._log_refusals()
        self.metrics.analytics_queue_rows.set(len(self._queue))
        if self.dropped > self._dropped_reported:
            self.metrics.analytics_rows_dropped.inc(self.dropped - self._dropped_reported)
            self._dropped_reported = self.dropped

    async def flush_due(self) -> None:
        """Flush what waits, full batches back to back; back off after a failure."""
        if not self.enabled or self.clock() < self._retry_at:
            return
        while True:
            try:
                taken = await self.flush()
            except database.ERRORS as exc:
                self.metrics.analytics_flush_failures.inc()
                self.last_error = database.describe(exc)
                doubled = max(self.cfg.flush_interval_seconds, self._backoff * 2)
                self._backoff = min(MAX_BACKOFF_SECONDS, doubled)
                self._retry_at = self.clock() + self._backoff
                log.info("analytics rows not written, retrying in %.1f s: %s", self._backoff, self.last_error)
                return
            self.last_error = None
            self._backoff = 0.0
            if taken < self._batch_rows:
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
            "rejected": self.rejected,
            "lastError": self.last_error,
        }

    async def aclose(self, grace_seconds: float = SHUTDOWN_FLUSH_SECONDS) -> None:
        """One last bounded flush of what waits, then close the connection; what is left is counted."""
        if self.enabled and (self._queue or self._calls):
            with contextlib.suppress(*database.ERRORS):
                async with asyncio.timeout(grace_seconds):
                    while self._queue or self._calls:
                        if await self.flush() == 0:
                            break
        lost, calls = len(self._queue), sum(self._calls.values())
        if lost or calls:
            self._queue.clear()
            self._calls.clear()
            self.dropped += lost
            log.warning(
                "analytics: %d request rows (and %d upstream calls) not written at shutdown, dropped: %s",
                lost,
                calls,
                (self.last_error or self.db.last_error or "no time left")
                if self.enabled
                else "the schema was never ready",
            )
        self._log_refusals(everything=True)
        self._report()
        await self._drop_connection()
