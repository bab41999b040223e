"""The key lifecycle audit on a real PostgreSQL: what a fleet's keys.yaml changes leave in key_events.

Views of the keys Secrets, as the operator writes them (revisions raised with every write; a
rotation's grace as ``id#previous``), are recorded the way every proxy records them; two
"processes" (one lagging behind) record into the same database. And through the app: a key
ring applied at runtime reaches the table by the background audit.
"""

from __future__ import annotations

import datetime
import hashlib
import pathlib
from typing import Any

import psycopg
import pytest

from devcluster import openmeteo as om
from testbed.postgres_server import AnalyticsDatabase
from tests.support import history
from weather_proxy import config
from weather_proxy.history import key_events, migrations

pytestmark = [pytest.mark.integration]

T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
SECRET = "paris-keys"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(key_id: str, plaintext: str, **fields: Any) -> config.KeyEntry:
    return config.KeyEntry(id=key_id, sha256=sha(plaintext), **fields)


def keys(revision: int, *entries: config.KeyEntry) -> config.KeysFile:
    return config.KeysFile(revision=revision, keys=list(entries))


async def connect(database: AnalyticsDatabase) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    conninfo = psycopg.conninfo.make_conninfo(database.url, password=database.password)
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    await migrations.apply(conn)
    return conn


async def record(conn: Any, parts: dict[str, config.KeysFile], minutes: int) -> list[tuple[str, str]]:
    written = await key_events.record(conn, parts, T0 + datetime.timedelta(minutes=minutes))
    return [(e.event, e.key_id) for e in written]


def rows(database: AnalyticsDatabase) -> list[tuple[Any, ...]]:
    return history.query(
        database,
        "SELECT event, key_id, time, revision, fingerprint FROM key_events ORDER BY time, key_id, event",
    )


async def test_every_lifecycle_step_is_recorded_once_whichever_process_sees_it(
    analytics_database: AnalyticsDatabase,
) -> None:
    a, b = await connect(analytics_database), await connect(analytics_database)
    team_a = entry("weather/team-a", "key-a-1")
    team_b = entry("weather/team-b", "key-b-1", expires_at=T0 + datetime.timedelta(minutes=30))
    async with a, b:
        v1 = {SECRET: keys(1, team_a, team_b)}
        assert await record(a, v1, 0) == [("issued", "weather/team-a"), ("issued", "weather/team-b")]
        assert await record(b, v1, 0) == [], "the second process finds nothing new"
        assert await record(a, v1, 1) == [], "nor does the first, again"

        # Rotation: the new hash, the old one in its grace as id#previous.
        rotated = entry("weather/team-a", "key-a-2")
        grace = entry("weather/team-a#previous", "key-a-1")
        v2 = {SECRET: keys(2, rotated, grace, team_b)}
        assert await record(b, v2, 2) == [("rotated", "weather/team-a")]
        assert await record(a, v1, 3) == [], "a process still on revision 1 rotates nothing back"
        assert await record(a, v2, 3) == []

        # The grace ends: no event. Disabled, then enabled again.
        v3 = {SECRET: keys(3, rotated, team_b)}
        assert await record(a, v3, 4) == []
        v4 = {SECRET: keys(4, rotated.model_copy(update={"disabled": True}), team_b)}
        assert await record(a, v4, 5) == [("disabled", "weather/team-a")]
        assert await record(b, v3, 5) == [], "a lagging view does not re-enable it"
        v5 = {SECRET: keys(5, rotated, team_b)}
        assert await record(b, v5, 6) == [("enabled", "weather/team-a")]

        # team-b expires (the operator drops the entry at its expiry); team-a is deleted.
        v6 = {SECRET: keys(6, rotated)}
        assert await record(a, v6, 31) == [("expired", "weather/team-b")]
        assert await record(b, v5, 31) == [], "the lagging process does not bring team-b back"
        v7 = {SECRET: keys(7)}
        assert await record(b, v7, 32) == [("deleted", "weather/team-a")]
        assert await record(a, v7, 33) == []

        # Re-created with its old key: issued again, as a new occurrence.
        v8 = {SECRET: keys(8, rotated)}
        assert await record(a, v8, 40) == [("issued", "weather/team-a")]

    events = rows(analytics_database)
    assert [(e, k) for e, k, *_ in events] == [
        ("issued", "weather/team-a"),
        ("issued", "weather/team-b"),
        ("rotated", "weather/team-a"),
        ("disabled", "weather/team-a"),
        ("enabled", "weather/team-a"),
        ("expired", "weather/team-b"),
        ("deleted", "weather/team-a"),
        ("issued", "weather/team-a"),
    ]
    assert events[2][2] == T0 + datetime.timedelta(minutes=2)
    assert [r for _, _, _, r, _ in events] == [1, 1, 2, 4, 5, 6, 7, 8]
    # Versions are told apart by fingerprint; no key and no hash is stored.
    assert events[0][4] != events[2][4]
    dump = repr(history.query(analytics_database, "SELECT * FROM key_events")) + repr(
        history.query(analytics_database, "SELECT * FROM key_states")
    )
    for secret in ("key-a-1", "key-a-2", "key-b-1"):
        assert secret not in dump
        assert sha(secret) not in dump


