"""``GET /v1/weather`` (and its alias ``/weather``): the weather hit path, end to end.

Parse, authenticate, limit, look up, answer in bytes: ``answer`` does it all on raw
ASGI data, and ``swr.WeatherService`` owns the tier walk behind it (location, entry,
cache status). The body is assembled from cached pre-serialized fragments and never
touches pydantic: the models in ``schemas`` only document the API.

A cache hit is the proxy's reason to exist, and FastAPI's per-request machinery (routing,
its exception and exit-stack middlewares, Request and Response objects, gzip's header
parsing) costs more than the hit itself. So ``WeatherHits``, a middleware of the app's one
chain (inside the request context, trusted-host and CORS middlewares, outside everything
FastAPI adds), answers GETs of these paths itself with ``answer``; the FastAPI routes,
which the OpenAPI document describes, wrap the same call for an app built without it.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import re
import time
import urllib.parse
from typing import Any, NamedTuple

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from weather_proxy import config as config_mod
from weather_proxy import runtime as runtime_mod
from weather_proxy.cache import swr
from weather_proxy.http import openapi, problems
from weather_proxy.routes import deps, schemas
from weather_proxy.upstream import budget
from weather_proxy.upstream import client as upstream

router = APIRouter(tags=["weather"])

MAX_CITY = 100
SCOPE = config_mod.Scope.WEATHER_READ  # what a key needs to call these routes
X_CACHE = {swr.HIT: "HIT", swr.MISS: "MISS", swr.STALE: "STALE"}

# What the place's parameters may hold: no control characters (C0, DEL, C1: a NUL cannot even be
# stored in a history row), and something besides blanks. BLANKS are the characters ECMAScript's
# ``\s`` matches that are not control characters: the parser strips exactly these, and the
# schema's pattern spells the same classes out, so the document and the parser agree on every
# string (``\s`` itself means different sets in Python's and ECMAScript's regular expressions).
CONTROLS = r"\u0000-\u001f\u007f-\u009f"  # regular-expression ranges, read alike by both syntaxes
BLANKS = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
BLANK_CHARS = "".join(  # BLANKS as characters, for str.strip
    [" \u00a0\u1680", *map(chr, range(0x2000, 0x200B)), "\u2028\u2029\u202f\u205f\u3000\ufeff"]
)
CITY_PATTERN = rf"^[^{CONTROLS}]*[^{CONTROLS}{BLANKS}][^{CONTROLS}]*$"
_CONTROL = re.compile(f"[{CONTROLS}]")
# A coordinate as a number is written: no blanks, no underscores, no nan or inf (float() takes all).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# "city (and country) or lat and lon, not both" is one query parameter in the document: an
# object serialized form-exploded (``?city=Paris&country=FR`` or ``?lat=48.85&lon=2.35``, the
# same wire format), whose oneOf says which combinations exist. OpenAPI has no constraint across
# separate query parameters; as one object, every schema-valid query is one the proxy accepts.
CITY_QUERY: dict[str, Any] = {
    "title": "By city",
    "type": "object",
    "properties": {
        "city": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_CITY,
            "pattern": CITY_PATTERN,
            "description": f"Place name, 1-{MAX_CITY} characters: not only blanks, no control characters.",
        },
        "country": {
            "type": "string",
            "minLength": 2,
            "maxLength": 2,
            "pattern": "^[A-Za-z]{2}",
            "description": "ISO 3166-1 alpha-2 country code narrowing the city search.",
        },
    },
    "required": ["city"],
    "additionalProperties": False,
}
COORDINATES_QUERY: dict[str, Any] = {
    "title": "By coordinates",
    "type": "object",
    "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": "Latitude in degrees."},
        "lon": {"type": "number", "minimum": -180, "maximum": 180, "description": "Longitude in degrees."},
    },
    "required": ["lat", "lon"],
    "additionalProperties": False,
}
PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "place",
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "description": "Either `city` (optionally with `country`) or `lat` and `lon`, not both; each is "
        "its own query parameter (`?city=Paris&country=FR`, `?lat=48.85&lon=2.35`). Anything else is 400.",
        "schema": {"oneOf": [CITY_QUERY, COORDINATES_QUERY]},
        "examples": {
            "city": {"summary": "A city", "value": {"city": "Paris", "country": "FR"}},
            "coordinates": {"summary": "Coordinates", "value": {"lat": 48.85, "lon": 2.35}},
        },
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

ANSWER_HEADERS = openapi.headers("X-Cache", "Age", "Cache-Control", "ETag", *openapi.RATE_LIMIT)
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": schemas.WeatherOut, "description": "Current weather.", "headers": ANSWER_HEADERS},
    304: {"description": "Not modified (If-None-Match matched the ETag).", "headers": ANSWER_HEADERS},
    400: schemas.problem(
        "Bad input: empty or over-long city, coordinates out of range, or both.", 400, "Bad request"
    ),
    401: schemas.problem("X-API-Key missing and the API requires one.", 401, "Missing API key"),
    403: schemas.problem(
        "X-API-Key unknown, expired or disabled, or its key lacks weather:read.", 403, "Invalid API key"
    ),
    404: schemas.problem("No place by that name.", 404, "City not found"),
    429: {
        **schemas.problem(
            "Rate limit (rate-limited) or quota (quota-exceeded) exceeded; see Retry-After.",
            429,
            "Too many requests",
        ),
        "headers": openapi.headers(*openapi.RATE_LIMIT, "Retry-After"),
    },
    500: schemas.problem("Unexpected error (no details are leaked).", 500, "Internal server error"),
    502: schemas.problem("The upstream refused or garbled the request.", 502, "Bad gateway"),
    503: {
        **schemas.problem(
            "Upstream unavailable (upstream-unavailable) or the fleet's upstream budget spent "
            "(upstream-budget-exhausted), and nothing stale to serve; see Retry-After.",
            503,
            "Upstream unavailable",
        ),
        "headers": openapi.headers("Retry-After"),
    },
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


PLACE_PARAMETERS = ("city", "country", "lat", "lon")


def _coordinate(raw: str | None, name: str, bound: float) -> float | None:
    if raw is None:
        return None
    if not _NUMBER.fullmatch(raw):
        raise problems.ProblemError(400, f"{name}: must be a number, got {raw[:20]!r}.")
    value = float(raw)
    if not -bound <= value <= bound:
        raise problems.ProblemError(400, f"{name}: must be between {-bound:g} and {bound:g}.")
    return value


def _decode(raw: bytes, what: str) -> str:
    """A query string's name or value: ``+`` is a space, ``%XX`` an escaped byte, the whole UTF-8."""
    if b"%" in raw or b"+" in raw:
        raw = urllib.parse.unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise problems.ProblemError(400, f"{what}: must be UTF-8 (percent-encoded).") from None


