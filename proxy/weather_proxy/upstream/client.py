"""Open-Meteo client: geocoding search and current forecast, with retries and the breaker.

One pooled ``httpx.AsyncClient`` (owned by the app lifespan) carries every call.
Transient failures (429, 5xx, timeouts, connection errors) are retried with
exponential backoff and jitter (tenacity) and counted by the circuit breaker;
a 400 ``{"error": true, "reason": ...}`` is our fault or bad input and is
neither retried nor counted. The breaker guards one logical call (all its
attempts), so ``failureThreshold`` counts failed requests, not attempts.
Each attempt first takes one call of the fleet's upstream budget (``upstream.budget``):
a spent budget makes no call, and counts as no failure of the upstream.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pybreaker
import tenacity

from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import breaker as breaker_mod
from weather_proxy.upstream import budget as budget_mod
from weather_proxy.upstream import wmo

log = logging.getLogger(__name__)

FORECAST_FIELDS = "temperature_2m,wind_speed_10m,wind_direction_10m,weather_code,is_day"


class UpstreamUnavailable(Exception):
    """The upstream could not answer (retries exhausted or breaker open)."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class UpstreamRejected(Exception):
    """The upstream refused the request (400 with a reason) or answered nonsense."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetExhausted(UpstreamUnavailable):
    """No call was made: a window of the fleet's upstream budget is spent (see ``upstream.budget``)."""

    def __init__(self, exc: budget_mod.BudgetExhausted) -> None:
        super().__init__(str(exc), retry_after=exc.retry_after)
        self.window = exc.window
        self.by_background = exc.by_background