async def test_a_key_moving_between_secrets_is_neither_deleted_nor_issued(
    analytics_database: AnalyticsDatabase,
) -> None:
    one, two = entry("weather/one", "k1"), entry("weather/two", "k2")
    async with await connect(analytics_database) as conn:
        assert len(await record(conn, {"paris-keys": keys(1, one, two)}, 0)) == 2
        # Resharded: two moves to paris-keys-1; a process may see either Secret's new copy first.
        assert await record(conn, {"paris-keys": keys(1, one, two), "paris-keys-1": keys(1, two)}, 1) == []
        assert await record(conn, {"paris-keys": keys(2, one), "paris-keys-1": keys(1, two)}, 2) == []
        # A process that has not read the new Secret yet does not take "two" for deleted.
        assert await record(conn, {"paris-keys": keys(2, one)}, 3) == []
        assert await record(conn, {"paris-keys": keys(3, one), "paris-keys-1": keys(2)}, 4) == [
            ("deleted", "weather/two")
        ]


async def test_retention_drops_old_key_events(analytics_database: AnalyticsDatabase) -> None:
    from weather_proxy.history import maintenance

    async with await connect(analytics_database) as conn:
        await record(conn, {SECRET: keys(1, entry("weather/old", "k"))}, 0)
        report = await maintenance.run_once(conn, retention_days=7, now=T0 + datetime.timedelta(days=7))
        assert report.ran
        assert len(rows(analytics_database)) == 1, "7 whole days are kept"
        await maintenance.run_once(conn, retention_days=7, now=T0 + datetime.timedelta(days=8))
        assert rows(analytics_database) == []


async def test_the_running_proxy_records_its_key_ring_changes(
    openmeteo: om.OpenMeteoEmulator, analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=history.analytics(analytics_database)
    )
    async with history.running(cfg, analytics_database.password) as (app, _client):
        await history.schema_ready(app)
        runtime, audit = app.state.runtime, app.state.runtime.history
        # The keys file read at start: both keys issued.
        await history.until(lambda: audit.key_events_recorded == 2)
        assert {k for _, k, *_ in rows(analytics_database)} == {history.READER_ID, history.USER_ID}
        current = runtime.keys_file
        disabled = [e.model_copy(update={"disabled": e.id == history.USER_ID}) for e in current.keys]
        runtime.apply_keys(config.KeysFile(revision=current.revision + 1, keys=disabled))
        await history.until(lambda: audit.key_events_recorded == 3)
    assert [(e, k) for e, k, *_ in rows(analytics_database)][-1] == ("disabled", history.USER_ID)
