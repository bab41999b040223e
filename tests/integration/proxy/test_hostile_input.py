"""The proxy under hostile input: what an attacker sends is refused alike by both servers.

Real proxy processes (uvicorn and granian) in front of the emulator: query strings with
parameters the API does not have, places with control characters, several API keys in one
request, a key padded with blanks (the raw bytes, as a client library would not send them),
a client-chosen Host on a path with a trailing slash. Then the keys file emptied or rewritten
in place under load, ``/v1/usage`` for a key over its quota, and every route's deadline with
PostgreSQL paused.
"""

from __future__ import annotations

import asyncio
import pathlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from testbed.postgres_server import AnalyticsDatabase, PostgresServer
from tests.integration.proxy import scenario
from tests.support import history
from weather_proxy import config as proxy_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVERS = [proxy_config.Server.UVICORN, proxy_config.Server.GRANIAN]
KEY = {"X-API-Key": scenario.KEY_ALPHA}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def emulator() -> Iterator[om.OpenMeteoEmulator]:
    with om.OpenMeteoEmulator(synthetic_cities=True) as running:
        yield running


@pytest.fixture(scope="module", params=SERVERS, ids=[server.value for server in SERVERS])
def proxy(
    request: pytest.FixtureRequest,
    emulator: om.OpenMeteoEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[proxy_process.ProxyProcess]:
    """One proxy per server for the module (memory caching only: the server is what differs)."""
    config = scenario.build_config(emulator, None, server=request.param)
    workdir = tmp_path_factory.mktemp(f"hostile-{request.param.value}")
    process = proxy_process.ProxyProcess(workdir, config, scenario.standard_keys()).start()
    try:
        yield process
    finally:
        process.stop()
        print(f"--- {request.param.value} log tail ---\n{process.log_tail()}")


def _get(
    proxy: proxy_process.ProxyProcess, target: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.get(proxy.url + target, headers={**KEY, **(headers or {})}, timeout=30)


def _raw(proxy: proxy_process.ProxyProcess, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request sent as these exact bytes; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), headers, body


def _assert_problem(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("city=Paris&x=" + "a" * 2000, "'x': unknown query parameter"),
        ("city=Paris&callback=alert", "'callback': unknown query parameter"),
        ("lat=1&lon=2&units=imperial", "'units': unknown query parameter"),
        ("city=Paris&city=Rome", "city: given more than once"),
        ("lat=1&lat=2&lon=3", "lat: given more than once"),
    ],
)
def test_parameters_the_api_does_not_have_are_400_naming_them(
    proxy: proxy_process.ProxyProcess, query: str, fragment: str
) -> None:
    _assert_problem(_get(proxy, "/v1/weather?" + query), 400, fragment)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("city=Nul%00city", "city: must not contain control characters"),  # a row PostgreSQL refuses
        ("city=%C2%85", "city: must not contain control characters"),  # NEL: a blank to str.strip
        ("city=Par%09is", "city: must not contain control characters"),
        ("city=%E3%80%80%E2%80%82", "city: must not be empty or only blanks"),
        ("city=%FF%FE", "city: must be UTF-8"),
        ("lat=nan&lon=0", "lat: must be a number"),
        ("lat=1_0&lon=0", "lat: must be a number"),
    ],
)
def test_places_with_control_characters_or_bad_numbers_are_400(
    proxy: proxy_process.ProxyProcess, query: str, fragment: str
) -> None:
    _assert_problem(_get(proxy, "/v1/weather?" + query), 400, fragment)


@pytest.mark.parametrize("target", ["/v1/weather?city=Paris", "/weather?city=Paris", "/v1/usage"])
def test_several_api_keys_are_400_on_every_route(proxy: proxy_process.ProxyProcess, target: str) -> None:
    for keys in (
        [("X-API-Key", "bogus"), ("X-API-Key", scenario.KEY_ALPHA)],
        [("X-API-Key", scenario.KEY_ALPHA)] * 2,
    ):
        response = httpx.get(proxy.url + target, headers=keys, timeout=30)
        _assert_problem(response, 400, "X-API-Key: send one key, not several")


