"""What the benchmarks stand up: the Open-Meteo emulator, a redis-server, proxy processes, servers."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping

import httpx

from devcluster import openmeteo as om
from testbed import proxy_process
from testbed import redis_server as rs
from weather_proxy import config as proxy_config

KEY = "wpk_bench_0123456789abcdef0123456789abcdef"
# The largest bucket a key may have: a million tokens, refilled at 16,667/s. A proxy serving more
# than that spends the bucket, and a figure that outlasts it measures the limit, not the proxy.
BIG_LIMIT = proxy_config.Limit(requests_per_minute=1_000_000, burst=1_000_000)
NO_BUDGET = proxy_config.Budget(per_minute=None, per_hour=None, per_day=None)


def keys_file() -> proxy_config.KeysFile:
    return proxy_config.KeysFile(keys=[proxy_process.key_entry("bench/load", KEY, rate_limit=BIG_LIMIT)])


def config(emulator: om.OpenMeteoEmulator, redis_url: str, *, ttl: int = 300) -> proxy_config.ProxyConfig:
    """Production-like: auth on, Redis limits and cache, info logs, metrics (always on)."""
    return proxy_config.ProxyConfig(
        environment=proxy_config.Environment.PRODUCTION,
        upstream=proxy_config.Upstream(
            geocoding_url=emulator.geocoding_url,
            forecast_url=emulator.forecast_url,
            timeout_seconds=10,
            budget=NO_BUDGET,  # the emulator has no free tier to protect
        ),
        cache=proxy_config.Cache(ttl_seconds=ttl, stale_ttl_seconds=3600),
        redis=proxy_config.Redis(url=redis_url),
        auth=proxy_config.Auth(required=True),
        rate_limit=proxy_config.RateLimit(default=BIG_LIMIT),
        observability=proxy_config.Observability(log_level="info"),
    )


@contextlib.contextmanager
def redis() -> Iterator[rs.RedisServer]:
    binary = rs.find_redis_server()
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    server = rs.RedisServer(binary).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def proxies(
    workdir: pathlib.Path, cfg: proxy_config.ProxyConfig, count: int
) -> Iterator[list[proxy_process.ProxyProcess]]:
    """``count`` real ``python -m weather_proxy`` processes sharing ``cfg`` (and so its Redis)."""
    started = []
    try:
        for i in range(count):
            started.append(proxy_process.ProxyProcess(workdir / f"proxy-{i}", cfg, keys_file()).start())
        yield started
    finally:
        for proc in started:
            proc.stop()


@contextlib.contextmanager
def served(
    which: str, port: int, env: Mapping[str, str], log: pathlib.Path, server: str = "uvicorn"
) -> Iterator[str]:
    """``python -m bench.serve <which>`` on ``port`` under ``server``; yields its base URL once it answers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", which, "--port", str(port), "--server", server],
            env={**env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"{which} server exited: {log.read_text(errors='replace')[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(f"{url}/openapi.json", timeout=1)
                    break
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(30)
