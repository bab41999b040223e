"""``GET /v1/analytics/*`` (scope ``analytics:read``): the fleet's usage, read from PostgreSQL.

Every route takes a range of whole UTC days, ``from`` and ``to`` (``YYYY-MM-DD``, both
included, at most 366 days; the last 7 days when both are absent). Without ``analytics`` in
the config the routes answer 404 ``analytics-disabled``; when the database does not answer,
503 ``analytics-unavailable``. ``parse_range`` and ``history_of`` serve ``/v1/usage`` too.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from weather_proxy import runtime as runtime_mod
from weather_proxy.history import database, queries, service
from weather_proxy.http import openapi, problems
from weather_proxy.routes import deps, schemas

router = APIRouter(tags=["analytics"], dependencies=[Depends(deps.only_known_parameters)])

DEFAULT_DAYS = 7
DISABLED = "analytics-disabled"
UNAVAILABLE = "analytics-unavailable"
UNAVAILABLE_RETRY_AFTER = "10"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"

# The range is one query parameter in the document, an object serialized form-exploded
# (``?from=2026-11-01&to=2026-11-30``, the same wire format), so "both or neither" is in the
# schema; "to not before from, at most 366 days" is a rule across values that JSON Schema cannot
# state, given in the description. The handlers' own parameters stay out of the document.
From = Annotated[str | None, Query(alias="from", pattern=DATE_PATTERN, include_in_schema=False)]
To = Annotated[str | None, Query(pattern=DATE_PATTERN, include_in_schema=False)]
_DAY = {"type": "string", "format": "date", "pattern": DATE_PATTERN}


def range_parameter(granularity: bool = False) -> dict[str, Any]:
    """The ``range`` query parameter: ``from`` and ``to`` together (with ``granularity`` for /v1/usage)."""
    properties: dict[str, Any] = {
        "from": {**_DAY, "description": "First UTC day of the range (YYYY-MM-DD), included."},
        "to": {**_DAY, "description": "Last UTC day of the range (YYYY-MM-DD), included."},
    }
    if granularity:
        properties["granularity"] = {
            "type": "string",
            "enum": ["day", "hour"],
            "description": "A period of the history is a UTC day (default) or hour.",
        }
    return {
        "name": "range",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": True,
        "description": "`from` and `to` (UTC days, both included), each its own query parameter; both or "
        f"neither (then the last {DEFAULT_DAYS} days). `to` must not be before `from`, and a range covers "
        f"at most {queries.MAX_DAYS} days (400 otherwise).",
        "schema": {
            "type": "object",
            "properties": properties,
            "required": ["from", "to"],
            "additionalProperties": False,
        },
        "example": {"from": "2026-11-01", "to": "2026-11-30"},
    }


RANGE = {"parameters": [range_parameter()]}
Granularity = Annotated[
    Literal["day", "hour"], Query(description="Length of a period of the series: a UTC day or hour.")
]

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: schemas.problem(
        "Bad range: from/to not a date, to before from, more than 366 days, or only one of them.",
        400,
        "Bad request",
    ),
    401: schemas.problem("X-API-Key missing.", 401, "Missing API key"),
    403: schemas.problem(
        "X-API-Key unknown, expired or disabled, or its key lacks the route's scope.", 403, "Forbidden"
    ),
    404: schemas.problem("Analytics is not configured on this fleet (analytics-disabled).", 404, "Not found"),
    429: {
        **schemas.problem(
            "Rate limit (rate-limited) or quota (quota-exceeded) exceeded; see Retry-After.",
            429,
            "Too many requests",
        ),
        "headers": openapi.headers(*openapi.RATE_LIMIT, "Retry-After"),
    },
    503: {
        **schemas.problem(
            "The analytics database does not answer (analytics-unavailable); see Retry-After.",
            503,
            "Analytics unavailable",
        ),
        "headers": openapi.headers("Retry-After"),
    },
}
RATE_LIMIT_HEADERS = openapi.headers(*openapi.RATE_LIMIT)


def _day(raw: str, name: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise problems.ProblemError(400, f"{name}: must be a date YYYY-MM-DD, got {raw[:20]!r}.") from None


def parse_range(
    first: str | None, last: str | None, granularity: queries.Granularity, *, today: datetime.date
) -> queries.Range:
    """The validated range; ProblemError 400 naming the rule it breaks."""
    if first is None and last is None:
        return queries.Range(today - datetime.timedelta(days=DEFAULT_DAYS - 1), today, granularity)
    if first is None or last is None:
        raise problems.ProblemError(400, "from and to: give both, or neither.")
    span = queries.Range(_day(first, "from"), _day(last, "to"), granularity)
    if span.last < span.first:
        raise problems.ProblemError(400, "to: must not be before from.")
    if span.days > queries.MAX_DAYS:
        raise problems.ProblemError(
            400, f"from/to: a range covers at most {queries.MAX_DAYS} days, this one {span.days}."
        )
    return span


def history_of(rt: runtime_mod.Runtime) -> service.UsageHistory:
    """The app's usage history, or 404 ``analytics-disabled``."""
    if rt.history is None:
        raise problems.ProblemError(
            404,
            "Usage history and analytics are not configured on this fleet (config.yaml analytics).",
            title="Analytics disabled",
            slug=DISABLED,
        )
    return rt.history


