"""The usage history with traffic: one row per API request, /v1/usage?from=, every /v1/analytics/* route.

Real PostgreSQL, the Open-Meteo emulator, the app with its lifespan; each test has a database
of its own. Also: the routes without analytics (404) and with the database away (503), where
the weather routes answer as always.
"""

from __future__ import annotations

import datetime
import pathlib
from typing import Any

import pytest

from devcluster import openmeteo as om
from devcluster.processes import free_port
from testbed.postgres_server import AnalyticsDatabase
from tests.support import history

pytestmark = [pytest.mark.integration]

READER = {"X-API-Key": history.READER_KEY}
USER = {"X-API-Key": history.USER_KEY}
# peak-hours first: it counts every request, and the analytics requests are rows too (written in the
# background, so one asked earlier may or may not be counted by a later route).
ANALYTICS_ROUTES = ("peak-hours", "top-cities", "countries", "cache", "upstream")
PROBLEMS = "https://weatherproxy.dev/problems/"


def today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


async def traffic(client: Any) -> None:
    """Paris twice (a miss, then a hit), London, Berlin (user key), coordinates, an unknown city."""
    for city, headers in (("Paris", READER), ("Paris", READER), ("London", READER), ("Berlin", USER)):
        assert (await client.get("/v1/weather", params={"city": city}, headers=headers)).status_code == 200
    assert (
        await client.get("/v1/weather", params={"lat": 48.8534, "lon": 2.3488}, headers=READER)
    ).status_code == 200
    assert (
        await client.get("/v1/weather", params={"city": "Nowhereville Xq"}, headers=READER)
    ).status_code == 404
    assert (await client.get("/v1/weather", params={"city": "Paris"})).status_code == 401


async def test_every_api_request_leaves_a_row_with_the_key_id_never_the_key_or_the_address(
    openmeteo: om.OpenMeteoEmulator, analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=history.analytics(analytics_database)
    )
    async with history.running(cfg, analytics_database.password) as (app, client):
        await history.schema_ready(app)
        await traffic(client)
        assert (await client.get("/health/live")).status_code == 200  # not an API route: no row
        await history.written(app)
    rows = history.query(
        analytics_database,
        "SELECT key_id, route, location_id, location_name, country, latitude, longitude, status,"
        " cache_status, latency_ms, upstream_geocoding, upstream_forecast FROM requests ORDER BY time",
    )
    assert len(rows) == 7
    paris_miss, paris_hit, london, berlin, coordinates, unknown, keyless = rows
    assert paris_miss[:9] == (
        "weather/reader",
        "/v1/weather",
        paris_miss[2],
        "Paris",
        "FR",
        48.9,
        2.3,
        200,
        "miss",
    )
    assert isinstance(paris_miss[2], int)  # the geocoder's id of the place
    assert paris_miss[10:] == (1, 1)  # one geocoding call, one forecast call, made by this request
    assert paris_hit[3:9] == ("Paris", "FR", 48.9, 2.3, 200, "hit")
    assert paris_hit[10:] == (0, 0)
    assert london[3] == "London"
    assert berlin[0] == "weather/user"
    assert coordinates[3:9] == (None, None, 48.9, 2.3, 200, "hit")  # Paris's rounded point is cached
    assert unknown[3] is None
    assert unknown[7] == 404
    assert keyless[0] is None
    assert keyless[7] == 401
    assert all(row[9] >= 0 for row in rows)
    dump = repr(history.query(analytics_database, "SELECT * FROM requests"))
    assert history.READER_KEY not in dump
    assert history.USER_KEY not in dump
    assert history.CLIENT_ADDRESS not in dump
    calls = history.query(
        analytics_database, "SELECT endpoint, origin, sum(calls) FROM upstream_calls GROUP BY 1, 2"
    )
    assert sorted(calls) == [("forecast", "request", 3), ("geocoding", "request", 4)]


