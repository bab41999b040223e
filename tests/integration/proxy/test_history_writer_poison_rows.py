"""The writer and the rows PostgreSQL refuses; the rows still queued at shutdown.

A row the database refuses because of its content (a NUL in a text column, a value a CHECK
constraint refuses) is dropped alone and counted: the good rows of its batch and the upstream
call counts are written, the database stays up for readiness, and nothing is retried. At
shutdown the queue is written, or what could not be written is counted and logged once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import AsyncIterator

import pytest

from devcluster.processes import free_port
from testbed.postgres_server import AnalyticsDatabase, PostgresServer
from tests.support import history
from weather_proxy import config as config_mod
from weather_proxy.history import partitions, service, writer
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import client as upstream

pytestmark = [pytest.mark.integration]

PARIS = upstream.Location("Paris", "FR", 48.8534, 2.3488, "Europe/Paris", 2988507)
NUL_CITY = upstream.Location("Nul\x00city", "FR", 48.8, 2.3, "Europe/Paris", 1)
WRITER_LOG = writer.__name__


def _history(
    url: AnalyticsDatabase | str, password: str | None, **writer_fields: object
) -> service.UsageHistory:
    section = history.analytics(url, writer=writer_fields)
    return service.UsageHistory(config_mod.Analytics.model_validate(section), password, metrics_mod.Metrics())


@pytest.fixture
async def usage(analytics_database: AnalyticsDatabase) -> AsyncIterator[service.UsageHistory]:
    """The usage history of a fresh database, schema applied; the writer's loop is not running."""
    hist = _history(analytics_database, analytics_database.password)
    try:
        assert await hist.prepare()
        yield hist
    finally:
        await hist.aclose()


def _row(n: int, location: upstream.Location = PARIS, cache: str = "hit", status: int = 200) -> writer.Row:
    return (time.time() + n / 1000, "weather/a", "/v1/weather", location, None, status, cache, 0.001, None)


def _stored(database: AnalyticsDatabase) -> list[tuple[object, ...]]:
    return history.query(database, "SELECT location_name, cache_status FROM requests ORDER BY time")


def _rejected(hist: service.UsageHistory) -> float:
    return float(hist.writer.metrics.analytics_rows_rejected._value.get())


def _dropped(hist: service.UsageHistory) -> float:
    return float(hist.writer.metrics.analytics_rows_dropped._value.get())


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == WRITER_LOG and r.levelno >= logging.WARNING]


async def test_a_row_with_a_nul_is_dropped_alone_and_the_rest_of_its_batch_written(
    usage: service.UsageHistory, analytics_database: AnalyticsDatabase
) -> None:
    rows = usage.writer
    for n in range(10):
        rows.record(_row(n, NUL_CITY if n == 6 else PARIS))
    rows.count_upstream("forecast", "request", time.time())
    await rows.flush_due()
    first = (_stored(analytics_database), _rejected(usage), rows.queued, rows.last_error, usage.as_json())
    rows.record(_row(20))
    await rows.flush_due()  # the next flush writes the new row and does not retry the refused one
    calls = history.query(analytics_database, "SELECT endpoint, origin, calls FROM upstream_calls")
    stored, rejected, queued, last_error, check = first
    assert stored == [("Paris", "hit")] * 9  # every good row of the batch, not the refused one
    assert rejected == 1
    assert queued == 0
    assert last_error is None
    assert check["up"] is True  # readiness is not degraded by a refused row
    assert check["writer"]["rejected"] == 1
    assert _stored(analytics_database) == [("Paris", "hit")] * 10
    assert _rejected(usage) == 1
    assert rows.metrics.analytics_flush_failures._value.get() == 0  # nothing was retried
    assert calls == [("forecast", "request", 1)]  # the batch's upstream counts were not lost
    assert rows.written == 10
    assert rows.dropped == 0