def _parameters(query_string: bytes) -> dict[str, str]:
    """The place's parameters; 400 for any other parameter, or one given twice."""
    plain = query_string.isascii() and b"%" not in query_string and b"+" not in query_string
    if plain:  # nothing escaped: split the text itself (the usual query, twice as fast)
        pairs = [part.partition("=") for part in query_string.decode("ascii").split("&")]
    else:
        pairs = []
        for part in query_string.split(b"&"):
            raw_name, sep, raw_value = part.partition(b"=")
            name = _decode(raw_name, "query parameter name")
            pairs.append((name, "=" if sep else "", _decode(raw_value, name[:40])))
    params: dict[str, str] = {}
    for name, _, value in pairs:
        if name not in PLACE_PARAMETERS:
            if not name and not value:
                continue  # "a=1&&b=2": an empty part, as every query parser skips it
            raise problems.ProblemError(
                400, f"{name[:40]!r}: unknown query parameter; give city (and country), or lat and lon."
            )
        if name in params:
            raise problems.ProblemError(400, f"{name}: given more than once.")
        params[name] = value
    return params


# Valid query strings already parsed -> their query: the same few are asked again and again, and
# parsing one costs more than looking it up. Only a query that passed every check is kept, and only
# a short one: at most MAX_QUERIES x MAX_QUERY_BYTES of keys, however a client varies its bytes.
# functools' LRU (in C) and not cachetools': one call per hit instead of five in Python.
MAX_QUERIES = 10_000
MAX_QUERY_BYTES = 128


def parse_query(query_string: bytes) -> swr.Query:
    """The validated query of a query string; raises ProblemError (400) naming the parameter."""
    if len(query_string) <= MAX_QUERY_BYTES:
        return _known_query(query_string)  # a refusal raises: only valid queries are kept
    return _parse_query(query_string)


@functools.lru_cache(maxsize=MAX_QUERIES)
def _known_query(query_string: bytes) -> swr.Query:
    return _parse_query(query_string)


