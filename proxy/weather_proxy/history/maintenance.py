"""Retention, partitions ahead and erasure: what keeps the history bounded and lawful.

Every proxy runs :func:`run_once` on a timer; a transaction-level advisory lock lets one
process of the fleet do the work while the others skip, and because each step is idempotent
a skipped or repeated run changes nothing. Retention keeps the last ``retentionDays`` whole
UTC days before today (and today): older partitions are dropped, older per-minute upstream
counts and key lifecycle events deleted. :func:`erase_key` deletes one key id's rows, for a deleted ApiKey
(``eraseOnKeyDelete``); the operator runs it (``python -m weather_proxy.history erase``).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging

import psycopg

from weather_proxy.history import key_events, migrations, partitions

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0  # partitions a day ahead and a daily retention both fit an hourly run


@dataclasses.dataclass(frozen=True)
class Report:
    """What one run did; ``ran`` is False when another process held the lock."""

    ran: bool
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    upstream_rows_deleted: int = 0


def first_kept_day(today: datetime.date, retention_days: int) -> datetime.date:
    """The oldest day whose rows are kept: ``retention_days`` days before ``today``."""
    return today - datetime.timedelta(days=retention_days)


def _midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)


async def run_once(
    conn: psycopg.AsyncConnection[tuple[object, ...]], retention_days: int, now: datetime.datetime
) -> Report:
    """Partitions for today and tomorrow, retention; skipped when another process is at it."""
    today = now.astimezone(datetime.UTC).date()
    first_kept = first_kept_day(today, retention_days)
    async with conn.transaction():
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (migrations.MAINTENANCE_LOCK,))
        row = await cur.fetchone()
        if row is None or not row[0]:
            return Report(ran=False)
        created = await partitions.ensure(conn, [today, today + datetime.timedelta(days=1)])
        dropped = await partitions.drop_before(conn, first_kept)
        cur = await conn.execute("DELETE FROM upstream_calls WHERE minute < %s", (_midnight(first_kept),))
        deleted = cur.rowcount
        # The key lifecycle audit is kept as long as the requests it explains, and so is the last
        # recorded state of a key that is gone (a present key's state is what the next record
        # compares with, whatever its age).
        await conn.execute("DELETE FROM key_events WHERE time < %s", (_midnight(first_kept),))
        await conn.execute(
            "DELETE FROM key_states WHERE NOT present AND updated_at < %s", (_midnight(first_kept),)
        )
    if created or dropped or deleted:
        log.info(
            "analytics maintenance",
            extra={"created": created, "dropped": dropped, "upstreamRowsDeleted": deleted},
        )
    return Report(True, tuple(created), tuple(dropped), deleted)


async def erase_key(conn: psycopg.AsyncConnection[tuple[object, ...]], key_id: str) -> int:
    """Delete every request row of ``key_id`` (all partitions); returns the number of rows.

    Rows recorded under the id of a rotation's grace entry (``<id>#previous``) are the key's too.
    """
    cur = await conn.execute(
        "DELETE FROM requests WHERE key_id = %s OR key_id = %s",
        (key_id, key_id + key_events.PREVIOUS_SUFFIX),
    )
    log.info("analytics: erased the rows of a key", extra={"keyId": key_id, "rows": cur.rowcount})
    return cur.rowcount