async def test_a_partition_dropped_behind_the_writers_back_is_created_again_no_row_refused(
    usage: service.UsageHistory, analytics_database: AnalyticsDatabase
) -> None:
    rows = usage.writer
    first = _row(0)
    rows.record(first)
    await rows.flush_due()
    day = datetime.datetime.fromtimestamp(first[0], datetime.UTC).date()
    await usage.read(lambda conn: conn.execute(f"DROP TABLE {partitions.name(day)}"))
    for n in range(1, 5):
        rows.record((first[0] + n / 1000, *first[1:]))  # the same day
    await rows.flush_due()  # refused (no partition for the rows: SQLSTATE 23514), then written
    assert len(_stored(analytics_database)) == 4
    assert _rejected(usage) == 0
    assert rows.queued == 0


async def test_refusals_are_logged_once_per_kind_without_the_rows_content(
    usage: service.UsageHistory, analytics_database: AnalyticsDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rows = usage.writer
    refused = {
        2: _row(2, cache="secret-bogus"),
        5: _row(5, NUL_CITY),
        7: _row(7, cache="secret-bogus"),
        9: _row(9, status=70123),
    }
    for n in range(12):
        rows.record(refused.get(n) or _row(n))
    await rows.flush_due()
    rows.record(_row(20, PARIS, "secret-bogus"))
    rows.record(_row(21, NUL_CITY))
    rows.record(_row(22))
    await rows.flush_due()
    warnings = _warnings(caplog)
    assert _stored(analytics_database) == [("Paris", "hit")] * 9
    assert _rejected(usage) == 6
    assert rows.queued == 0
    assert usage.db.up
    assert len(warnings) == 3, warnings  # one per kind: the CHECK constraint, the smallint, the NUL
    check = next(w for w in warnings if "CheckViolation" in w)
    assert "23514" in check  # the server's refusal names its SQLSTATE
    assert "requests_cache_status_check" in check
    out_of_range = next(w for w in warnings if "NumericValueOutOfRange" in w)
    assert "22003" in out_of_range
    assert "column status" in out_of_range
    assert any("NUL" in w for w in warnings)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "bogus" not in logged  # neither the refused value nor the failing row
    assert "Nul" not in logged
    assert "70123" not in logged


async def test_rows_queued_at_shutdown_are_written_a_refused_one_alone_dropped(
    analytics_database: AnalyticsDatabase,
) -> None:
    hist = _history(analytics_database, analytics_database.password, flushIntervalSeconds=60)
    running = asyncio.create_task(hist.run())
    try:
        await history.until(lambda: hist.writer.enabled)
        for n in range(8):
            hist.writer.record(_row(n, NUL_CITY if n == 3 else PARIS))
        assert hist.writer.queued == 8  # the writer waits for the next minute: nothing flushed yet
        await hist.stop()  # what the app does on SIGTERM, then it cancels its tasks and closes
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await hist.aclose()
    assert _stored(analytics_database) == [("Paris", "hit")] * 7
    assert hist.writer.queued == 0
    assert _rejected(hist) == 1
    assert hist.writer.dropped == 0


async def test_rows_left_at_shutdown_with_the_database_down_are_counted_and_logged_once(
    usage: service.UsageHistory, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for n in range(7):
        usage.writer.record(_row(n))
    usage.writer.count_upstream("forecast", "request", time.time())
    postgres_server.stop()
    await usage.stop()
    started = time.monotonic()
    await usage.aclose()
    took = time.monotonic() - started
    warnings = _warnings(caplog)
    assert usage.writer.dropped == 7
    assert _dropped(usage) == 7
    assert usage.writer.queued == 0
    assert len(warnings) == 1, warnings
    assert "7 request rows" in warnings[0]
    assert took < writer.SHUTDOWN_FLUSH_SECONDS + 1.0


async def test_rows_queued_before_the_schema_was_ever_ready_are_counted_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hist = _history(f"postgresql://nobody@127.0.0.1:{free_port()}/none", None)
    for n in range(4):
        hist.writer.record(_row(n))
    await hist.stop()
    await hist.aclose()
    warnings = _warnings(caplog)
    assert hist.writer.dropped == 4
    assert _dropped(hist) == 4
    assert len(warnings) == 1, warnings
    assert "4 request rows" in warnings[0]