def _parse_query(query_string: bytes) -> swr.Query:
    """By hand: FastAPI's per-parameter machinery costs more than the hit path."""
    params = _parameters(query_string)
    city = params.get("city")
    country = params.get("country")
    lat = _coordinate(params.get("lat"), "lat", 90)
    lon = _coordinate(params.get("lon"), "lon", 180)
    if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise problems.ProblemError(400, "country: must be a two-letter ISO 3166-1 code.")
    if city is not None:
        if lat is not None or lon is not None:
            raise problems.ProblemError(400, "Give either city or lat/lon, not both.")
        if len(city) > MAX_CITY:
            raise problems.ProblemError(400, f"city: must be at most {MAX_CITY} characters.")
        if _CONTROL.search(city):
            raise problems.ProblemError(400, "city: must not contain control characters.")
        name = city.strip(BLANK_CHARS)
        if not name:
            raise problems.ProblemError(400, "city: must not be empty or only blanks.")
        return swr.Query(city=name, country=country.upper() if country else None)
    if country is not None:
        raise problems.ProblemError(400, "country: only goes with city.")
    if lat is None and lon is None:
        raise problems.ProblemError(400, "Give city, or lat and lon.")
    if lat is None or lon is None:
        raise problems.ProblemError(400, "lat and lon must be given together.")
    return swr.Query(lat=lat, lon=lon)


JSON_TYPE = (b"content-type", b"application/json")
X_CACHE_HEADERS = {status: (b"x-cache", value.encode()) for status, value in X_CACHE.items()}
STATUS_BYTES = {status: status.encode() for status in X_CACHE}


async def answer(rt: runtime_mod.Runtime, scope: Scope) -> problems.RawResponse:
    """The whole ``GET /v1/weather`` on raw ASGI data: (status, headers, body); raises ProblemError.

    Parse, authorize, ask the weather service, format: the service owns the tier walk
    (a fresh L1 answer synchronously, anything else awaited). Both ``WeatherHits`` and
    the FastAPI route call it. A cache hit makes no I/O and no pydantic or Starlette
    objects: the limit usually comes from a token lease, the entries from L1.
    """
    api_key = if_none_match = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            if api_key is not None:
                raise deps.several_keys()
            api_key = deps.header_value(value)
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
    state: dict[str, Any] = scope.setdefault("state", {})
    caller = await deps.authorize(rt, api_key, deps.client_address(scope), state, scope=SCOPE)
    query = parse_query(scope["query_string"])
    service = rt.parts.service
    if query.city is not None:
        state["city"] = query.city
    else:
        state["coordinates"] = (query.lat, query.lon)
    try:
        found = service.hit(query)
        if found is None:
            found = await _resolve(rt, service, query, state)
    except swr.CityNotFound:
        raise problems.ProblemError(404, f"No place named {query.city!r}.", title="City not found") from None
    if found.location is not None:
        state["location"] = found.location
    state["cache"] = found.status
    # The per-key city counters (/v1/analytics) count the place the geocoder found, as the history
    # rows do: never the city as typed (docs/privacy.md).
    city = found.location.name if found.location is not None else None
    return _respond(rt, caller, found, city, if_none_match)


