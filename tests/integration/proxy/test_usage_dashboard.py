"""The usage dashboard's SQL, every panel, against a real PostgreSQL after real traffic.

Requests go through the proxy app (its lifespan, writer and schema real; the Open-Meteo
emulator upstream) into the test's own database; then each panel's ``rawSql`` is expanded the
way Grafana's PostgreSQL data source does (``tests.support.grafana_sql``) and run on a session
whose time zone is *not* UTC (Grafana's need not be), and its rows are compared with what the
traffic implies. A panel without an expectation here fails the test: a new panel needs one.
"""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from devcluster import openmeteo as om
from testbed.postgres_server import AnalyticsDatabase
from tests.support import grafana_sql, history

pytestmark = [pytest.mark.integration]

REPO = pathlib.Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "manifests" / "monitoring" / "dashboards" / "weather-proxy-usage.json"
READER = {"X-API-Key": history.READER_KEY}
USER = {"X-API-Key": history.USER_KEY}
VARIABLES = {"top": "10", "budget_per_hour": "5000", "budget_per_day": "10000", "__interval": "1h"}

Rows = list[tuple[Any, ...]]


async def traffic(client: Any) -> None:
    """Paris 3 times (a miss, two hits) and once by coordinates, London, Berlin twice (other key),
    an unknown city (404) and a request without a key (401)."""
    for city, headers, status in (
        ("Paris", READER, 200),
        ("Paris", READER, 200),
        ("Paris", READER, 200),
        ("London", READER, 200),
        ("Berlin", USER, 200),
        ("Berlin", USER, 200),
        ("Nowhereville Xq", READER, 404),
    ):
        assert (await client.get("/v1/weather", params={"city": city}, headers=headers)).status_code == status
    coordinates = {"lat": 48.8534, "lon": 2.3488}
    assert (await client.get("/v1/weather", params=coordinates, headers=READER)).status_code == 200
    assert (await client.get("/v1/weather", params={"city": "Paris"})).status_code == 401


class Window:
    """The instants the traffic ran between (the peak-hours cell may straddle an hour)."""

    def __init__(self, start: datetime.datetime, end: datetime.datetime) -> None:
        self.start, self.end = start, end

    def cells(self) -> set[tuple[int, str]]:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        return {(t.hour, names[t.weekday()]) for t in (self.start, self.end)}


def check_top_cities(rows: Rows, window: Window) -> None:
    assert rows == [("Paris", "FR", 3), ("Berlin", "DE", 2), ("London", "GB", 1)]


def check_locations(rows: Rows, window: Window) -> None:
    # The coordinates request lands on Paris's rounded point; no name of its own.
    assert [(n, city) for _, _, n, city in rows] == [(4, "Paris"), (2, "Berlin"), (1, "London")]
    assert (rows[0][0], rows[0][1]) == pytest.approx((48.9, 2.3))
    for lat, lon, _, _ in rows:
        assert round(lat, 1) == pytest.approx(lat, abs=1e-5), "latitude rounded to 0.1°"
        assert round(lon, 1) == pytest.approx(lon, abs=1e-5), "longitude rounded to 0.1°"


def check_countries(rows: Rows, window: Window) -> None:
    assert rows == [("FR", 3), ("DE", 2), ("GB", 1)]


def check_peak_hours(rows: Rows, window: Window) -> None:
    assert [r[0] for r in rows] == list(range(24)), "every UTC hour, in order"
    columns = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    cells = {(r[0], day): n for r in rows for day, n in zip(columns, r[1:], strict=True)}
    assert sum(cells.values()) == 9, "every API request, errors included"
    assert {cell for cell, n in cells.items() if n} <= window.cells()


def check_cache_trend(rows: Rows, window: Window) -> None:
    # Weather answers with a cache status: Paris miss hit hit, London miss, Berlin miss hit,
    # the coordinates hit: 4 hits of 7. The 404 and 401 have none.
    buckets = [int(t) for t, _, _ in rows]
    assert all(b % 3600 == 0 for b in buckets), "epoch seconds of whole hours ($__timeGroup)"
    assert len(rows) in (1, 2)
    if len(rows) == 1:
        assert rows[0][1:] == pytest.approx((4 / 7, 0.0))
    assert all(0 <= hit <= 1 and stale == 0 for _, hit, stale in rows)


