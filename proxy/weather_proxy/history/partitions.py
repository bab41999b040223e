"""The daily partitions of the ``requests`` table (declarative RANGE partitioning on ``time``).

A partition holds one UTC day, ``[D 00:00Z, D+1 00:00Z)``, and is named ``requests_YYYYMMDD``,
so its day is read back from its name. Partitions are created ahead (today and tomorrow, by the
maintenance task) and on demand by the writer for a day it has not seen; retention drops whole
partitions, which frees their space at once, unlike deleting rows.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

import psycopg
from psycopg import sql

from weather_proxy.history import migrations

PREFIX = "requests_"
_NAME = re.compile(r"^requests_(\d{8})$")


def name(day: datetime.date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_of(table: str) -> datetime.date | None:
    """The day a partition's name stands for (None for any other table)."""
    match = _NAME.match(table)
    if match is None:
        return None
    return datetime.datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=datetime.UTC).date()


def _bound(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)


async def existing(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[datetime.date]:
    """The days that have a partition, oldest first."""
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'requests'::regclass"
    )
    days = [day_of(str(row[0])) for row in await cur.fetchall()]
    return sorted(day for day in days if day is not None)


async def ensure(
    conn: psycopg.AsyncConnection[tuple[object, ...]], days: Iterable[datetime.date]
) -> list[str]:
    """Create the partitions of ``days`` that are missing; returns the names created.

    Under a transaction-level advisory lock: processes creating the same day take turns, and
    the second finds it there (``IF NOT EXISTS`` alone still races in the catalog).
    """
    created = []
    for day in sorted(set(days)):
        table = name(day)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.PARTITIONS_LOCK,))
            cur = await conn.execute("SELECT to_regclass(%s) IS NULL", (table,))
            row = await cur.fetchone()
            if row is None or not row[0]:
                continue
            await conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF requests FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(table),
                    sql.Literal(_bound(day)),
                    sql.Literal(_bound(day + datetime.timedelta(days=1))),
                )
            )
        created.append(table)
    return created


async def drop_before(
    conn: psycopg.AsyncConnection[tuple[object, ...]], first_kept: datetime.date
) -> list[str]:
    """Drop the partitions of the days before ``first_kept``; returns the names dropped."""
    dropped = []
    for day in await existing(conn):
        if day >= first_kept:
            break
        table = name(day)
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        dropped.append(table)
    return dropped
