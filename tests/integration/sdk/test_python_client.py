"""The Python SDK (sdk/python, ``weather_proxy_client``) against a real proxy process.

Typed 200s, ETag revalidation (304 answered from the client's copy), problem documents as
typed errors (401, 403 invalid key and insufficient scope, 404), Retry-After honoured on
429 and 503, a spent quota surfaced at once, and the RateLimit-* numbers on responses; the
usage history and the five analytics routes against a proxy keeping its history in PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.sdk.stack import SEEDED, UNKNOWN_KEY, SdkStack
from weather_proxy_client import (
    AsyncWeatherClient,
    CountryCount,
    DateRange,
    RetryPolicy,
    TopCity,
    WeatherClient,
    __version__,
    errors,
)

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
    stack: SdkStack,
    key: str | None,
    recorder: Recorder | None = None,
    *,
    base_url: str | None = None,
    **options: Any,
) -> Iterator[WeatherClient]:
    """A client whose httpx.Client records its exchanges (ours to close: the SDK leaves it open)."""
    hooks = {"response": [recorder]} if recorder is not None else {}
    with (
        httpx.Client(event_hooks=hooks) as http,
        WeatherClient(base_url or stack.url, key, http_client=http, **options) as c,
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


# The usage history and the analytics routes, on the history proxy (PostgreSQL), whose database
# holds the stack's SEEDED requests: Paris twice (a miss, then a hit), London, an unknown place.
# Yesterday and today: the counts hold when the suite runs across midnight UTC.


def two_days() -> DateRange:
    today = datetime.datetime.now(datetime.UTC).date()
    return DateRange(today - datetime.timedelta(days=1), today)


@pytest.fixture
def analytics(sdk_stack: SdkStack, recorder: Recorder) -> Iterator[WeatherClient]:
    with client_for(sdk_stack, sdk_stack.key("analytics"), recorder, base_url=sdk_stack.analytics_url) as c:
        yield c


def test_usage_history_per_day_and_per_hour(analytics: WeatherClient, recorder: Recorder) -> None:
    dates = two_days()
    daily = analytics.usage_history(dates)
    assert daily.key == "sdk/analytics"
    assert [period.start for period in daily.periods] == [
        datetime.datetime.combine(day, datetime.time(), datetime.UTC) for day in (dates.first, dates.last)
    ]
    assert sum(period.requests for period in daily.periods) >= len(SEEDED)  # and this suite's own calls
    assert sum(period.errors for period in daily.periods) >= 1  # the unknown place
    assert sum(period.cache_hits for period in daily.periods) >= 1  # Paris, the second time
    assert daily.meta.rate_limit is not None
    hourly = analytics.usage_history(dates, granularity="hour")
    assert len(hourly.periods) == 48
    assert hourly.periods[1].start - hourly.periods[0].start == datetime.timedelta(hours=1)
    assert sum(p.requests for p in hourly.periods) >= sum(p.requests for p in daily.periods)
    assert recorder.statuses == [200, 200]


def test_top_cities_and_countries(analytics: WeatherClient) -> None:
    top = analytics.top_cities(two_days(), limit=1)
    assert list(top) == [TopCity(name="Paris", country="FR", requests=2)]
    assert top.meta.status == 200
    assert len(analytics.top_cities(two_days())) == 2  # Paris, London (the unknown place has no name)
    countries = analytics.countries(two_days())
    assert countries.items == (CountryCount(country="FR", requests=2), CountryCount(country="GB", requests=1))
    assert analytics.countries().items == countries.items  # no range: the last 7 days


def test_peak_hours_cover_the_week(analytics: WeatherClient) -> None:
    cells = analytics.peak_hours(two_days())
    assert [(cell.weekday, cell.hour) for cell in cells] == [(d, h) for d in range(7) for h in range(24)]
    assert sum(cell.requests for cell in cells) >= len(SEEDED)


def test_cache_efficiency_and_upstream_calls(analytics: WeatherClient) -> None:
    cache = analytics.cache_efficiency(two_days())
    assert len(cache) == 2
    assert sum(p.hits for p in cache) == 1  # Paris, the second time
    assert sum(p.misses for p in cache) == 2  # Paris, London
    assert any(p.hit_ratio == pytest.approx(1 / 3, abs=1e-4) for p in cache)  # rounded to 4 places
    hourly = analytics.cache_efficiency(two_days(), granularity="hour")
    assert len(hourly) == 48
    assert all(p.hit_ratio is None for p in hourly if p.hits + p.misses + p.stale == 0)
    upstream = analytics.upstream_calls(two_days(), granularity="hour")
    assert len(upstream) == 48
    assert sum(p.geocode for p in upstream) == 3  # Paris, London, the unknown place
    assert sum(p.forecast for p in upstream) == 2  # Paris, London


def test_analytics_refusals_are_typed_errors(sdk_stack: SdkStack, analytics: WeatherClient) -> None:
    today = datetime.datetime.now(datetime.UTC).date()
    with pytest.raises(errors.BadRequest) as caught:
        analytics.countries(DateRange(today, today - datetime.timedelta(days=1)))
    assert "to" in caught.value.problem.detail
    with pytest.raises(errors.BadRequest):
        analytics.usage_history(DateRange(today - datetime.timedelta(days=400), today))
    with pytest.raises(TypeError, match="not a datetime"):
        DateRange(datetime.datetime.now(datetime.UTC), today)  # type: ignore[arg-type]
    with (
        client_for(sdk_stack, sdk_stack.key("main"), base_url=sdk_stack.analytics_url) as no_scope,
        pytest.raises(errors.InsufficientScope) as refused,
    ):
        no_scope.peak_hours()
    assert "analytics:read" in refused.value.problem.detail
    # The first proxy keeps no history: analytics-disabled, a NotFound.
    with client_for(sdk_stack, sdk_stack.key("analytics")) as c:
        with pytest.raises(errors.AnalyticsDisabled) as disabled:
            c.top_cities()
        assert disabled.value.problem.type == "https://weatherproxy.dev/problems/analytics-disabled"
        assert isinstance(disabled.value, errors.NotFound)
        with pytest.raises(errors.AnalyticsDisabled):
            c.usage_history(two_days())


async def test_the_async_client_reads_the_history_and_analytics(sdk_stack: SdkStack) -> None:
    key = sdk_stack.key("analytics")
    async with AsyncWeatherClient(sdk_stack.analytics_url, key) as c:
        history = await c.usage_history(two_days(), granularity="hour")
        top = await c.top_cities(two_days(), limit=1)
        countries = await c.countries(two_days())
        cells = await c.peak_hours()
        cache = await c.cache_efficiency(two_days())
        upstream = await c.upstream_calls(two_days())
    assert history.key == "sdk/analytics"
    assert len(history.periods) == 48
    assert top[0].name == "Paris"
    assert [row.country for row in countries] == ["FR", "GB"]
    assert len(cells) == 168
    assert sum(p.hits for p in cache) == 1
    assert sum(p.forecast for p in upstream) == 2
