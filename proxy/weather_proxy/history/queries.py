"""The reads behind ``/v1/usage?from=`` and ``/v1/analytics/*``: bounded by range, LIMIT and indexes.

Every query covers a :class:`Range` of whole UTC days, at most ``MAX_DAYS``; the planner
prunes the daily partitions outside it and reads the rest through ``requests_time`` (or
``requests_key_time`` for one key's history). Series (per day or hour) are dense: a period
without requests is there with zeros, so a chart needs no gap filling.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

import psycopg

MAX_DAYS = 366
MAX_TOP_CITIES = 100
MAX_COUNTRIES = 300
Granularity = Literal["day", "hour"]
Connection = psycopg.AsyncConnection[tuple[object, ...]]


@dataclasses.dataclass(frozen=True)
class Range:
    """UTC days ``first`` to ``last``, both included."""

    first: datetime.date
    last: datetime.date
    granularity: Granularity = "day"

    @property
    def start(self) -> datetime.datetime:
        return datetime.datetime(self.first.year, self.first.month, self.first.day, tzinfo=datetime.UTC)

    @property
    def end(self) -> datetime.datetime:
        """The instant after the range (midnight UTC after ``last``)."""
        after = self.last + datetime.timedelta(days=1)
        return datetime.datetime(after.year, after.month, after.day, tzinfo=datetime.UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def params(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "unit": self.granularity,
            "step": datetime.timedelta(days=1) if self.granularity == "day" else datetime.timedelta(hours=1),
        }


def iso(moment: Any) -> str:
    """A period's start as RFC 3339 UTC (``2026-12-01T00:00:00Z``)."""
    assert isinstance(moment, datetime.datetime)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value: object) -> int:
    return int(str(value)) if value is not None else 0


async def usage(conn: Connection, key_id: str, span: Range) -> list[dict[str, Any]]:
    """One key's requests, errors (status >= 400) and cache hits per period."""
    cur = await conn.execute(
        "WITH periods AS (SELECT generate_series(%(start)s::timestamptz,"
        " %(end)s::timestamptz - %(step)s::interval, %(step)s::interval) AS start),"
        " counts AS ("
        " SELECT date_trunc(%(unit)s, time) AS start, count(*) AS requests,"
        " count(*) FILTER (WHERE status >= 400) AS errors,"
        " count(*) FILTER (WHERE cache_status = 'hit') AS hits"
        " FROM requests WHERE key_id = %(key)s AND time >= %(start)s AND time < %(end)s GROUP BY 1)"
        " SELECT p.start, c.requests, c.errors, c.hits FROM periods p LEFT JOIN counts c USING (start)"
        " ORDER BY p.start",
        {**span.params(), "key": key_id},
    )
    return [
        {"start": iso(start), "requests": _int(n), "errors": _int(errors), "cacheHits": _int(hits)}
        for start, n, errors, hits in await cur.fetchall()
    ]


async def top_cities(conn: Connection, span: Range, limit: int) -> list[dict[str, Any]]:
    """The most requested places (by the geocoder's name and country)."""
    cur = await conn.execute(
        "SELECT location_name, country, count(*) FROM requests"
        " WHERE time >= %(start)s AND time < %(end)s AND location_name IS NOT NULL"
        " GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %(limit)s",
        {**span.params(), "limit": min(limit, MAX_TOP_CITIES)},
    )
    rows = await cur.fetchall()
    return [{"name": name, "country": country, "requests": _int(n)} for name, country, n in rows]


async def countries(conn: Connection, span: Range) -> list[dict[str, Any]]:
    """Requests per country of the place asked for."""
    cur = await conn.execute(
        "SELECT country, count(*) FROM requests"
        " WHERE time >= %(start)s AND time < %(end)s AND country IS NOT NULL"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %(limit)s",
        {**span.params(), "limit": MAX_COUNTRIES},
    )
    return [{"country": country, "requests": _int(n)} for country, n in await cur.fetchall()]


async def peak_hours(conn: Connection, span: Range) -> list[dict[str, Any]]:
    """Requests per (UTC weekday, Monday 0, and hour): all 168 cells."""
    cur = await conn.execute(
        "WITH cells AS (SELECT d AS weekday, h AS hour"
        " FROM generate_series(0, 6) d, generate_series(0, 23) h),"
        " counts AS (SELECT extract(isodow FROM time)::int - 1 AS weekday,"
        " extract(hour FROM time)::int AS hour, count(*) AS requests"
        " FROM requests WHERE time >= %(start)s AND time < %(end)s GROUP BY 1, 2)"
        " SELECT c.weekday, c.hour, n.requests FROM cells c LEFT JOIN counts n USING (weekday, hour)"
        " ORDER BY 1, 2",
        span.params(),
    )
    return [
        {"weekday": _int(weekday), "hour": _int(hour), "requests": _int(n)}
        for weekday, hour, n in await cur.fetchall()
    ]


async def cache(conn: Connection, span: Range) -> list[dict[str, Any]]:
    """Weather answers per period by cache status, and the share of hits."""
    cur = await conn.execute(
        "WITH periods AS (SELECT generate_series(%(start)s::timestamptz,"
        " %(end)s::timestamptz - %(step)s::interval, %(step)s::interval) AS start),"
        " counts AS ("
        " SELECT date_trunc(%(unit)s, time) AS start,"
        " count(*) FILTER (WHERE cache_status = 'hit') AS hits,"
        " count(*) FILTER (WHERE cache_status = 'miss') AS misses,"
        " count(*) FILTER (WHERE cache_status = 'stale') AS stale"
        " FROM requests WHERE time >= %(start)s AND time < %(end)s AND cache_status IS NOT NULL GROUP BY 1)"
        " SELECT p.start, c.hits, c.misses, c.stale FROM periods p LEFT JOIN counts c USING (start)"
        " ORDER BY p.start",
        span.params(),
    )
    out = []
    for start, hits, misses, stale in await cur.fetchall():
        h, m, s = _int(hits), _int(misses), _int(stale)
        total = h + m + s
        out.append(
            {
                "start": iso(start),
                "hits": h,
                "misses": m,
                "stale": s,
                "hitRatio": round(h / total, 4) if total else None,
            }
        )
    return out


async def upstream(conn: Connection, span: Range) -> list[dict[str, Any]]:
    """Open-Meteo calls per period (user-driven and background alike), by API."""
    cur = await conn.execute(
        "WITH periods AS (SELECT generate_series(%(start)s::timestamptz,"
        " %(end)s::timestamptz - %(step)s::interval, %(step)s::interval) AS start),"
        " counts AS ("
        " SELECT date_trunc(%(unit)s, minute) AS start,"
        " sum(calls) FILTER (WHERE endpoint = 'geocoding') AS geocode,"
        " sum(calls) FILTER (WHERE endpoint = 'forecast') AS forecast"
        " FROM upstream_calls WHERE minute >= %(start)s AND minute < %(end)s GROUP BY 1)"
        " SELECT p.start, c.geocode, c.forecast FROM periods p LEFT JOIN counts c USING (start)"
        " ORDER BY p.start",
        span.params(),
    )
    return [
        {"start": iso(start), "geocode": _int(geocode), "forecast": _int(forecast)}
        for start, geocode, forecast in await cur.fetchall()
    ]
