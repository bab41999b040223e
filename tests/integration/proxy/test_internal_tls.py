"""TLS inside a fleet: the proxy reaches a TLS-only Redis and a PostgreSQL with ssl=on, verifying both.

Real redis-server (Debian's, TLS built in: ``--port 0 --tls-port``) and real PostgreSQL
(``ssl=on``) serve leaves of a test CA. The proxy's app (its lifespan, its Redis link and
history writer) connects with ``redis.tls.caFile`` and ``analytics.database.tls.caFile``
(libpq ``sslmode=verify-full``); the history commands the operator's Jobs run do too. A wrong
CA, a plaintext client and a host name the certificate does not hold are refused.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from devcluster import openmeteo as om
from testbed import certificates, postgres_server, redis_server
from tests.support import history
from weather_proxy import config as proxy_config
from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod

pytestmark = [pytest.mark.integration]

PASSWORD = "s3cret-redis"
# The servers' leaves name localhost only: connecting to 127.0.0.1 (the same server) is a host
# name the certificate does not hold.
NAMES = ["localhost"]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> certificates.TestCA:
    return certificates.TestCA("fleet internal CA")


@pytest.fixture(scope="module")
def ca_file(ca: certificates.TestCA, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return ca.write_ca(tmp_path_factory.mktemp("ca") / "ca.crt")


@pytest.fixture(scope="module")
def tls_redis(
    ca: certificates.TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[redis_server.RedisServer]:
    tls_dir = tmp_path_factory.mktemp("redis-tls")
    ca.issue(NAMES).write(tls_dir)
    server = redis_server.RedisServer(redis_server.require_redis_server(), password=PASSWORD, tls_dir=tls_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_postgres(
    ca: certificates.TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[postgres_server.PostgresServer]:
    tls_dir = tmp_path_factory.mktemp("postgres-tls")
    ca.issue(NAMES).write(tls_dir)
    server = postgres_server.PostgresServer(postgres_server.require_bin_dir(), tls_dir=tls_dir)
    server.init().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def tls_database(tls_postgres: postgres_server.PostgresServer) -> Iterator[postgres_server.AnalyticsDatabase]:
    database = tls_postgres.create_database()
    try:
        yield database
    finally:
        tls_postgres.drop_database(database.name)


def redis_url(server: redis_server.RedisServer, host: str = "localhost") -> str:
    return server.url.replace(f":{PASSWORD}@", "").replace("127.0.0.1", host)


def redis_section(server: redis_server.RedisServer, ca_file: pathlib.Path) -> dict[str, Any]:
    return {"url": redis_url(server), "tls": {"caFile": str(ca_file)}}


async def ping(url: str, tls: proxy_config.ServerCa | None) -> redis_link.RedisLink:
    link = redis_link.RedisLink(redis_link.make_client(url, PASSWORD, tls=tls), metrics_mod.Metrics())
    await link.ping()
    await link.aclose()
    return link


async def test_the_proxy_uses_a_tls_only_redis_and_readiness_says_so(
    openmeteo: om.OpenMeteoEmulator,
    tls_redis: redis_server.RedisServer,
    ca_file: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    tls_redis.flushall()
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), redis=redis_section(tls_redis, ca_file)
    )
    async with history.running(cfg) as (_app, client):
        answer = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": history.READER_KEY}
        )
        assert answer.status_code == 200
        ready = (await client.get("/health/ready")).json()
    assert ready["checks"]["redis"] == {"configured": True, "up": True, "error": None}
    assert int(tls_redis.command("DBSIZE")[1:]) >= 1  # the L2 entry went over TLS


async def test_redis_with_a_wrong_ca_a_plaintext_client_or_another_host_name_is_refused(
    openmeteo: om.OpenMeteoEmulator,
    tls_redis: redis_server.RedisServer,
    ca_file: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other_ca = certificates.TestCA("someone else's CA").write_ca(tmp_path / "other-ca.crt")
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), redis=redis_section(tls_redis, other_ca)
    )
    async with history.running(cfg) as (_app, client):
        ready = (await client.get("/health/ready")).json()
    assert ready["status"] == "degraded"
    assert ready["checks"]["redis"]["up"] is False
    assert "certificate verify failed" in ready["checks"]["redis"]["error"]

    # A plaintext client: the server speaks only TLS on its one port (what redis-cli without --tls meets).
    plaintext = await ping(redis_url(tls_redis).replace("rediss://", "redis://"), None)
    assert plaintext.up is False
    assert plaintext.last_error is not None
    assert redis_server.RedisServer(tls_redis.binary, password=PASSWORD, port=tls_redis.port).ping() is False
    good_ca = proxy_config.ServerCa(ca_file=str(ca_file))
    mismatch = await ping(redis_url(tls_redis, host="127.0.0.1"), good_ca)
    assert mismatch.up is False
    assert "doesn't match" in str(mismatch.last_error) or "mismatch" in str(mismatch.last_error)
    right = await ping(redis_url(tls_redis), good_ca)
    assert right.up is True, right.last_error


def tls_analytics(
    database: postgres_server.AnalyticsDatabase, ca_file: pathlib.Path, host: str = "localhost"
) -> dict[str, Any]:
    section = history.analytics(database.url.replace("127.0.0.1", host))
    section["database"]["tls"] = {"caFile": str(ca_file)}
    return section


async def test_history_rows_are_written_over_tls_with_verify_full(
    openmeteo: om.OpenMeteoEmulator,
    tls_database: postgres_server.AnalyticsDatabase,
    ca_file: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    cfg = history.config(
        openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=tls_analytics(tls_database, ca_file)
    )
    async with history.running(cfg, tls_database.password) as (app, client):
        await history.schema_ready(app)
        for _ in range(3):
            answer = await client.get(
                "/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": history.READER_KEY}
            )
            assert answer.status_code == 200
        await history.written(app)
        ready = (await client.get("/health/ready")).json()
        assert ready["checks"]["analytics"]["up"] is True
        # The writer's own connection, seen from the server: TLS.
        over_tls = history.query(
            tls_database,
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
            " WHERE a.application_name = 'weather-proxy' AND a.datname = %s",
            tls_database.name,
        )
    assert over_tls
    assert all(row == (True,) for row in over_tls)
    assert history.query(tls_database, "SELECT count(*) FROM requests") == [(3,)]


async def test_a_host_name_not_in_the_certificate_or_a_wrong_ca_is_refused(
    openmeteo: om.OpenMeteoEmulator,
    tls_database: postgres_server.AnalyticsDatabase,
    ca_file: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    other_ca = certificates.TestCA("someone else's CA").write_ca(tmp_path / "other-ca.crt")
    for analytics, expected in (
        (tls_analytics(tls_database, ca_file, host="127.0.0.1"), "does not match host name"),
        (tls_analytics(tls_database, other_ca), "certificate verify failed"),
    ):
        cfg = history.config(openmeteo, history.keys_file(tmp_path / "keys.yaml"), analytics=analytics)
        async with history.running(cfg, tls_database.password) as (app, client):
            await history.until(lambda: app.state.runtime.history.db.last_error != "not connected yet")
            ready = (await client.get("/health/ready")).json()
        assert ready["checks"]["analytics"]["up"] is False
        assert expected in app.state.runtime.history.db.last_error


def test_the_history_commands_of_the_operators_jobs_connect_with_verify_full(
    tls_database: postgres_server.AnalyticsDatabase, ca_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    config_path = tmp_path / "config.yaml"
    analytics = tls_analytics(tls_database, ca_file)
    config_path.write_text(yaml.safe_dump({"analytics": analytics}))
    env = {**os.environ, proxy_config.ANALYTICS_PASSWORD_ENV: tls_database.password}
    for command in (["migrate"], ["maintain"], ["erase", "weather/team-a"]):
        done = subprocess.run(
            [sys.executable, "-m", "weather_proxy.history", "--config", str(config_path), *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    # The same with a CA that did not sign the server's certificate: refused, exit status 1.
    other = certificates.TestCA("someone else's CA").write_ca(tmp_path / "other-ca.crt")
    config_path.write_text(yaml.safe_dump({"analytics": tls_analytics(tls_database, other)}))
    done = subprocess.run(
        [sys.executable, "-m", "weather_proxy.history", "--config", str(config_path), "maintain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "certificate verify failed" in done.stderr
