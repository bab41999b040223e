"""A proxy (real process) in front of the Open-Meteo emulator, with one API key per SDK scenario.

The SDK suites of every language run against this stack: Python's in this process, the
TypeScript and Go ones as child processes reading :meth:`SdkStack.env` (``WEATHER_PROXY_URL``,
``WEATHER_PROXY_KEY`` and ``WEATHER_PROXY_KEY_<NAME>`` for each key below, and
``WEATHER_PROXY_EMULATOR``, the emulator's control URL for fault injection).

The usage history and the analytics routes need PostgreSQL: a second proxy process,
``WEATHER_PROXY_ANALYTICS_URL``, keeps its history in a database of its own on the test server
(``testbed.postgres_server``), with the requests of :data:`SEEDED` in it before any suite
starts. The first proxy has no ``analytics``: there, those routes answer 404 analytics-disabled.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import NoReturn

import httpx
import psycopg
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from testbed.postgres_server import AnalyticsDatabase, PostgresServer
from tests.integration.proxy import scenario
from weather_proxy import config as proxy_config

REPO = pathlib.Path(__file__).resolve().parents[3]
ENV_PREFIX = "WEATHER_PROXY_KEY"
DAILY_QUOTA_OF_ONE = proxy_config.Limit(
    requests_per_minute=10_000,
    burst=1000,
    quota=proxy_config.Quota(requests=1, period=proxy_config.QuotaPeriod.DAY),
)
# One token in the bucket, one more per second: the second request in a row is refused with
# Retry-After: 1, and a client that waits that long is then admitted.
ONE_PER_SECOND = proxy_config.Limit(requests_per_minute=60, burst=1)

# name -> (plaintext, keys.yaml fields). Each scenario that spends a key's tokens or quota has
# a key of its own, so the scenarios of one suite do not depend on their order.
KEYS: dict[str, tuple[str, dict[str, object]]] = {
    "main": ("wpk_sdk_main_4c1d2e3f40516273849a5b6c7d8e9f00", {}),
    "tiny": ("wpk_sdk_tiny_0f1e2d3c4b5a69788796a5b4c3d2e1f0", {"rate_limit": ONE_PER_SECOND}),
    "tiny_strict": ("wpk_sdk_tinystrict_9a8b7c6d5e4f30211203f4e5d6c7b8a9", {"rate_limit": ONE_PER_SECOND}),
    "quota": ("wpk_sdk_quota_5a4b3c2d1e0f11223344556677889900", {"rate_limit": DAILY_QUOTA_OF_ONE}),
    "usage_only": (
        "wpk_sdk_usageonly_aabbccddeeff00112233445566778899",
        {"scopes": [proxy_config.Scope.USAGE_READ]},
    ),
    "disabled": ("wpk_sdk_disabled_00998877665544332211ffeeddccbbaa", {"disabled": True}),
    # The caller of the usage history and analytics (and of the requests SEEDED); on the history
    # proxy, nothing else uses it. (On the first proxy it meets analytics-disabled.)
    "analytics": (
        "wpk_sdk_analytics_5e6f708192a3b4c5d6e7f8091a2b3c4d",
        {
            "scopes": [
                proxy_config.Scope.WEATHER_READ,
                proxy_config.Scope.USAGE_READ,
                proxy_config.Scope.ANALYTICS_READ,
            ]
        },
    ),
}
# What the "analytics" key asks the history proxy before the suites start: (city, status). Paris
# twice (a cache miss, then a hit), London once, an unknown place (404): the suites' analytics
# assertions count on these, and no suite sends weather requests to the history proxy.
SEEDED: tuple[tuple[str, int], ...] = (("Paris", 200), ("Paris", 200), ("London", 200), ("Atlantis", 404))
UNKNOWN_KEY = "wpk_sdk_unknown_11111111111111111111111111111111"


def keys_file(keys: dict[str, tuple[str, dict[str, object]]] = KEYS) -> proxy_config.KeysFile:
    return proxy_config.KeysFile(
        keys=[
            proxy_process.key_entry(f"sdk/{name}", plaintext, **fields)
            for name, (plaintext, fields) in keys.items()
        ]
    )


class SdkStack:
    """The emulator and the proxy processes; :attr:`url`, :attr:`analytics_url`, :meth:`key`, :meth:`env`."""

    def __init__(self, workdir: pathlib.Path, database: AnalyticsDatabase | None = None) -> None:
        self.emulator = om.OpenMeteoEmulator().start()
        self.proxy = proxy_process.ProxyProcess(
            workdir / "proxy", scenario.build_config(self.emulator, None), keys_file()
        )
        self.history_proxy: proxy_process.ProxyProcess | None = None
        if database is not None:
            config = scenario.build_config(
                self.emulator,
                None,
                analytics=proxy_config.Analytics(
                    database=proxy_config.AnalyticsDatabase(url=database.url),
                    writer=proxy_config.AnalyticsWriter(flush_interval_seconds=0.05),
                ),
            )
            env = {proxy_config.ANALYTICS_PASSWORD_ENV: database.password}
            self.history_proxy = proxy_process.ProxyProcess(workdir / "history", config, keys_file(), env=env)
        try:
            for proc in self.processes:
                proc.start()
            if database is not None:
                self._seed(database)
        except (RuntimeError, TimeoutError, httpx.HTTPError):
            self.stop()
            raise

    @property
    def processes(self) -> list[proxy_process.ProxyProcess]:
        return [self.proxy] + ([self.history_proxy] if self.history_proxy else [])

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def analytics_url(self) -> str:
        """The proxy with a usage history (PostgreSQL) and the requests of :data:`SEEDED` in it."""
        assert self.history_proxy is not None, "a stack without a database has no history proxy"
        return self.history_proxy.url

    def key(self, name: str) -> str:
        return KEYS[name][0]

    def env(self) -> dict[str, str]:
        """What a child test runner is told: the proxies' URLs, the keys, the emulator's control URL."""
        env = {
            "WEATHER_PROXY_URL": self.url,
            ENV_PREFIX: self.key("main"),
            f"{ENV_PREFIX}_UNKNOWN": UNKNOWN_KEY,
            "WEATHER_PROXY_EMULATOR": self.emulator.base_url,
        }
        if self.history_proxy is not None:
            env["WEATHER_PROXY_ANALYTICS_URL"] = self.analytics_url
        env.update({f"{ENV_PREFIX}_{name.upper()}": plaintext for name, (plaintext, _) in KEYS.items()})
        return env

    def _seed(self, database: AnalyticsDatabase, timeout: float = 30.0) -> None:
        """Send :data:`SEEDED` to the history proxy; return once its rows are in the database."""
        headers = {"X-API-Key": self.key("analytics")}
        with httpx.Client(base_url=self.analytics_url, headers=headers, timeout=10) as client:
            for city, status in SEEDED:
                answer = client.get("/v1/weather", params={"city": city})
                assert answer.status_code == status, (city, answer.status_code, answer.text)
        conninfo = psycopg.conninfo.make_conninfo(database.url, password=database.password)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(conninfo, connect_timeout=2) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM requests WHERE key_id = %s", ("sdk/analytics",)
                    ).fetchone()
                if row is not None and row[0] >= len(SEEDED):
                    return
            except psycopg.errors.UndefinedTable:
                pass  # the proxy has not created its schema yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"the seeded requests were not written within {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.processes:
            proc.stop()
        self.emulator.stop()
        for proc in self.processes:
            print(f"--- sdk proxy log tail ({proc.url}) ---\n{proc.log_tail()}")


@pytest.fixture(scope="module")
def sdk_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[SdkStack]:
    """One stack per test module (each language's suite gets fresh buckets, quotas and history)."""
    postgres_server.ensure_running()
    database = postgres_server.create_database()
    try:
        stack = SdkStack(tmp_path_factory.mktemp("sdk-proxy"), database)
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        postgres_server.drop_database(database.name)


@pytest.fixture(scope="module")
def weather_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkStack]:
    """The stack without the history proxy (no PostgreSQL needed): for what calls the weather routes only."""
    stack = SdkStack(tmp_path_factory.mktemp("sdk-proxy"))
    try:
        yield stack
    finally:
        stack.stop()


def unavailable(message: str) -> NoReturn:
    """Skip, or under CI=true fail: in CI the SDK suites never skip silently."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: not skipped)", pytrace=False)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """The path of ``name`` on PATH (else :func:`unavailable`)."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} not found on PATH (the SDK suites need node, npm and go)")
    return found


def require_node_packages(package_dir: pathlib.Path) -> None:
    """``npm ci`` has run in ``package_dir`` (else :func:`unavailable`)."""
    require_tool("node")
    if not (package_dir / "node_modules" / ".package-lock.json").is_file():
        unavailable(f"{package_dir.relative_to(REPO)}: node packages not installed: run `make sdk-deps`")


def run_suite(command: list[str], cwd: pathlib.Path, env: dict[str, str], timeout: float = 240) -> str:
    """Run a child test runner; its output, or a failure that shows it."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(done.stdout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-6000:]}", pytrace=False)
    return done.stdout
