"""``GET /v1/weather`` (and its alias ``/weather``): current weather by city or coordinates.

The hit path assembles the body from cached pre-serialized fragments and never
touches pydantic: the models in ``schemas`` only document the API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import urllib.parse
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from weather_proxy.cache import entries, swr
from weather_proxy.http import problems
from weather_proxy.routes import deps, schemas
from weather_proxy.upstream import client as upstream

router = APIRouter(tags=["weather"])

MAX_CITY = 100
X_CACHE = {swr.HIT: "HIT", swr.MISS: "MISS", swr.STALE: "STALE"}

PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "city",
        "in": "query",
        "required": False,
        "description": "Place name, 1-100 characters. Excludes lat/lon.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CITY},
        "example": "Paris",
    },
    {
        "name": "country",
        "in": "query",
        "required": False,
        "description": "ISO 3166-1 alpha-2 country code narrowing a city search.",
        "schema": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
        "example": "FR",
    },
    {
        "name": "lat",
        "in": "query",
        "required": False,
        "description": "Latitude in degrees, with lon.",
        "schema": {"type": "number", "minimum": -90, "maximum": 90},
        "example": 48.85,
    },
    {
        "name": "lon",
        "in": "query",
        "required": False,
        "description": "Longitude in degrees, with lat.",
        "schema": {"type": "number", "minimum": -180, "maximum": 180},
        "example": 2.35,
    },
    {
        "name": "X-API-Key",
        "in": "header",
        "required": False,
        "description": "API key (required when the proxy's auth.required is true).",
        "schema": {"type": "string"},
    },
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "An ETag from an earlier answer: 304 when the data did not change.",
        "schema": {"type": "string"},
    },
]

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": schemas.WeatherOut,
        "description": "Current weather. Headers: X-Cache, Age, Cache-Control, ETag, RateLimit-*.",
    },
    304: {"description": "Not modified (If-None-Match matched the ETag)."},
    400: schemas.problem(
        "Bad input: empty or over-long city, coordinates out of range, or both.", 400, "Bad request"
    ),
    401: schemas.problem("X-API-Key missing and the API requires one.", 401, "Missing API key"),
    403: schemas.problem("X-API-Key unknown, expired or disabled.", 403, "Invalid API key"),
    404: schemas.problem("No place by that name.", 404, "City not found"),
    429: schemas.problem("Rate limit exceeded; see Retry-After.", 429, "Too many requests"),
    500: schemas.problem("Unexpected error (no details are leaked).", 500, "Internal server error"),
    502: schemas.problem("The upstream refused or garbled the request.", 502, "Bad gateway"),
    503: schemas.problem(
        "Upstream unavailable and nothing stale to serve; see Retry-After.", 503, "Upstream unavailable"
    ),
    504: schemas.problem(
        "The request deadline (http.requestTimeoutSeconds) passed.", 504, "Request deadline exceeded"
    ),
}


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


@dataclasses.dataclass(frozen=True, slots=True)
class WeatherQuery:
    """A validated query: a city (and optional country) or coordinates."""

    city: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None


def _coordinate(raw: str | None, name: str, bound: float) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise problems.ProblemError(400, f"{name}: must be a number, got {raw[:20]!r}.") from None
    if not -bound <= value <= bound:  # also rejects nan
        raise problems.ProblemError(400, f"{name}: must be between {-bound:g} and {bound:g}.")
    return value


def parse_query(query_string: bytes) -> WeatherQuery:
    """Validate the query by hand: FastAPI's per-parameter machinery costs more than the hit path."""
    params = dict(urllib.parse.parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    city = params.get("city")
    country = params.get("country")
    lat = _coordinate(params.get("lat"), "lat", 90)
    lon = _coordinate(params.get("lon"), "lon", 180)
    if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise problems.ProblemError(400, "country: must be a two-letter ISO 3166-1 code.")
    if city is not None:
        if lat is not None or lon is not None:
            raise problems.ProblemError(400, "Give either city or lat/lon, not both.")
        name = city.strip()
        if not name:
            raise problems.ProblemError(400, "city: must not be empty.")
        if len(name) > MAX_CITY:
            raise problems.ProblemError(400, f"city: must be at most {MAX_CITY} characters.")
        return WeatherQuery(city=name, country=country.upper() if country else None)
    if country is not None:
        raise problems.ProblemError(400, "country: only goes with city.")
    if lat is None and lon is None:
        raise problems.ProblemError(400, "Give city, or lat and lon.")
    if lat is None or lon is None:
        raise problems.ProblemError(400, "lat and lon must be given together.")
    return WeatherQuery(lat=lat, lon=lon)


@router.get(
    "/v1/weather",
    summary="Current weather for a city or coordinates",
    description=(
        "Current conditions from Open-Meteo, cached (fresh for `cache.ttlSeconds`, then served stale up to "
        "`cache.staleTtlSeconds` while it is refreshed). Query by `city` (optionally `country`) "
        "or by `lat`+`lon`. Weather data by Open-Meteo.com, CC BY 4.0."
    ),
    response_class=Response,
    responses=RESPONSES,
    openapi_extra={"parameters": PARAMETERS},
)
async def get_weather(request: Request) -> Response:
    rt = request.app.state.runtime
    caller = await deps.authorized_caller(request)
    query = parse_query(request.scope["query_string"])
    name, lat, lon = query.city, query.lat, query.lon
    state = request.state
    if name is not None:
        state.city = name
    try:
        async with asyncio.timeout(rt.config.http.request_timeout_seconds):
            if name is not None:
                geo = await rt.service.locate(name, query.country)
                location_json = geo.location_json
                lat, lon = geo.location.latitude, geo.location.longitude
            assert lat is not None
            assert lon is not None
            entry, status = await rt.service.weather(lat, lon)
    except TimeoutError:
        raise problems.ProblemError(
            504, f"No answer within {rt.config.http.request_timeout_seconds:g} seconds."
        ) from None
    except swr.CityNotFound:
        raise problems.ProblemError(404, f"No place named {name!r}.", title="City not found") from None
    except upstream.UpstreamUnavailable as exc:
        raise problems.ProblemError(
            503,
            "The weather service is unavailable and nothing cached can stand in.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except upstream.UpstreamRejected as exc:
        raise problems.ProblemError(502, f"The weather service refused the request: {exc.reason}") from None
    state.cache = status
    if name is None:
        location_json = orjson.dumps(
            {
                "name": None,
                "country": None,
                "latitude": entries.rounded(lat),
                "longitude": entries.rounded(lon),
                "timezone": entry.timezone,
            }
        )
    return _respond(request, rt, caller, location_json, entry, status, name)


def _respond(
    request: Request,
    rt: Any,
    caller: deps.Caller,
    location_json: bytes,
    entry: entries.WeatherEntry,
    status: str,
    city: str | None,
) -> Response:
    now = time.time()
    age = max(0, int(now - entry.fetched_at))
    stale = status == swr.STALE
    max_age = 0 if stale else max(0, int(entry.fresh_until - now))
    stale_ttl = rt.config.cache.stale_ttl_seconds
    etag = 'W/"' + hashlib.blake2b(location_json + entry.current_json, digest_size=8).hexdigest() + '"'
    headers = {
        "X-Cache": X_CACHE[status],
        "Age": str(age),
        "Cache-Control": (
            f"public, max-age={max_age}, stale-while-revalidate={stale_ttl}, stale-if-error={stale_ttl}"
        ),
        "ETag": etag,
        "RateLimit-Limit": str(caller.decision.limit),
        "RateLimit-Remaining": str(caller.decision.remaining),
        "RateLimit-Reset": str(caller.decision.reset_seconds),
    }
    key_id = caller.identity.key_id
    if key_id is not None:
        rt.analytics.record(key_id, city)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    body = b"".join(
        (
            b'{"location":',
            location_json,
            b',"current":',
            entry.current_json,
            b',"cache":{"status":"',
            status.encode(),
            b'","ageSeconds":',
            str(age).encode(),
            b',"stale":',
            b"true" if stale else b"false",
            b'},"source":"open-meteo"}',
        )
    )
    return Response(body, media_type="application/json", headers=headers)


router.add_api_route(
    "/weather",
    get_weather,
    methods=["GET"],
    summary="Alias of /v1/weather",
    description="Same handler as `/v1/weather`, kept for older clients.",
    response_class=Response,
    responses=RESPONSES,
    openapi_extra={"parameters": PARAMETERS},
)
