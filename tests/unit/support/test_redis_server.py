"""The redis-server helper: starts a real server, flushes it per test, survives kill/restart."""

from __future__ import annotations

import pytest

from testbed import redis_server as rs

pytestmark = pytest.mark.integration


def test_redis_url_is_empty_and_working(redis_server: rs.RedisServer, redis_url: str) -> None:
    assert redis_url == redis_server.url
    assert redis_server.command("DBSIZE") == b":0"
    assert redis_server.command("SET", "k", "v") == b"+OK"


def test_each_test_starts_empty(redis_server: rs.RedisServer, redis_url: str) -> None:
    assert redis_server.command("DBSIZE") == b":0"


def test_kill_and_restart_keep_the_port(redis_server: rs.RedisServer, redis_url: str) -> None:
    port = redis_server.port
    redis_server.kill()
    assert not redis_server.ping()
    assert not redis_server.is_running()
    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.ping()


def test_a_killed_server_is_back_for_the_next_test(redis_server: rs.RedisServer) -> None:
    redis_server.kill()


def test_after_a_kill_the_fixture_restarts_it(redis_server: rs.RedisServer, redis_url: str) -> None:
    assert redis_server.ping()


def test_password_is_required_when_set() -> None:
    server = rs.RedisServer(rs.require_redis_server(), password="s3cret").start()
    try:
        assert server.url.startswith("redis://:s3cret@127.0.0.1:")
        assert server.ping()
        anonymous = rs.RedisServer(server.binary, port=server.port)
        assert anonymous.command("PING").startswith(b"-NOAUTH")
    finally:
        server.stop()


def test_missing_binary_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(rs.REDIS_BINARY_ENV, raising=False)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        rs.require_redis_server()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        rs.require_redis_server()
