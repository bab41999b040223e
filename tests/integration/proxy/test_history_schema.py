"""The usage history's schema and lifecycle on a real PostgreSQL: migrations, partitions, retention, erasure.

Migrations are applied twice in one process and by several processes at once; retention and
erasure run with a movable clock (``UsageHistory(clock=...)`` and the CLI's ``--now``).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import pathlib
import subprocess
import sys

import pytest

from testbed import proxy_process
from testbed.postgres_server import AnalyticsDatabase
from tests.support import history
from weather_proxy import config as config_mod
from weather_proxy.history import migrations, partitions, service
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import client as upstream

pytestmark = [pytest.mark.integration]

PARIS = upstream.Location("Paris", "FR", 48.8534, 2.3488, "Europe/Paris", 2988507)
DAY = 86400.0


def analytics_config(database: AnalyticsDatabase, retention_days: int = 90) -> config_mod.Analytics:
    return config_mod.Analytics.model_validate(history.analytics(database, retentionDays=retention_days))


class Clock:
    """A clock the test moves."""

    def __init__(self, when: datetime.datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def make_history(database: AnalyticsDatabase, clock: Clock, retention_days: int = 90) -> service.UsageHistory:
    return service.UsageHistory(
        analytics_config(database, retention_days), database.password, metrics_mod.Metrics(), clock=clock
    )


def row(when: float, key_id: str | None = "weather/a") -> tuple[object, ...]:
    return (when, key_id, "/v1/weather", PARIS, None, 200, "hit", 0.0012, None)


async def test_migrations_applied_twice_change_nothing_the_second_time(
    analytics_database: AnalyticsDatabase,
) -> None:
    first = make_history(analytics_database, Clock(datetime.datetime.now(datetime.UTC)))
    try:
        async with first.db.connection() as conn:
            applied = await migrations.apply(conn)
            again = await migrations.apply(conn)
            left = await migrations.pending(conn)
    finally:
        await first.aclose()
    assert applied == [m.version for m in migrations.MIGRATIONS]
    assert again == []
    assert left == []
    versions = history.query(
        analytics_database, "SELECT version, name FROM schema_migrations ORDER BY version"
    )
    assert [v for v, _ in versions] == [m.version for m in migrations.MIGRATIONS]
    kind = history.query(analytics_database, "SELECT relkind FROM pg_class WHERE relname = 'requests'")
    assert kind == [("p",)]  # a partitioned table


def _cli(config_path: pathlib.Path, password: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, config_mod.ANALYTICS_PASSWORD_ENV: password}
    return subprocess.Popen(
        [sys.executable, "-m", "weather_proxy.history", "--config", str(config_path), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _config_file(tmp_path: pathlib.Path, database: AnalyticsDatabase) -> pathlib.Path:
    path = tmp_path / "config.yaml"
    cfg = config_mod.ProxyConfig.model_validate({"analytics": history.analytics(database)})
    path.write_text(proxy_process.to_yaml(cfg))
    return path


def test_processes_starting_together_apply_each_migration_once(
    analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    config_path = _config_file(tmp_path, analytics_database)
    started = [_cli(config_path, analytics_database.password, "migrate") for _ in range(4)]
    results = [proc.communicate(timeout=60) for proc in started]
    assert [proc.returncode for proc in started] == [0, 0, 0, 0], results
    assert all('"migrated":true' in out for out, _ in results)
    count = history.query(
        analytics_database, "SELECT count(*), count(DISTINCT version) FROM schema_migrations"
    )
    assert count == [(len(migrations.MIGRATIONS), len(migrations.MIGRATIONS))]


async def test_retention_drops_whole_days_past_retention_days(analytics_database: AnalyticsDatabase) -> None:
    start = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC)
    clock = Clock(start)
    hist = make_history(analytics_database, clock, retention_days=3)
    try:
        assert await hist.prepare()
        for day in range(6):  # rows on March 1st to 6th
            hist.writer.record(row(start.timestamp() + day * DAY))
        assert await hist.writer.flush() == 6
        clock.now = start.timestamp() + 5 * DAY  # March 6th: keep the 3rd, 4th, 5th and today
        report = await hist.maintain_once()
        kept = await hist.read(partitions.existing)
    finally:
        await hist.aclose()
    assert report.ran
    assert report.dropped == ("requests_20260301", "requests_20260302")
    assert kept == [datetime.date(2026, 3, d) for d in (3, 4, 5, 6, 7)]  # tomorrow is created ahead
    days = history.query(analytics_database, "SELECT time::date FROM requests ORDER BY time")
    assert [d for (d,) in days] == [datetime.date(2026, 3, d) for d in (3, 4, 5, 6)]


async def test_retention_forgets_the_state_of_a_key_gone_before_the_first_kept_day(
    analytics_database: AnalyticsDatabase,
) -> None:
    now = datetime.datetime(2026, 3, 10, 12, tzinfo=datetime.UTC)
    hist = make_history(analytics_database, Clock(now), retention_days=3)
    old, recent = now - datetime.timedelta(days=5), now - datetime.timedelta(days=1)
    states = [("weather/gone-long-ago", False, old), ("weather/gone-lately", False, recent),
              ("weather/present", True, old)]  # fmt: skip
    try:
        assert await hist.prepare()
        async with hist.db.connection() as conn:
            for key_id, present, updated in states:
                await conn.execute(
                    "INSERT INTO key_states (key_id, source, revision, fingerprint, disabled, expires_at,"
                    " present, updated_at) VALUES (%s, 'fleet-keys', 1, '0123456789abcdef', false, NULL,"
                    " %s, %s)",
                    (key_id, present, updated),
                )
        assert (await hist.maintain_once()).ran
    finally:
        await hist.aclose()
    kept = history.query(analytics_database, "SELECT key_id FROM key_states ORDER BY key_id")
    assert kept == [("weather/gone-lately",), ("weather/present",)]


async def test_maintenance_creates_today_and_tomorrow_and_runs_in_one_process_at_a_time(
    analytics_database: AnalyticsDatabase,
) -> None:
    clock = Clock(datetime.datetime(2026, 7, 14, 23, 59, tzinfo=datetime.UTC))
    one, other = make_history(analytics_database, clock), make_history(analytics_database, clock)
    try:
        assert await one.prepare()
        assert await other.prepare()
        reports = await asyncio.gather(*(h.maintain_once() for h in (one, other, one, other)))
        existing = await one.read(partitions.existing)
    finally:
        await one.aclose()
        await other.aclose()
    assert existing == [datetime.date(2026, 7, 14), datetime.date(2026, 7, 15)]
    assert any(r.ran for r in reports)
    created = [name for r in reports for name in r.created]
    assert sorted(created) == ["requests_20260714", "requests_20260715"]  # each created once


async def test_maintenance_skips_while_another_process_holds_the_lock(
    analytics_database: AnalyticsDatabase,
) -> None:
    clock = Clock(datetime.datetime(2026, 7, 14, tzinfo=datetime.UTC))
    hist = make_history(analytics_database, clock)
    try:
        assert await hist.prepare()
        async with hist.db.connection() as holder, holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.MAINTENANCE_LOCK,))
            skipped = await hist.maintain_once()
        ran = await hist.maintain_once()
    finally:
        await hist.aclose()
    assert not skipped.ran
    assert ran.ran


async def test_erasing_a_key_id_deletes_its_rows_in_every_partition(
    analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    start = datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)
    hist = make_history(analytics_database, Clock(start))
    try:
        assert await hist.prepare()
        for day in range(3):
            hist.writer.record(row(start.timestamp() + day * DAY, "weather/gone"))
            hist.writer.record(row(start.timestamp() + day * DAY, "weather/stays"))
        # A request made with the previous key during a rotation's grace is the key's too.
        hist.writer.record(row(start.timestamp(), "weather/gone#previous"))
        assert await hist.writer.flush() == 7
        erased = await hist.erase_key("weather/gone")
    finally:
        await hist.aclose()
    assert erased == 4
    keys = history.query(analytics_database, "SELECT DISTINCT key_id FROM requests")
    assert keys == [("weather/stays",)]
    # The operator's way in: the same, from the command line.
    proc = _cli(
        _config_file(tmp_path, analytics_database), analytics_database.password, "erase", "weather/stays"
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert '"rowsErased":3' in out
    assert history.query(analytics_database, "SELECT count(*) FROM requests") == [(0,)]


def test_the_command_line_maintains_with_a_moved_clock_and_reports_a_dead_database(
    analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    config_path = _config_file(tmp_path, analytics_database)
    proc = _cli(config_path, analytics_database.password, "--now", "2030-01-31T10:00:00Z", "maintain")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert '"created":["requests_20300131","requests_20300201"]' in out
    proc = _cli(config_path, "not-the-password", "migrate")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "analytics database unavailable" in err
    assert "not-the-password" not in err
