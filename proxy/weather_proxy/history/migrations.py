"""The analytics schema as numbered migrations, each applied once, in its own transaction.

``schema_migrations`` lists what was applied. Every proxy applies what is missing when it
starts; a session advisory lock makes the processes of a fleet that start together take
turns, so the second one finds everything applied. A migration is never edited once
released: a change of schema is a new migration at the end of the list.
"""

from __future__ import annotations

import dataclasses
import logging

import psycopg

log = logging.getLogger(__name__)

# pg_advisory_lock keys (bigint) of this schema: migrations, partition creation, maintenance.
MIGRATIONS_LOCK = 0x5750_4601
PARTITIONS_LOCK = 0x5750_4602
MAINTENANCE_LOCK = 0x5750_4603
KEY_EVENTS_LOCK = 0x5750_4604


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "request rows partitioned by day; upstream calls per minute",
        """
        CREATE TABLE requests (
            time timestamptz NOT NULL,
            key_id text,
            route text NOT NULL,
            location_id bigint,
            location_name text,
            country text,
            latitude real,
            longitude real,
            status smallint NOT NULL,
            cache_status text CHECK (cache_status IN ('hit', 'miss', 'stale')),
            latency_ms real NOT NULL,
            upstream_geocoding smallint NOT NULL DEFAULT 0,
            upstream_forecast smallint NOT NULL DEFAULT 0
        ) PARTITION BY RANGE (time);
        COMMENT ON TABLE requests IS
            'One row per API request: the key''s id (never the key), never the client''s address.';
        CREATE INDEX requests_time ON requests (time);
        CREATE INDEX requests_key_time ON requests (key_id, time);
        CREATE TABLE upstream_calls (
            minute timestamptz NOT NULL,
            endpoint text NOT NULL,
            origin text NOT NULL,
            calls integer NOT NULL,
            PRIMARY KEY (minute, endpoint, origin)
        );
        COMMENT ON TABLE upstream_calls IS
            'Open-Meteo calls per UTC minute, endpoint (geocoding|forecast) and origin (request|background).';
        """,
    ),
    Migration(
        2,
        "key lifecycle events; the fleet's last known state of each key",
        """
        CREATE TABLE key_events (
            key_id text NOT NULL,
            event text NOT NULL
                CHECK (event IN ('issued', 'rotated', 'disabled', 'enabled', 'expired', 'deleted')),
            instance text NOT NULL,
            time timestamptz NOT NULL,
            source text NOT NULL,
            revision bigint NOT NULL,
            fingerprint text NOT NULL,
            PRIMARY KEY (key_id, event, instance)
        );
        CREATE INDEX key_events_time ON key_events (time);
        COMMENT ON TABLE key_events IS
            'Key lifecycle as the fleet''s proxies saw their keys.yaml change: first seen, by one of them.';
        COMMENT ON COLUMN key_events.fingerprint IS
            'SHA-256 of the key''s SHA-256, 16 hex digits: tells key versions apart, never the key.';
        CREATE TABLE key_states (
            key_id text PRIMARY KEY,
            source text NOT NULL,
            revision bigint NOT NULL,
            fingerprint text NOT NULL,
            disabled boolean NOT NULL,
            expires_at timestamptz,
            present boolean NOT NULL,
            updated_at timestamptz NOT NULL
        );
        COMMENT ON TABLE key_states IS
            'Each key id as last recorded into key_events (present false once deleted or expired).';
        """,
    ),
)


async def pending(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[int]:
    """Versions not applied yet (all of them on an empty database)."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    applied: set[int] = set()
    if row is not None and row[0]:
        cur = await conn.execute("SELECT version FROM schema_migrations")
        applied = {int(str(r[0])) for r in await cur.fetchall()}
    return [m.version for m in MIGRATIONS if m.version not in applied]


async def apply(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[int]:
    """Apply the missing migrations (``conn`` in autocommit mode); returns the versions applied now."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATIONS_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        missing = set(await pending(conn))
        done = []
        for migration in MIGRATIONS:
            if migration.version not in missing:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            log.info("analytics schema: applied migration %d (%s)", migration.version, migration.name)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATIONS_LOCK,))