def test_blanks_around_a_key_are_not_part_of_it(proxy: proxy_process.ProxyProcess) -> None:
    for padded in (f"{scenario.KEY_ALPHA} ", f"{scenario.KEY_ALPHA}\t", f"  {scenario.KEY_ALPHA}"):
        request = (
            f"GET /v1/weather?city=Paris HTTP/1.1\r\nHost: proxy.test\r\nX-API-Key: {padded}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        status, _, body = _raw(proxy, request)
        assert status == 200, body


def test_no_redirect_echoes_a_client_chosen_host(proxy: proxy_process.ProxyProcess) -> None:
    request = (
        f"GET /v1/weather/?city=Paris HTTP/1.1\r\nHost: evil.example\r\nX-API-Key: {scenario.KEY_ALPHA}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    status, headers, _ = _raw(proxy, request)
    assert status == 404
    assert headers["content-type"] == PROBLEM
    assert "location" not in headers


def test_usage_answers_a_key_over_its_quota_and_spends_nothing(
    make_config: scenario.ConfigBuilder, proxy_factory: proxy_process.ProxyFactory
) -> None:
    """Fleet-wide (Redis): the quota as the consumer needs to see it, exactly when it is spent."""
    two_a_day = proxy_config.Limit(
        requests_per_minute=1,
        burst=10,
        quota=proxy_config.Quota(requests=2, period=proxy_config.QuotaPeriod.DAY),
    )
    proxy = proxy_factory(make_config(), scenario.standard_keys(tiny_limit=two_a_day))
    tiny = {"X-API-Key": scenario.KEY_TINY}
    served = [_get(proxy, "/v1/weather?city=Paris", tiny).status_code for _ in range(3)]
    usages = [_get(proxy, "/v1/usage", tiny) for _ in range(3)]
    assert served == [200, 200, 429]
    for usage in usages:
        assert usage.status_code == 200, usage.text
        assert usage.json()["quota"]["used"] == 2
        assert usage.json()["quota"]["remaining"] == 0
        assert usage.headers["ratelimit-remaining"] == "8"  # two of ten taken by the weather, none by usage


def test_an_emptied_keys_file_keeps_the_last_good_keys(
    make_config: scenario.ConfigBuilder, proxy_factory: proxy_process.ProxyFactory
) -> None:
    unlimited = proxy_config.Limit(requests_per_minute=1_000_000, burst=100_000)  # only keys refuse here
    proxy = proxy_factory(make_config(default_limit=unlimited), scenario.standard_keys())
    target = pathlib.Path(proxy.keys_path).resolve()  # the file behind the volume's symlinks
    good = target.read_text()
    target.write_text("")  # truncated in place, as a mistaken `> keys.yaml` does
    assert scenario.wait_until(lambda: _get(proxy, "/health/ready").json()["checks"]["keys"]["ok"] is False)
    ready = _get(proxy, "/health/ready").json()["checks"]["keys"]
    metrics = _get(proxy, "/metrics").text
    assert "the document is empty" in ready["error"]
    assert ready["count"] == len(scenario.standard_keys().keys)
    assert scenario.metric_value(metrics, "weather_proxy_config_reload_success", {"file": "keys"}) == 0
    assert _get(proxy, "/v1/weather?city=Paris").status_code == 200
    # Rewritten in place in pieces while requests keep coming: no request sees a partial file.
    statuses: list[int] = []
    stop = threading.Event()

    def ask() -> None:
        with httpx.Client(base_url=proxy.url, headers=KEY, timeout=30) as client:
            while not stop.is_set():
                statuses.append(client.get("/v1/weather", params={"city": "Paris"}).status_code)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        for _ in range(5):
            with target.open("w") as rewriting:
                for line in good.splitlines(keepends=True):
                    rewriting.write(line)
                    rewriting.flush()
                    stop.wait(0.01)
            stop.wait(0.6)
    finally:
        stop.set()
        asker.join()
    assert statuses
    assert set(statuses) == {200}, f"{statuses.count(403)} of {len(statuses)} refused"
    # Zero keys written on purpose still means zero keys.
    target.write_text("keys: []\n")
    assert scenario.wait_until(lambda: _get(proxy, "/health/ready").json()["checks"]["keys"]["count"] == 0)
    assert _get(proxy, "/v1/weather?city=Paris").status_code == 403


async def test_every_route_answers_within_the_deadline(
    openmeteo: om.OpenMeteoEmulator,
    postgres_server: PostgresServer,
    analytics_database: AnalyticsDatabase,
    tmp_path: pathlib.Path,
) -> None:
    """PostgreSQL paused (neither answers nor refuses): usage and analytics are 504, concurrent ones too."""
    section = history.analytics(analytics_database)
    cfg = history.config(
        openmeteo,
        history.keys_file(tmp_path / "keys.yaml"),
        analytics=section,
        http={"requestTimeoutSeconds": 1},
    )
    reader = {"X-API-Key": history.READER_KEY}
    async with history.running(cfg, analytics_database.password) as (app, client):
        await history.schema_ready(app)
        postgres_server.pause()
        try:
            answers = await asyncio.gather(
                client.get("/v1/analytics/top-cities", headers=reader),
                client.get("/v1/analytics/countries", headers=reader),
                client.get("/v1/usage", params={"from": "2026-01-01", "to": "2026-01-02"}, headers=reader),
            )
        finally:
            postgres_server.resume()
        weather = await client.get("/v1/weather", params={"city": "Paris"}, headers=reader)
    for answer in answers:
        assert answer.status_code == 504, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"].endswith("/deadline-exceeded")
    assert weather.status_code == 200
