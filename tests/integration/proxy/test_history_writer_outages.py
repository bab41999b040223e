"""The writer while PostgreSQL is lost or hung: requests never fail, rows are kept or counted as dropped.

The server is the session's real one: stopped (immediate shutdown, connections break) or
paused (SIGSTOP: it neither answers nor refuses), then brought back; every row the proxy
recorded ends up either in the database or in the dropped count, never silently lost.
"""

from __future__ import annotations

import pathlib

import pytest

from devcluster import openmeteo as om
from devcluster.processes import free_port
from testbed.postgres_server import AnalyticsDatabase, PostgresServer
from tests.integration.proxy import scenario
from tests.support import history
from weather_proxy import config as config_mod
from weather_proxy.history import database, writer
from weather_proxy.observability import metrics as metrics_mod

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READER = {"X-API-Key": history.READER_KEY}
QUEUE = 20


async def _hits(client: object, n: int) -> list[int]:
    statuses = []
    for _ in range(n):
        response = await client.get("/v1/weather", params={"city": "Paris"}, headers=READER)  # type: ignore[attr-defined]
        statuses.append(response.status_code)
    return statuses


async def test_database_stopped_mid_run_nothing_fails_and_drops_are_counted(
    openmeteo: om.OpenMeteoEmulator,
    postgres_server: PostgresServer,
    analytics_database: AnalyticsDatabase,
    tmp_path: pathlib.Path,
) -> None:
    section = history.analytics(analytics_database, writer={"maxQueuedRows": QUEUE})
    cfg = history.config(openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=section)
    async with history.running(cfg, analytics_database.password) as (app, client):
        rt = app.state.runtime
        await history.schema_ready(app)
        before = await _hits(client, 5)
        await history.written(app)
        postgres_server.stop()
        during = await _hits(client, 60)
        await history.until(lambda: rt.history.writer.last_error is not None)
        ready = (await client.get("/health/ready")).json()
        await history.until(
            lambda: (
                (
                    scenario.metric_value(
                        rt.metrics.render().decode(), "weather_proxy_analytics_rows_dropped_total"
                    )
                    or 0
                )
                > 0
            )
        )
        postgres_server.start()
        after = await _hits(client, 3)
        await history.until(lambda: rt.history.writer.queued == 0, within=30)
        await history.written(app)
        dropped = rt.history.writer.dropped
        readiness_after = (await client.get("/health/ready")).json()
    assert before + during + after == [200] * 68  # the weather never noticed
    assert ready["status"] == "degraded"
    assert ready["checks"]["analytics"]["up"] is False
    assert ready["checks"]["analytics"]["writer"]["dropped"] >= 60 - QUEUE
    assert ready["checks"]["analytics"]["writer"]["queued"] <= QUEUE
    stored = history.query(analytics_database, "SELECT count(*) FROM requests")[0][0]
    assert stored + dropped == 68  # every row either written or counted
    assert dropped >= 60 - QUEUE
    assert readiness_after["checks"]["analytics"]["up"] is True


async def test_database_hung_requests_do_not_wait_and_analytics_answers_503(
    openmeteo: om.OpenMeteoEmulator,
    postgres_server: PostgresServer,
    analytics_database: AnalyticsDatabase,
    tmp_path: pathlib.Path,
) -> None:
    section = history.analytics(analytics_database, writer={"maxQueuedRows": QUEUE})
    cfg = history.config(openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=section)
    async with history.running(cfg, analytics_database.password) as (app, client):
        rt = app.state.runtime
        await history.schema_ready(app)
        before = await _hits(client, 5)
        await history.written(app)
        postgres_server.pause()
        try:
            during = await _hits(client, 40)  # the writer's flush is stuck meanwhile
            analytics = await client.get("/v1/analytics/top-cities", headers=READER)
        finally:
            postgres_server.resume()
        after = await _hits(client, 3)
        await history.until(lambda: rt.history.writer.queued == 0 and rt.history.db.up, within=60)
        await history.written(app)
        dropped = rt.history.writer.dropped
    assert before + during + after == [200] * 48
    assert analytics.status_code == 503
    assert analytics.json()["type"].endswith("/analytics-unavailable")
    stored = history.query(analytics_database, "SELECT count(*) FROM requests")[0][0]
    assert stored + dropped == 48 + 1  # the 503 of analytics is a request too


def _row(n: int) -> writer.Row:
    return (float(n), "weather/a", "/v1/weather", None, (1.0, 2.0), 200, "hit", 0.001, None)


async def test_a_full_queue_drops_its_oldest_rows_and_a_failed_batch_goes_back() -> None:
    cfg = config_mod.Analytics.model_validate(
        history.analytics(f"postgresql://nobody@127.0.0.1:{free_port()}/none", writer={"maxQueuedRows": 10})
    )
    metrics = metrics_mod.Metrics()
    db = database.Database(cfg.database, None, metrics)
    rows = writer.RequestWriter(db, cfg.writer, metrics)
    for n in range(15):
        rows.record(_row(n))
    assert rows.queued == 10
    assert rows.dropped == 5
    assert [r[0] for r in rows._queue] == [float(n) for n in range(5, 15)]  # the newest kept
    with pytest.raises(database.ERRORS):
        await rows.flush()
    assert rows.queued == 10  # given back, in order
    assert [r[0] for r in rows._queue] == [float(n) for n in range(5, 15)]
    rows.enabled = True
    await rows.flush_due()  # fails, counted, backs off; nothing raised
    assert rows.last_error is not None
    assert metrics.analytics_flush_failures._value.get() == 1
    rows._report()
    assert metrics.analytics_rows_dropped._value.get() == 5
    assert metrics.analytics_queue_rows._value.get() == 10