async def _resolve(
    rt: runtime_mod.Runtime, service: swr.WeatherService, query: swr.Query, state: dict[str, Any]
) -> swr.Answer:
    """Everything but a fresh L1 hit, within the request deadline; upstream failures as problems."""
    deadline = rt.config.http.request_timeout_seconds
    # The upstream calls this request makes (tasks it starts share the tally) go to its history row.
    state["upstream"] = tally = budget.CallTally()
    token = budget.request_calls.set(tally)
    try:
        async with asyncio.timeout(deadline):
            return await service.resolve(query, located=lambda place: state.__setitem__("location", place))
    except TimeoutError:
        raise problems.deadline_exceeded(deadline) from None
    except upstream.BudgetExhausted as exc:
        raise problems.ProblemError(
            503,
            f"The fleet's upstream budget per {exc.window} is spent and nothing cached can stand in.",
            title="Upstream budget exhausted",
            slug="upstream-budget-exhausted",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except upstream.UpstreamUnavailable as exc:
        raise problems.ProblemError(
            503,
            "The weather service is unavailable and nothing cached can stand in.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except upstream.UpstreamRejected as exc:
        raise problems.ProblemError(502, f"The weather service refused the request: {exc.reason}") from None
    finally:
        budget.request_calls.reset(token)


# (location JSON, current JSON) -> (ETag, the body up to the cache status): made once per entry.
MAX_FRAGMENTS = 10_000


@functools.lru_cache(maxsize=MAX_FRAGMENTS)
def _fragments(location_json: bytes, current_json: bytes) -> tuple[bytes, bytes]:
    digest = hashlib.blake2b(location_json + current_json, digest_size=8).hexdigest()
    etag = b'W/"' + digest.encode() + b'"'
    head = b'{"location":' + location_json + b',"current":' + current_json + b',"cache":{"status":"'
    return etag, head


class Timed(NamedTuple):
    """What an answer's response holds until its Age or max-age next changes (a second at most)."""

    until: float  # epoch seconds: when Age or max-age next changes
    stale_ttl: int  # the config's cache.staleTtlSeconds it was made with
    etag: bytes
    headers: tuple[tuple[bytes, bytes], ...]  # X-Cache, Age, Cache-Control, ETag
    body: bytes


def _timed(found: swr.Answer, now: float, stale_ttl: int) -> Timed:
    """The answer's response parts, kept on it: every hit of it within a second sends the same bytes."""
    kept: Timed | None = found.formatted
    if kept is not None and now < kept.until and kept.stale_ttl == stale_ttl:
        return kept
    entry, status = found.entry, found.status
    age = max(0, int(now - entry.fetched_at))
    until = entry.fetched_at + age + 1  # Age goes up by one then
    stale = status == swr.STALE
    max_age = 0
    if not stale:
        max_age = max(0, int(entry.fresh_until - now))
        if max_age > 0:
            until = min(until, entry.fresh_until - max_age)  # max-age goes down by one then
    etag, head = _fragments(found.location_json, entry.current_json)
    age_bytes = b"%d" % age
    headers = (
        X_CACHE_HEADERS[status],
        (b"age", age_bytes),
        (
            b"cache-control",
            b"public, max-age=%d, stale-while-revalidate=%d, stale-if-error=%d"
            % (max_age, stale_ttl, stale_ttl),
        ),
        (b"etag", etag),
    )
    body = b"".join(
        (
            head,
            STATUS_BYTES[status],
            b'","ageSeconds":',
            age_bytes,
            b',"stale":true},"source":"open-meteo"}' if stale else b',"stale":false},"source":"open-meteo"}',
        )
    )
    timed = found.formatted = Timed(until, stale_ttl, etag, headers, body)
    return timed


def _respond(
    rt: runtime_mod.Runtime,
    caller: deps.Caller,
    found: swr.Answer,
    city: str | None,
    if_none_match: str | None,
) -> problems.RawResponse:
    timed = _timed(found, time.time(), rt.config.cache.stale_ttl_seconds)
    decision = caller.decision
    headers = [
        *timed.headers,
        (b"ratelimit-limit", b"%d" % decision.limit),
        (b"ratelimit-remaining", b"%d" % decision.remaining),
        (b"ratelimit-reset", b"%d" % decision.reset_seconds),
    ]
    identity = caller.identity
    if identity.key_id is not None and not identity.probe:
        rt.parts.analytics.record(identity.key_id, city)
    if if_none_match and _etag_matches(if_none_match, timed.etag.decode()):
        return 304, headers, b""
    headers.append(JSON_TYPE)
    return 200, headers, timed.body


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
    dependencies=[deps.declare_scope(SCOPE)],  # answer() checks it; this documents it
    openapi_extra={"parameters": PARAMETERS},
)
async def get_weather(request: Request) -> Response:
    """The routed form of ``answer`` (``WeatherHits`` normally answers before routing)."""
    status, headers, body = await answer(request.app.state.runtime, request.scope)
    response = Response(body, status_code=status)
    if status == 304:
        response.raw_headers = [h for h in response.raw_headers if h[0] != b"content-length"]
    response.raw_headers.extend(headers)
    return response


router.add_api_route(
    "/weather",
    get_weather,
    methods=["GET"],
    summary="Alias of /v1/weather (deprecated)",
    description="Same handler as `/v1/weather`, kept for older clients; call `/v1/weather` instead.",
    deprecated=True,
    response_class=Response,
    responses=RESPONSES,
    dependencies=[deps.declare_scope(SCOPE)],
    openapi_extra={"parameters": PARAMETERS},
)

PATHS = frozenset({"/v1/weather", "/weather"})


class WeatherHits:
    """The app's middleware answering GETs of ``PATHS`` with ``answer``; the rest goes on to FastAPI.

    It sets ``scope["route"]`` as routing would, so metrics, traces and the usage history see the
    route's template, and gzips a large answer for a client that accepts it, as FastAPI's gzip
    middleware would. Any problem is answered as a problem document. The request's deadline is
    ``answer``'s own, on the way to the upstream: a hit never waits.
    """

    def __init__(self, app: ASGIApp, runtime: runtime_mod.Runtime, gzip_minimum_size: int) -> None:
        self.app = app
        self.runtime = runtime
        self.gzip_minimum_size = gzip_minimum_size
        self.routes = {
            route.path: route
            for route in router.routes
            if isinstance(route, APIRoute) and route.path in PATHS
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.routes:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[scope["path"]]
        try:
            status, headers, body = await answer(self.runtime, scope)
        except problems.ProblemError as exc:
            status, headers, body = problems.raw(exc)
        if status != 304:
            if len(body) >= self.gzip_minimum_size and _accepts_gzip(scope):
                body = gzip.compress(body, compresslevel=6)
                headers.append((b"content-encoding", b"gzip"))
                headers.append((b"vary", b"Accept-Encoding"))
            headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value.lower()
    return False
