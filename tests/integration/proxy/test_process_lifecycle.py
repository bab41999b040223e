"""The proxy as a process: refuses bad config at start, drains on SIGTERM, never logs a key."""

from __future__ import annotations

import concurrent.futures
import signal

import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from tests.integration.proxy import scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("cache:\n  ttlSecondz: 5\n", "ttlSecondz"),
        ("upstream:\n  timeoutSeconds: -1\n", "timeoutSeconds"),
        ("environment: moon\n", "environment"),
    ],
)
def test_bad_config_at_startup_exits_non_zero_naming_the_field(
    make_config: scenario.ConfigBuilder, proxy_factory: proxy_process.ProxyFactory, text: str, field: str
) -> None:
    proxy = proxy_factory(make_config(), start=False)
    proxy.write_config(text)
    proxy.start(wait=False)
    code = proxy.wait_exit(timeout=30)
    assert code != 0
    assert field in proxy.log_text()
    assert "Traceback" not in proxy.log_text()


def test_sigterm_lets_the_in_flight_request_finish(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    proxy = proxy_factory(make_config(timeout=10.0), scenario.standard_keys())
    openmeteo.set_fault("forecast", "slow", seconds=1.5)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(scenario.weather, proxy.url, city="Sydney")
        assert scenario.wait_until(lambda: openmeteo.calls("forecast") == 1, timeout=10)
        proxy.signal(signal.SIGTERM)
        response = in_flight.result(30)
    assert response.status_code == 200, response.text
    assert response.json()["location"]["name"] == "Sydney"
    assert proxy.wait_exit(timeout=30) in proxy_process.GRACEFUL_EXIT_CODES


def test_api_keys_never_reach_the_log(
    make_config: scenario.ConfigBuilder, proxy_factory: proxy_process.ProxyFactory
) -> None:
    proxy = proxy_factory(make_config(log_level="debug"), scenario.standard_keys())
    for key in scenario.ALL_PLAINTEXT_KEYS:
        for _ in range(5):  # also past the tiny key's limit
            scenario.weather(proxy.url, key, city="Paris")
    scenario.weather(proxy.url, "wpk_never_issued_0123456789abcdef", city="Paris")
    scenario.weather(proxy.url, scenario.KEY_ALPHA, city="Atlantisxyz")
    assert proxy.stop() in proxy_process.GRACEFUL_EXIT_CODES
    log = proxy.log_text()
    assert log.strip(), "the proxy logged nothing: the check below would prove nothing"
    for key in (*scenario.ALL_PLAINTEXT_KEYS, "wpk_never_issued_0123456789abcdef"):
        assert key not in log