def unavailable(exc: database.DatabaseUnavailable) -> problems.ProblemError:
    return problems.ProblemError(
        503,
        "The analytics database does not answer; the weather routes are not affected.",
        title="Analytics unavailable",
        slug=UNAVAILABLE,
        headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
    )


def today_utc(history: service.UsageHistory) -> datetime.date:
    return history.now().date()


async def _answer(
    rt: runtime_mod.Runtime,
    caller: deps.Caller,
    first: str | None,
    last: str | None,
    granularity: queries.Granularity,
    query: Any,
) -> Response:
    history = history_of(rt)
    span = parse_range(first, last, granularity, today=today_utc(history))
    try:
        body = await history.read(lambda conn: query(conn, span))
    except database.DatabaseUnavailable as exc:
        raise unavailable(exc) from None
    return Response(orjson.dumps(body), media_type="application/json", headers=caller.decision.headers())


@router.get(
    "/v1/analytics/top-cities",
    summary="The most requested cities",
    description="Places by number of weather requests in the range (the geocoder's name and country).",
    response_class=Response,
    openapi_extra=RANGE,
    responses={
        200: {
            "model": list[schemas.TopCityOut],
            "description": "Most requested first.",
            "headers": RATE_LIMIT_HEADERS,
        },
        **PROBLEMS,
    },
)
async def top_cities(
    caller: deps.AnalyticsCallerDep,
    rt: deps.RuntimeDep,
    first: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_TOP_CITIES, description="How many cities.")] = 10,
) -> Response:
    return await _answer(
        rt, caller, first, to, "day", lambda conn, span: queries.top_cities(conn, span, limit)
    )


@router.get(
    "/v1/analytics/countries",
    summary="Requests by country",
    description="Weather requests in the range per country of the place asked for (geographic spread).",
    response_class=Response,
    openapi_extra=RANGE,
    responses={
        200: {
            "model": list[schemas.CountryOut],
            "description": "Most requested first.",
            "headers": RATE_LIMIT_HEADERS,
        },
        **PROBLEMS,
    },
)
async def countries(
    caller: deps.AnalyticsCallerDep, rt: deps.RuntimeDep, first: From = None, to: To = None
) -> Response:
    return await _answer(rt, caller, first, to, "day", queries.countries)


@router.get(
    "/v1/analytics/peak-hours",
    summary="Requests by weekday and hour",
    description="API requests in the range per UTC weekday (Monday 0) and hour: all 168 cells.",
    response_class=Response,
    openapi_extra=RANGE,
    responses={
        200: {
            "model": list[schemas.PeakHourOut],
            "description": "By weekday, then hour.",
            "headers": RATE_LIMIT_HEADERS,
        },
        **PROBLEMS,
    },
)
async def peak_hours(
    caller: deps.AnalyticsCallerDep, rt: deps.RuntimeDep, first: From = None, to: To = None
) -> Response:
    return await _answer(rt, caller, first, to, "day", queries.peak_hours)


@router.get(
    "/v1/analytics/cache",
    summary="Cache efficiency over time",
    description="Weather answers per period by cache status (hit, miss, stale) and the hit ratio.",
    response_class=Response,
    openapi_extra=RANGE,
    responses={
        200: {
            "model": list[schemas.CachePeriodOut],
            "description": "Every period, oldest first.",
            "headers": RATE_LIMIT_HEADERS,
        },
        **PROBLEMS,
    },
)
async def cache(
    caller: deps.AnalyticsCallerDep,
    rt: deps.RuntimeDep,
    first: From = None,
    to: To = None,
    granularity: Granularity = "day",
) -> Response:
    return await _answer(rt, caller, first, to, granularity, queries.cache)


@router.get(
    "/v1/analytics/upstream",
    summary="Upstream calls over time",
    description="Calls to Open-Meteo per period and API, user-driven and background alike (compare with "
    "`upstream.budget`).",
    response_class=Response,
    openapi_extra=RANGE,
    responses={
        200: {
            "model": list[schemas.UpstreamPeriodOut],
            "description": "Every period, oldest first.",
            "headers": RATE_LIMIT_HEADERS,
        },
        **PROBLEMS,
    },
)
async def upstream_calls(
    caller: deps.AnalyticsCallerDep,
    rt: deps.RuntimeDep,
    first: From = None,
    to: To = None,
    granularity: Granularity = "day",
) -> Response:
    return await _answer(rt, caller, first, to, granularity, queries.upstream)
