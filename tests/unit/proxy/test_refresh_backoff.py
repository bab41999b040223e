"""Background refreshes under an upstream outage: backed off per key, logged once per change of state."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import AppFactory, age_entry, refreshes_done
from weather_proxy.cache import swr
from weather_proxy.observability import logging as logs

PARIS = "48.85,2.35"
PARAMS = {"lat": "48.85", "lon": "2.35"}
SWR_LOGGER = "weather_proxy.cache.swr"
ATTEMPTS = 2  # upstream.retries.attempts of the unit tests' config: upstream calls per refresh


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_backoff_doubles_up_to_its_cap_and_success_forgets_the_key() -> None:
    clock = FakeClock()
    backoff = swr.RefreshBackoff(max_keys=10, initial=1.0, maximum=8.0, clock=clock)
    assert backoff.due("k")
    delays = []
    for _ in range(6):
        backoff.failed("k")
        delays.append(backoff.delay("k"))
        assert not backoff.due("k")
        clock.advance(backoff.delay("k") - 0.01)  # type: ignore[operator]
        assert not backoff.due("k")
        clock.advance(0.01)
        assert backoff.due("k")
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    backoff.succeeded("k")
    assert backoff.due("k")
    assert len(backoff) == 0
    backoff.failed("k")
    assert backoff.delay("k") == 1.0  # starts over after a success


def test_backoff_holds_at_most_max_keys() -> None:
    clock = FakeClock()
    backoff = swr.RefreshBackoff(max_keys=3, clock=clock)
    for key in ("a", "b", "c", "d", "e"):
        backoff.failed(key)
    assert len(backoff) == 3
    assert backoff.due("a")  # the oldest failures were let go
    assert backoff.due("b")
    assert not backoff.due("e")
    backoff.failed("c")  # failing again makes it the newest
    backoff.failed("f")
    assert len(backoff) == 3
    assert backoff.due("d")
    assert not backoff.due("c")


@pytest.fixture
def app_log_levels() -> Iterator[None]:
    """The app's log levels as ``logs.configure`` sets them, restored afterwards."""
    names = ("", "weather_proxy", *logs.QUIET_LIBRARIES)
    saved = {name: logging.getLogger(name).level for name in names}
    logs.set_level("info")
    try:
        yield
    finally:
        for name, saved_level in saved.items():
            logging.getLogger(name).setLevel(saved_level)


@pytest.mark.usefixtures("app_log_levels")
async def test_an_outage_starts_few_refreshes_and_logs_once(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=SWR_LOGGER)
    clock = FakeClock()
    anonymous = {"requestsPerMinute": 100_000, "burst": 1000}
    config = {
        "cache": {"ttlSeconds": 60, "staleTtlSeconds": 3600},
        "rateLimit": {"anonymous": anonymous},
        # A breaker that stays closed: every refresh really calls the failing upstream.
        "upstream": {"circuitBreaker": {"failureThreshold": 1000, "resetTimeoutSeconds": 30}},
    }
    async with proxy(**config) as (app, client):
        service = app.state.runtime.parts.service
        service.refresh_backoff.clock = clock
        await client.get("/v1/weather", params=PARAMS)
        age_entry(app, PARIS, 120)
        openmeteo.set_fault("forecast", "error500")
        before = openmeteo.calls("forecast")

        async def stale_requests(count: int) -> int:
            """Upstream calls made by ``count`` stale answers, each one's refresh over before the next."""
            start = openmeteo.calls("forecast")
            for _ in range(count):
                served = await client.get("/v1/weather", params=PARAMS)
                assert served.status_code == 200
                assert served.headers["x-cache"] == "STALE"
                await refreshes_done(app)
            return openmeteo.calls("forecast") - start

        assert await stale_requests(50) == 1 * ATTEMPTS  # one refresh, not fifty
        clock.advance(1.0)
        assert await stale_requests(10) == 1 * ATTEMPTS  # due again after 1 s; next delay 2 s
        clock.advance(1.0)
        assert await stale_requests(10) == 0
        clock.advance(1.0)
        assert await stale_requests(10) == 1 * ATTEMPTS  # next delay 4 s
        for _ in range(10):
            clock.advance(service.refresh_backoff.delay(PARIS))
            await stale_requests(1)
        assert service.refresh_backoff.delay(PARIS) == swr.REFRESH_BACKOFF_MAX_SECONDS
        refreshes = (openmeteo.calls("forecast") - before) // ATTEMPTS
        assert refreshes == 3 + 10

        swr_records = [r for r in caplog.records if r.name == SWR_LOGGER]
        warnings = [r for r in swr_records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert [r for r in swr_records if r.levelno == logging.INFO] == []
        assert len([r for r in swr_records if r.levelno == logging.DEBUG]) == refreshes - 1
        httpx_lines = [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
        assert [r for r in httpx_lines if r.levelno < logging.WARNING] == []

        openmeteo.clear_faults()
        clock.advance(swr.REFRESH_BACKOFF_MAX_SECONDS)
        assert await stale_requests(1) == 1  # the refresh succeeds
        fresh = await client.get("/v1/weather", params=PARAMS)
        assert fresh.headers["x-cache"] == "HIT"
        assert len(service.refresh_backoff) == 0
        metrics = (await client.get("/metrics")).text

    swr_records = [r for r in caplog.records if r.name == SWR_LOGGER]
    assert len([r for r in swr_records if r.levelno == logging.WARNING]) == 1
    assert len([r for r in swr_records if r.levelno == logging.INFO]) == 1  # recovered, once
    assert f'weather_proxy_background_refreshes_total{{result="failure"}} {refreshes}.0' in metrics
    assert 'weather_proxy_background_refreshes_total{result="success"} 1.0' in metrics


def test_httpx_and_httpcore_log_at_warning_whatever_the_app_level() -> None:
    names = ("", "weather_proxy", *logs.QUIET_LIBRARIES)
    saved = {name: logging.getLogger(name).level for name in names}
    try:
        for level, expected in (
            ("debug", logging.WARNING),
            ("info", logging.WARNING),
            ("error", logging.ERROR),
        ):
            logs.set_level(level)
            assert logging.getLogger("weather_proxy").level == logs.LEVELS[level]  # the app's own level
            for name in logs.QUIET_LIBRARIES:
                assert logging.getLogger(name).getEffectiveLevel() == expected
    finally:
        for name, saved_level in saved.items():
            logging.getLogger(name).setLevel(saved_level)
