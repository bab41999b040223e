"""``WeatherClient`` and ``AsyncWeatherClient``: the API's calls over httpx, sync and async.

Both share :class:`_Calls`, which knows everything but how to send and how to wait: the
headers (the API key is given once, to the constructor), the retry decisions, the ETag
store, and how an answer becomes a model or an error.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from weather_proxy_client import errors, models, retry
from weather_proxy_client._version import __version__

T = TypeVar("T")
Params = Mapping[str, str | float]
DEFAULT_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Stored:
    etag: str
    body: bytes


class ETagStore:
    """The last ETag and body per URL (bounded, least recently used out first), for If-None-Match."""

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: collections.OrderedDict[str, _Stored] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str) -> _Stored | None:
        with self._lock:
            found = self._entries.get(url)
            if found is not None:
                self._entries.move_to_end(url)
            return found

    def put(self, url: str, etag: str, body: bytes) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[url] = _Stored(etag, body)
            self._entries.move_to_end(url)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


@dataclasses.dataclass(frozen=True, slots=True)
class _Request:
    url: str
    headers: dict[str, str]
    stored: _Stored | None  # what a 304 stands for


def _weather_params(
    city: str | None, country: str | None, lat: float | None, lon: float | None
) -> dict[str, str | float]:
    if city is not None:
        if lat is not None or lon is not None:
            raise ValueError("give either city or lat/lon, not both")
        return {"city": city, **({"country": country} if country else {})}
    if lat is None or lon is None:
        raise ValueError("give city, or lat and lon")
    if country is not None:
        raise ValueError("country: only goes with city")
    return {"lat": lat, "lon": lon}


def _range_params(dates: models.DateRange | None, **more: str | int) -> dict[str, str | float]:
    """``from`` and ``to`` (none: the proxy's default, the last 7 days), and the route's own."""
    if dates is not None and not isinstance(dates, models.DateRange):
        raise TypeError("dates: a DateRange(first, last) of datetime.date, or None")
    return {**(dates.params() if dates is not None else {}), **more}


def _history_params(dates: models.DateRange, granularity: models.Granularity) -> dict[str, str | float]:
    if dates is None:
        raise TypeError("dates: the usage history needs a DateRange(first, last)")
    return _range_params(dates, granularity=granularity)


_TOP_CITIES = models.Listing.parser(models.TopCity.from_json)
_COUNTRIES = models.Listing.parser(models.CountryCount.from_json)
_PEAK_HOURS = models.Listing.parser(models.PeakHour.from_json)
_CACHE = models.Listing.parser(models.CachePeriod.from_json)
_UPSTREAM = models.Listing.parser(models.UpstreamPeriod.from_json)


class _Calls:
    """What both clients share; no I/O."""

    def __init__(
        self, base_url: str, api_key: str | None, retry_policy: retry.RetryPolicy, etags: int
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {
            "Accept": "application/json, application/problem+json",
            "User-Agent": f"weather-proxy-client-python/{__version__}",
        }
        if api_key:
            self.headers["X-API-Key"] = api_key
        self.retry = retry_policy
        self.etags = ETagStore(etags)

    def request(self, path: str, params: Params | None = None) -> _Request:
        url = str(httpx.URL(self.base_url + path, params=params))
        stored = self.etags.get(url)
        headers = {"If-None-Match": stored.etag} if stored is not None else {}
        return _Request(url, headers, stored)

    def delay_after(self, response: httpx.Response, attempt: int, waited: float) -> float | None:
        """The wait before trying again, or None: the answer is final."""
        if not retry.is_retried(response.status_code, None):
            return None
        problem = errors.parse_problem(response.status_code, response.reason_phrase, response.content)
        if not retry.is_retried(response.status_code, problem.type):
            return None
        wanted = retry.retry_after(response.headers)
        return self.retry.delay(self.retry.default_delay if wanted is None else wanted, attempt, waited)

    def delay_after_failure(self, exc: httpx.TransportError, attempt: int, waited: float) -> float:
        """The wait before trying again after no answer at all; raises when the budget is spent."""
        delay = self.retry.delay(self.retry.default_delay, attempt, waited)
        if delay is None or not isinstance(exc, httpx.ConnectError):
            raise errors.TransportError(f"{type(exc).__name__}: {exc}") from exc
        return delay

    def decode(
        self, request: _Request, response: httpx.Response, parse: Callable[[Any, models.ResponseMeta], T]
    ) -> T:
        """The model of a 200 (or of the stored body on a 304), or the error of any other answer."""
        headers = response.headers
        status = response.status_code
        meta = models.ResponseMeta(
            status=status,
            request_id=headers.get("x-request-id"),
            etag=headers.get("etag") or (request.stored.etag if request.stored else None),
            rate_limit=models.RateLimit.from_headers(headers),
        )
        if status == 304 and request.stored is not None:
            body = request.stored.body
        elif 200 <= status < 300:
            body = response.content
            if meta.etag:
                self.etags.put(request.url, meta.etag, body)
        else:
            raise errors.from_response(
                status, response.reason_phrase, headers, response.content, retry.retry_after(headers)
            )
        return parse(json.loads(body), meta)


class WeatherClient:
    """A synchronous client. Use it as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        retry_policy: retry.RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        etag_cache_size: int = 256,
        http_client: httpx.Client | None = None,
    ) -> None:
        """``http_client``: your own httpx.Client (proxies, TLS, transports); it is not closed here."""
        self._calls = _Calls(base_url, api_key, retry_policy or retry.RetryPolicy(), etag_cache_size)
        self._owned = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def weather(
        self,
        city: str | None = None,
        *,
        country: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> models.Weather:
        """Current weather for ``city`` (optionally narrowed by ``country``) or at ``lat``/``lon``."""
        return self._get("/v1/weather", _weather_params(city, country, lat, lon), models.Weather.from_json)

    def usage(self) -> models.Usage:
        """The calling key's limit, remaining tokens, quota and today's counts."""
        return self._get("/v1/usage", None, models.Usage.from_json)

    def usage_history(
        self, dates: models.DateRange, *, granularity: models.Granularity = "day"
    ) -> models.UsageHistory:
        """The calling key's requests, errors and cache hits per UTC day (or hour) of ``dates``."""
        return self._get("/v1/usage", _history_params(dates, granularity), models.UsageHistory.from_json)

    def top_cities(
        self, dates: models.DateRange | None = None, *, limit: int = 10
    ) -> models.Listing[models.TopCity]:
        """The most requested places, most first (``limit``: 1 to 100). Needs ``analytics:read``."""
        return self._get("/v1/analytics/top-cities", _range_params(dates, limit=limit), _TOP_CITIES)

    def countries(self, dates: models.DateRange | None = None) -> models.Listing[models.CountryCount]:
        """Weather requests per country of the place asked for, most first."""
        return self._get("/v1/analytics/countries", _range_params(dates), _COUNTRIES)

    def peak_hours(self, dates: models.DateRange | None = None) -> models.Listing[models.PeakHour]:
        """API requests per UTC weekday and hour: all 168 cells, by weekday then hour."""
        return self._get("/v1/analytics/peak-hours", _range_params(dates), _PEAK_HOURS)

    def cache_efficiency(
        self, dates: models.DateRange | None = None, *, granularity: models.Granularity = "day"
    ) -> models.Listing[models.CachePeriod]:
        """Weather answers per period by cache status, and the hit ratio; oldest first."""
        return self._get("/v1/analytics/cache", _range_params(dates, granularity=granularity), _CACHE)

    def upstream_calls(
        self, dates: models.DateRange | None = None, *, granularity: models.Granularity = "day"
    ) -> models.Listing[models.UpstreamPeriod]:
        """Calls to Open-Meteo per period and API (geocoding, forecast); oldest first."""
        return self._get("/v1/analytics/upstream", _range_params(dates, granularity=granularity), _UPSTREAM)

    def _get(self, path: str, params: Params | None, parse: Callable[[Any, models.ResponseMeta], T]) -> T:
        request = self._calls.request(path, params)
        attempt, waited = 1, 0.0
        while True:
            try:
                response = self._http.get(request.url, headers={**self._calls.headers, **request.headers})
            except httpx.TransportError as exc:
                delay: float | None = self._calls.delay_after_failure(exc, attempt, waited)
            else:
                delay = self._calls.delay_after(response, attempt, waited)
                if delay is None:
                    return self._calls.decode(request, response, parse)
            assert delay is not None
            time.sleep(delay)
            attempt, waited = attempt + 1, waited + delay

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncWeatherClient:
    """The asyncio client: :class:`WeatherClient`'s methods as coroutines."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        retry_policy: retry.RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        etag_cache_size: int = 256,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._calls = _Calls(base_url, api_key, retry_policy or retry.RetryPolicy(), etag_cache_size)
        self._owned = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def weather(
        self,
        city: str | None = None,
        *,
        country: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> models.Weather:
        return await self._get(
            "/v1/weather", _weather_params(city, country, lat, lon), models.Weather.from_json
        )

    async def usage(self) -> models.Usage:
        return await self._get("/v1/usage", None, models.Usage.from_json)

    async def usage_history(
        self, dates: models.DateRange, *, granularity: models.Granularity = "day"
    ) -> models.UsageHistory:
        return await self._get(
            "/v1/usage", _history_params(dates, granularity), models.UsageHistory.from_json
        )

    async def top_cities(
        self, dates: models.DateRange | None = None, *, limit: int = 10
    ) -> models.Listing[models.TopCity]:
        return await self._get("/v1/analytics/top-cities", _range_params(dates, limit=limit), _TOP_CITIES)

    async def countries(self, dates: models.DateRange | None = None) -> models.Listing[models.CountryCount]:
        return await self._get("/v1/analytics/countries", _range_params(dates), _COUNTRIES)

    async def peak_hours(self, dates: models.DateRange | None = None) -> models.Listing[models.PeakHour]:
        return await self._get("/v1/analytics/peak-hours", _range_params(dates), _PEAK_HOURS)

    async def cache_efficiency(
        self, dates: models.DateRange | None = None, *, granularity: models.Granularity = "day"
    ) -> models.Listing[models.CachePeriod]:
        return await self._get("/v1/analytics/cache", _range_params(dates, granularity=granularity), _CACHE)

    async def upstream_calls(
        self, dates: models.DateRange | None = None, *, granularity: models.Granularity = "day"
    ) -> models.Listing[models.UpstreamPeriod]:
        return await self._get(
            "/v1/analytics/upstream", _range_params(dates, granularity=granularity), _UPSTREAM
        )

    async def _get(
        self, path: str, params: Params | None, parse: Callable[[Any, models.ResponseMeta], T]
    ) -> T:
        request = self._calls.request(path, params)
        attempt, waited = 1, 0.0
        while True:
            try:
                response = await self._http.get(
                    request.url, headers={**self._calls.headers, **request.headers}
                )
            except httpx.TransportError as exc:
                delay: float | None = self._calls.delay_after_failure(exc, attempt, waited)
            else:
                delay = self._calls.delay_after(response, attempt, waited)
                if delay is None:
                    return self._calls.decode(request, response, parse)
            assert delay is not None
            await asyncio.sleep(delay)
            attempt, waited = attempt + 1, waited + delay

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