async def test_usage_with_a_range_answers_the_callers_history_and_without_it_as_before(
    openmeteo: om.OpenMeteoEmulator, analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=history.analytics(analytics_database)
    )
    async with history.running(cfg, analytics_database.password) as (app, client):
        await history.schema_ready(app)
        await traffic(client)
        await history.written(app)
        day = (await client.get("/v1/usage", params={"from": today(), "to": today()}, headers=READER)).json()
        hours = await client.get(
            "/v1/usage", params={"from": today(), "to": today(), "granularity": "hour"}, headers=READER
        )
        week_start = (datetime.date.fromisoformat(today()) - datetime.timedelta(days=6)).isoformat()
        week = (
            await client.get("/v1/usage", params={"from": week_start, "to": today()}, headers=USER)
        ).json()
        plain = (await client.get("/v1/usage", headers=READER)).json()
    assert day == {
        "key": "weather/reader",
        "periods": [{"start": f"{today()}T00:00:00Z", "requests": 5, "errors": 1, "cacheHits": 2}],
    }
    assert hours.status_code == 200
    assert "ratelimit-remaining" in hours.headers
    periods = hours.json()["periods"]
    assert len(periods) == 24
    assert sum(p["requests"] for p in periods) == 5
    assert week["key"] == "weather/user"
    assert len(week["periods"]) == 7
    assert [p["requests"] for p in week["periods"]] == [0, 0, 0, 0, 0, 0, 1]
    assert {"keyId", "limit", "remaining", "resetSeconds", "quota", "requests"} <= set(plain)
    assert plain["keyId"] == "weather/reader"


async def test_every_analytics_route_after_traffic(
    openmeteo: om.OpenMeteoEmulator, analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=history.analytics(analytics_database)
    )
    span = {"from": today(), "to": today()}
    async with history.running(cfg, analytics_database.password) as (app, client):
        await history.schema_ready(app)
        before = datetime.datetime.now(datetime.UTC)
        await traffic(client)
        await history.written(app)
        answers = {
            route: await client.get(f"/v1/analytics/{route}", params=span, headers=READER)
            for route in ANALYTICS_ROUTES
        }
        top_one = (
            await client.get("/v1/analytics/top-cities", params={**span, "limit": 1}, headers=READER)
        ).json()
        hourly = (
            await client.get("/v1/analytics/cache", params={**span, "granularity": "hour"}, headers=READER)
        ).json()
        default_range = (await client.get("/v1/analytics/cache", headers=READER)).json()
        refused = await client.get("/v1/analytics/top-cities", params=span, headers=USER)
    assert all(r.status_code == 200 for r in answers.values()), {k: r.text for k, r in answers.items()}
    body = {route: r.json() for route, r in answers.items()}
    assert body["top-cities"] == [
        {"name": "Paris", "country": "FR", "requests": 2},
        {"name": "Berlin", "country": "DE", "requests": 1},
        {"name": "London", "country": "GB", "requests": 1},
    ]
    assert top_one == [{"name": "Paris", "country": "FR", "requests": 2}]
    assert body["countries"] == [
        {"country": "FR", "requests": 2},
        {"country": "DE", "requests": 1},
        {"country": "GB", "requests": 1},
    ]
    now = datetime.datetime.now(datetime.UTC)
    cells = body["peak-hours"]
    assert len(cells) == 168
    assert cells[0] == {"weekday": 0, "hour": 0, "requests": cells[0]["requests"]}
    busy = [c for c in cells if c["requests"]]
    assert sum(c["requests"] for c in busy) == 7
    # The traffic may straddle an hour: its cells are the one of its start and the one of now.
    assert {(c["weekday"], c["hour"]) for c in busy} <= {
        (before.weekday(), before.hour),
        (now.weekday(), now.hour),
    }
    assert body["cache"] == [
        {"start": f"{today()}T00:00:00Z", "hits": 2, "misses": 3, "stale": 0, "hitRatio": 0.4}
    ]
    assert len(hourly) == 24
    assert sum(p["hits"] for p in hourly) == 2
    assert len(default_range) == 7
    assert default_range[-1]["hits"] == 2
    assert body["upstream"] == [{"start": f"{today()}T00:00:00Z", "geocode": 4, "forecast": 3}]
    assert refused.status_code == 403
    assert refused.json()["type"] == PROBLEMS + "insufficient-scope"


@pytest.mark.parametrize(
    ("params", "rule"),
    [
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from: must be a date"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to: must not be before from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "at most 366 days, this one 367"),
        ({"from": "2026-03-01"}, "give both, or neither"),
        ({"from": "2026/03/01", "to": "2026-03-01"}, "from: String should match pattern"),
        ({"from": "2026-03-01", "to": "2026-03-01", "granularity": "week"}, "granularity"),
        ({"limit": "101"}, "limit: Input should be less than or equal to 100"),
    ],
)
async def test_a_bad_range_is_a_400_naming_the_rule(
    openmeteo: om.OpenMeteoEmulator, tmp_path: pathlib.Path, params: dict[str, str], rule: str
) -> None:
    # The range is checked before the database is asked: none is needed here.
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=history.analytics(url)
    )
    async with history.running(cfg) as (_, client):
        route = "/v1/analytics/cache" if "limit" not in params else "/v1/analytics/top-cities"
        analytics_answer = await client.get(route, params=params, headers=READER)
        usage_answer = await client.get("/v1/usage", params=params, headers=READER)
        granularity_alone = await client.get("/v1/usage", params={"granularity": "day"}, headers=READER)
    assert analytics_answer.status_code == 400
    assert rule in analytics_answer.json()["detail"]
    if "limit" not in params:
        assert usage_answer.status_code == 400
        assert rule in usage_answer.json()["detail"]
    assert granularity_alone.status_code == 400
    assert granularity_alone.json()["detail"] == "granularity: only goes with from and to."