class _Transient(breaker_mod.TransientFailure):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _BudgetSpentWhileRetrying(_Transient):
    """A retry found the budget spent: the call failed (the attempt before did), no further attempts."""

    def __init__(self, exc: budget_mod.BudgetExhausted) -> None:
        super().__init__(str(exc))
        self.exhausted = exc


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    name: str | None
    country: str | None
    latitude: float
    longitude: float
    timezone: str | None
    id: int | None = None  # the geocoder's id of the place (GeoNames); not part of the response

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "country": self.country,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "timezone": self.timezone,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Location:
        place_id = data.get("id")
        return cls(
            data["name"], data["country"], data["latitude"], data["longitude"], data["timezone"], place_id
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Current:
    time: str
    temperature_c: float | None
    wind_speed_kmh: float | None
    wind_direction_deg: float | None
    weather_code: int | None
    is_day: bool | None
    timezone: str | None

    def to_json(self) -> dict[str, Any]:
        """The ``current`` object of the response (docs/contracts.md, HTTP API)."""
        return {
            "time": self.time,
            "temperatureC": self.temperature_c,
            "windSpeedKmh": self.wind_speed_kmh,
            "windDirectionDeg": self.wind_direction_deg,
            "weatherCode": self.weather_code,
            "description": wmo.describe(self.weather_code),
            "isDay": self.is_day,
        }


def _parse_location(data: Any) -> Location | None:
    results = data.get("results") if isinstance(data, dict) else None
    if not results:
        return None
    first = results[0]
    place_id = first.get("id")
    try:
        return Location(
            name=first.get("name"),
            country=first.get("country_code"),
            latitude=float(first["latitude"]),
            longitude=float(first["longitude"]),
            timezone=first.get("timezone"),
            id=place_id if isinstance(place_id, int) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamRejected(f"geocoding answer without coordinates: {exc}") from exc


def _parse_current(data: Any) -> Current:
    current = data.get("current") if isinstance(data, dict) else None
    if not isinstance(current, dict) or "time" not in current:
        raise UpstreamRejected("forecast answer without 'current'")
    is_day = current.get("is_day")
    code = current.get("weather_code")
    return Current(
        time=str(current["time"]),
        temperature_c=current.get("temperature_2m"),
        wind_speed_kmh=current.get("wind_speed_10m"),
        wind_direction_deg=current.get("wind_direction_10m"),
        weather_code=int(code) if code is not None else None,
        is_day=bool(is_day) if is_day is not None else None,
        timezone=data.get("timezone"),
    )


class OpenMeteoClient:
    """Geocoding + forecast calls through retries and the circuit breaker."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        upstream: Callable[[], config_mod.Upstream],
        breaker: breaker_mod.UpstreamBreaker,
        metrics: metrics_mod.Metrics,
        budget: budget_mod.UpstreamBudget | None = None,
    ) -> None:
        self.http = http
        self._upstream = upstream  # read per call: retries and timeouts reload live
        self.breaker = breaker
        self.metrics = metrics
        self.budget = budget

    async def search(self, name: str, country: str | None = None) -> Location | None:
        """The best geocoding match, or None when Open-Meteo knows no such place."""
        params: dict[str, str | int] = {"name": name, "count": 1, "language": "en"}
        if country:
            params["countryCode"] = country
        cfg = self._upstream()
        return _parse_location(await self._call("geocoding", cfg.geocoding_url, params, cfg))

    async def forecast(self, latitude: float, longitude: float) -> Current:
        """Current conditions at a point."""
        params: dict[str, str | float] = {
            "latitude": latitude,
            "longitude": longitude,
            "current": FORECAST_FIELDS,
        }
        cfg = self._upstream()
        return _parse_current(await self._call("forecast", cfg.forecast_url, params, cfg))

    async def _call(self, endpoint: str, url: str, params: Any, cfg: config_mod.Upstream) -> Any:
        attempted = prepaid = False
        budget = self.budget
        if budget is not None and not self.breaker.rejects_now():
            # Before the breaker: a refusal here is no outcome of the upstream's (pybreaker would count
            # it as a success). An open breaker's rejection spends nothing.
            try:
                await budget.spend(endpoint)
            except budget_mod.BudgetExhausted as exc:
                raise BudgetExhausted(exc) from None
            prepaid = True

        async def attempts() -> Any:
            nonlocal attempted, prepaid
            retrying = tenacity.AsyncRetrying(
                stop=tenacity.stop_after_attempt(cfg.retries.attempts),
                wait=tenacity.wait_exponential_jitter(
                    multiplier=cfg.retries.backoff_initial_seconds,
                    max=cfg.retries.backoff_max_seconds,
                    jitter=cfg.retries.backoff_initial_seconds,  # full jitter of the first step
                ),
                retry=tenacity.retry_if_exception(
                    lambda exc: isinstance(exc, _Transient) and not isinstance(exc, _BudgetSpentWhileRetrying)
                ),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    if budget is not None and not prepaid:
                        try:
                            await budget.spend(endpoint)
                        except budget_mod.BudgetExhausted as exc:
                            raise _BudgetSpentWhileRetrying(exc) from None
                    prepaid = False
                    attempted = True
                    return await self._once(endpoint, url, params, cfg.timeout_seconds)
            raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

        try:
            with self.breaker.calling():
                return await attempts()
        except pybreaker.CircuitBreakerError as exc:
            if not attempted:
                self.metrics.upstream_requests.labels(endpoint, "rejected").inc()
            raise UpstreamUnavailable(
                f"{endpoint}: circuit breaker open", retry_after=self.breaker.retry_after()
            ) from exc
        except _BudgetSpentWhileRetrying as exc:
            raise BudgetExhausted(exc.exhausted) from exc
        except _Transient as exc:
            raise UpstreamUnavailable(f"{endpoint}: {exc.reason}", retry_after=1) from exc

    async def _once(self, endpoint: str, url: str, params: Any, timeout_seconds: float) -> Any:
        start = time.perf_counter()
        try:
            response = await self.http.get(url, params=params, timeout=timeout_seconds)
        except httpx.TimeoutException as exc:
            self._observe(endpoint, "timeout", start)
            raise _Transient("timed out") from exc
        except httpx.HTTPError as exc:
            self._observe(endpoint, "error", start)
            raise _Transient(f"connection failed: {type(exc).__name__}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            self._observe(endpoint, "error", start)
            raise _Transient(f"HTTP {status}")
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            self._observe(endpoint, "error", start)
            raise _Transient("invalid JSON") from exc
        if status != 200 or (isinstance(data, dict) and data.get("error") is True):
            self._observe(endpoint, "error", start)
            reason = data.get("reason") if isinstance(data, dict) else None
            raise UpstreamRejected(str(reason or f"HTTP {status}"))
        self._observe(endpoint, "success", start)
        return data

    def _observe(self, endpoint: str, outcome: str, start: float) -> None:
        self.metrics.upstream_requests.labels(endpoint, outcome).inc()
        self.metrics.upstream_duration.labels(endpoint).observe(time.perf_counter() - start)
