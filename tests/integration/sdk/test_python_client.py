"""The Python SDK (sdk/python, ``weather_proxy_client``) against a real proxy process.

Typed 200s, ETag revalidation (304 answered from the client's copy), problem documents as
typed errors (401, 403 invalid key and insufficient scope, 404), Retry-After honoured on
429 and 503, a spent quota surfaced at once, and the RateLimit-* numbers on responses.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.sdk.stack import UNKNOWN_KEY, SdkStack
from weather_proxy_client import AsyncWeatherClient, RetryPolicy, WeatherClient, __version__, errors

pytestmark = pytest.mark.integration


class Recorder:
    """An httpx event hook: the status and request headers of every exchange."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[int, httpx.Headers]] = []

    def __call__(self, response: httpx.Response) -> None:
        self.exchanges.append((response.status_code, response.request.headers))

    @property
    def statuses(self) -> list[int]:
        return [status for status, _ in self.exchanges]


class AsyncRecorder(Recorder):
    async def __call__(self, response: httpx.Response) -> None:  # type: ignore[override]
        super().__call__(response)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextlib.contextmanager
def client_for(
    stack: SdkStack, key: str | None, recorder: Recorder | None = None, **options: Any
) -> Iterator[WeatherClient]:
    """A client whose httpx.Client records its exchanges (ours to close: the SDK leaves it open)."""
    hooks = {"response": [recorder]} if recorder is not None else {}
    with (
        httpx.Client(event_hooks=hooks) as http,
        WeatherClient(stack.url, key, http_client=http, **options) as c,
    ):
        yield c


@pytest.fixture
def client(sdk_stack: SdkStack, recorder: Recorder) -> Iterator[WeatherClient]:
    with client_for(sdk_stack, sdk_stack.key("main"), recorder) as c:
        yield c


def test_weather_by_city_is_typed_and_carries_the_rate_limit(
    client: WeatherClient, recorder: Recorder
) -> None:
    weather = client.weather("Paris", country="FR")
    assert weather.location.name == "Paris"
    assert weather.location.country == "FR"
    assert weather.location.timezone == "Europe/Paris"
    assert isinstance(weather.location.latitude, float)
    assert isinstance(weather.current.temperature_c, float)
    assert isinstance(weather.current.weather_code, int)
    assert weather.current.description
    assert weather.cache.status in ("hit", "miss", "stale")
    assert weather.source == "open-meteo"
    assert weather.meta.status == 200
    assert weather.meta.request_id
    assert weather.meta.etag
    assert weather.meta.rate_limit is not None
    assert weather.meta.rate_limit.limit == 1000
    assert 0 <= weather.meta.rate_limit.remaining < 1000
    assert recorder.exchanges[0][1]["user-agent"] == f"weather-proxy-client-python/{__version__}"


def test_weather_by_coordinates(client: WeatherClient) -> None:
    weather = client.weather(lat=48.85, lon=2.35)
    assert weather.location.name is None
    assert weather.location.latitude == pytest.approx(48.85)


def test_the_second_call_revalidates_with_the_etag_and_gets_304(
    client: WeatherClient, recorder: Recorder
) -> None:
    first = client.weather("London", country="GB")
    second = client.weather("London", country="GB")
    assert recorder.statuses == [200, 304]
    assert "if-none-match" not in recorder.exchanges[0][1]
    assert recorder.exchanges[1][1]["if-none-match"] == first.meta.etag
    assert second.meta.not_modified
    assert second.location == first.location
    assert second.current == first.current
    assert second.meta.rate_limit is not None  # the 304's own numbers


def test_a_missing_key_is_a_missing_api_key_error(sdk_stack: SdkStack) -> None:
    with client_for(sdk_stack, None) as anonymous, pytest.raises(errors.MissingApiKey) as caught:
        anonymous.weather("Paris")
    problem = caught.value.problem
    assert problem.status == 401
    assert problem.type == "https://weatherproxy.dev/problems/missing-api-key"
    assert problem.title
    assert problem.detail
    assert problem.instance  # the request id


@pytest.mark.parametrize("key", [UNKNOWN_KEY, "disabled"])
def test_an_unknown_or_disabled_key_is_an_invalid_api_key_error(sdk_stack: SdkStack, key: str) -> None:
    plaintext = key if key == UNKNOWN_KEY else sdk_stack.key(key)
    with client_for(sdk_stack, plaintext) as c, pytest.raises(errors.InvalidApiKey) as caught:
        c.weather("Paris")
    assert caught.value.status == 403


def test_a_key_without_the_scope_gets_insufficient_scope(sdk_stack: SdkStack) -> None:
    with client_for(sdk_stack, sdk_stack.key("usage_only")) as c:
        with pytest.raises(errors.InsufficientScope) as caught:
            c.weather("Paris")
        assert "weather:read" in caught.value.problem.detail
        assert caught.value.problem.type == "https://weatherproxy.dev/problems/insufficient-scope"
        assert c.usage().key_id == "sdk/usage_only"