async def test_without_analytics_the_routes_answer_404_analytics_disabled(
    openmeteo: om.OpenMeteoEmulator, tmp_path: pathlib.Path
) -> None:
    cfg = history.config(openmeteo, history.keys_file(tmp_path / "keys.yaml"))
    async with history.running(cfg) as (app, client):
        assert app.state.runtime.history is None
        answers = [await client.get(f"/v1/analytics/{route}", headers=READER) for route in ANALYTICS_ROUTES]
        usage_range = await client.get("/v1/usage", params={"from": today(), "to": today()}, headers=READER)
        usage_today = await client.get("/v1/usage", headers=READER)
        weather = await client.get("/v1/weather", params={"city": "Paris"}, headers=READER)
        ready = (await client.get("/health/ready")).json()
    for answer in [*answers, usage_range]:
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == PROBLEMS + "analytics-disabled"
    assert usage_today.status_code == 200
    assert weather.status_code == 200
    assert "analytics" not in ready["checks"]


async def test_with_the_database_away_analytics_answers_503_and_the_weather_is_unaffected(
    openmeteo: om.OpenMeteoEmulator, tmp_path: pathlib.Path
) -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none"  # nothing listens there
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=history.analytics(url)
    )
    async with history.running(cfg) as (app, client):
        weather = [
            await client.get("/v1/weather", params={"city": c}, headers=READER)
            for c in ("Paris", "Paris", "Oslo")
        ]
        answers = [await client.get(f"/v1/analytics/{route}", headers=READER) for route in ANALYTICS_ROUTES]
        usage_range = await client.get("/v1/usage", params={"from": today(), "to": today()}, headers=READER)
        ready = await client.get("/health/ready")
        rt = app.state.runtime
    assert [w.status_code for w in weather] == [200, 200, 200]
    for answer in [*answers, usage_range]:
        assert answer.status_code == 503
        assert answer.json()["type"] == PROBLEMS + "analytics-unavailable"
        assert answer.headers["retry-after"] == "10"
    assert ready.status_code == 200  # still ready: the weather does not need the database
    doc = ready.json()
    assert doc["status"] == "degraded"
    assert doc["checks"]["analytics"]["up"] is False
    assert doc["checks"]["analytics"]["schemaReady"] is False
    assert doc["checks"]["analytics"]["writer"]["queued"] >= 3  # the rows wait for the database
    assert rt.history.db.last_error
    assert "nobody" not in str(doc)


async def test_openapi_documents_the_analytics_routes_with_their_scope(
    openmeteo: om.OpenMeteoEmulator, tmp_path: pathlib.Path
) -> None:
    cfg = history.config(openmeteo, None)
    async with history.running(cfg) as (_, client):
        document = (await client.get("/openapi.json")).json()
    for route in ANALYTICS_ROUTES:
        operation = document["paths"][f"/v1/analytics/{route}"]["get"]
        assert operation["x-required-scopes"] == ["analytics:read"]
        assert operation["security"] == [{"APIKeyHeader": ["analytics:read"]}]
        # from and to are one form-exploded object parameter: both or neither, in the schema.
        span = next(p for p in operation["parameters"] if p["name"] == "range")
        assert (span["style"], span["explode"]) == ("form", True)
        assert span["schema"]["required"] == ["from", "to"]
        assert not {"from", "to"} & {p["name"] for p in operation["parameters"]}
        assert {"200", "400", "403", "404", "503"} <= set(operation["responses"])
    top = document["paths"]["/v1/analytics/top-cities"]["get"]
    limit = next(p for p in top["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100
    usage = document["paths"]["/v1/usage"]["get"]
    assert usage["x-required-scopes"] == ["usage:read"]
    (span,) = usage["parameters"]
    assert set(span["schema"]["properties"]) == {"from", "to", "granularity"}
    assert usage["responses"]["200"]["headers"]["RateLimit-Remaining"]["required"] is True