def check_per_key(rows: Rows, window: Window) -> None:
    summary = [r[:4] for r in rows]
    assert summary == [("weather/reader", 6, 1, 3), ("weather/user", 2, 0, 1), ("(anonymous)", 1, 1, 0)]
    second = datetime.timedelta(seconds=1)
    for _, _, _, _, latency, last in rows:
        assert latency >= 0
        assert window.start - second <= last <= window.end + second


def check_upstream_hourly(rows: Rows, window: Window) -> None:
    # Geocoding for Paris, London, Berlin and the unknown city; forecasts for the three found.
    assert sum(r[1] for r in rows) == 7
    assert all(r[2] == 0 for r in rows), "no background calls in this config"
    assert all(r[3] == 5000 for r in rows)
    assert all(int(r[0]) % 3600 == 0 for r in rows)


def check_upstream_daily(rows: Rows, window: Window) -> None:
    days = {window.start.date().isoformat(), window.end.date().isoformat()}
    assert {r[0] for r in rows} <= days
    assert sum(r[1] for r in rows) == pytest.approx(7 / 10000)


CHECKS: dict[str, Callable[[Rows, Window], None]] = {
    "Most requested cities": check_top_cities,
    "Requests by location": check_locations,
    "Requests by country": check_countries,
    "Peak hours heatmap (UTC hour by weekday)": check_peak_hours,
    "Cache efficiency trend": check_cache_trend,
    "Per-key usage": check_per_key,
    "Upstream calls per hour against the budget": check_upstream_hourly,
    "Upstream calls per day against the budget": check_upstream_daily,
}


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [p for p in dashboard["panels"] if p.get("targets")]


def test_every_panel_with_sql_has_an_expectation() -> None:
    assert sorted(p["title"] for p in panels()) == sorted(CHECKS)
    for panel in panels():
        for target in panel["targets"]:
            assert target["rawQuery"] is True
            assert target["datasource"] == {"type": "grafana-postgresql-datasource", "uid": "${datasource}"}


async def test_every_panel_returns_the_rows_the_traffic_implies(
    openmeteo: om.OpenMeteoEmulator, analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=history.analytics(analytics_database)
    )
    async with history.running(cfg, analytics_database.password) as (app, client):
        await history.schema_ready(app)
        start = datetime.datetime.now(datetime.UTC)
        await traffic(client)
        end = datetime.datetime.now(datetime.UTC)
        await history.written(app)
    window = Window(start, end)
    # The dashboard's range: the last day, as "now-24h" to "now" would give.
    time_from, time_to = end - datetime.timedelta(days=1), end + datetime.timedelta(minutes=1)
    conninfo = psycopg.conninfo.make_conninfo(analytics_database.url, password=analytics_database.password)
    ran = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'America/New_York'")  # Grafana's session need not be in UTC
        for panel in panels():
            for target in panel["targets"]:
                sql = grafana_sql.render(target["rawSql"], VARIABLES, time_from, time_to)
                assert "$" not in sql, sql
                rows = conn.execute(sql.encode()).fetchall()
                CHECKS[panel["title"]](rows, window)
                ran.append(panel["title"])
        # Outside the range, nothing: every panel filters on the dashboard's time.
        for panel in panels():
            for target in panel["targets"]:
                sql = grafana_sql.render(
                    target["rawSql"], VARIABLES, time_from - datetime.timedelta(days=30), time_from
                )
                rows = conn.execute(sql.encode()).fetchall()
                if panel["title"].startswith("Peak hours"):
                    assert all(not any(r[1:]) for r in rows)
                else:
                    assert rows == [], panel["title"]
    assert sorted(ran) == sorted(CHECKS)