def test_an_unknown_city_is_not_found(client: WeatherClient) -> None:
    with pytest.raises(errors.NotFound) as caught:
        client.weather("Atlantis")
    assert caught.value.status == 404
    assert "Atlantis" in caught.value.problem.detail


def test_bad_arguments_are_refused_before_any_request(client: WeatherClient, recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="not both"):
        client.weather("Paris", lat=1.0, lon=2.0)
    with pytest.raises(ValueError, match="lat and lon"):
        client.weather(lat=1.0)
    assert recorder.exchanges == []


def test_bad_input_the_proxy_refuses_is_a_bad_request(client: WeatherClient) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        client.weather(lat=91.0, lon=0.0)
    assert "lat" in caught.value.problem.detail


def test_rate_limited_is_retried_after_retry_after(sdk_stack: SdkStack, recorder: Recorder) -> None:
    with client_for(sdk_stack, sdk_stack.key("tiny"), recorder) as c:
        c.weather("Madrid")
        started = time.monotonic()
        weather = c.weather("Rome")
        waited = time.monotonic() - started
    assert recorder.statuses == [200, 429, 200]
    assert waited >= 0.9  # Retry-After: 1
    assert weather.location.name == "Rome"


def test_rate_limited_is_raised_when_retries_are_off(sdk_stack: SdkStack, recorder: Recorder) -> None:
    no_retries = RetryPolicy(max_attempts=1)
    with client_for(sdk_stack, sdk_stack.key("tiny_strict"), recorder, retry_policy=no_retries) as c:
        c.weather("Paris")
        with pytest.raises(errors.RateLimited) as caught:
            c.weather("Paris")
    assert recorder.statuses == [200, 429]
    error = caught.value
    assert error.problem.type == "https://weatherproxy.dev/problems/rate-limited"
    assert error.retry_after is not None
    assert error.retry_after >= 1
    assert error.rate_limit is not None
    assert error.rate_limit.remaining == 0
    assert error.rate_limit.limit == 1


def test_a_spent_quota_is_surfaced_at_once(sdk_stack: SdkStack, recorder: Recorder) -> None:
    with client_for(sdk_stack, sdk_stack.key("quota"), recorder) as c:
        c.weather("Paris")  # the one request of the quota
        usage = c.usage()  # answered, and spending nothing, with the quota spent
        assert usage.quota is not None
        assert usage.quota.limit == 1
        assert usage.quota.used == 1
        assert usage.quota.resets_at > datetime.datetime.now(datetime.UTC)
        started = time.monotonic()
        with pytest.raises(errors.QuotaExceeded) as caught:
            c.weather("Paris")
        assert time.monotonic() - started < 0.9  # no wait: the quota resets at the day's end
    assert recorder.statuses == [200, 200, 429]
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 1


def test_upstream_unavailable_is_retried_after_retry_after(sdk_stack: SdkStack, recorder: Recorder) -> None:
    sdk_stack.emulator.set_fault("forecast", "error500", times=1)
    with client_for(sdk_stack, sdk_stack.key("main"), recorder) as c:
        weather = c.weather("Vienna")
    assert recorder.statuses == [503, 200]
    assert weather.location.name == "Vienna"


def test_upstream_unavailable_is_raised_when_the_budget_is_spent(
    sdk_stack: SdkStack, recorder: Recorder
) -> None:
    sdk_stack.emulator.set_fault("forecast", "error500", times=1)
    with (
        client_for(sdk_stack, sdk_stack.key("main"), recorder, retry_policy=RetryPolicy(max_wait=0.5)) as c,
        pytest.raises(errors.UpstreamUnavailable) as caught,
    ):
        c.weather("Zurich")
    assert recorder.statuses == [503]
    assert caught.value.retry_after == 1


def test_usage_is_typed(client: WeatherClient) -> None:
    usage = client.usage()
    assert usage.key_id == "sdk/main"
    assert usage.limit.requests_per_minute == 10_000
    assert usage.limit.capacity == 1000
    assert usage.quota is None
    assert usage.meta.rate_limit is not None


def test_a_refused_connection_is_a_transport_error() -> None:
    with (
        WeatherClient("http://127.0.0.1:9", "k", retry_policy=RetryPolicy(default_delay=0.01)) as c,
        pytest.raises(errors.TransportError),
    ):
        c.weather("Paris")


async def test_the_async_client_revalidates_and_raises_typed_errors(sdk_stack: SdkStack) -> None:
    recorder = AsyncRecorder()
    http = httpx.AsyncClient(event_hooks={"response": [recorder]})
    async with http, AsyncWeatherClient(sdk_stack.url, sdk_stack.key("main"), http_client=http) as c:
        first = await c.weather("Berlin")
        second = await c.weather("Berlin")
        assert second.meta.not_modified
        assert second.current == first.current
        with pytest.raises(errors.NotFound):
            await c.weather("Atlantis")
        assert (await c.usage()).key_id == "sdk/main"
    assert recorder.statuses == [200, 304, 404, 200]
