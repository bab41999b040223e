"""``GET /v1/usage``: the calling key's limit, what is left of it, and its request counts.

It spends nothing (no token, no quota) and answers a key over its limit or quota, as GitHub's
``/rate_limit`` does: that is when a consumer needs ``resetsAt``.

With ``from`` and ``to`` (and optionally ``granularity``) it answers the key's history instead,
from the usage history in PostgreSQL (404 ``analytics-disabled`` without it).
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from weather_proxy import runtime as runtime_mod
from weather_proxy.history import database, queries
from weather_proxy.http import problems
from weather_proxy.ratelimit import limiter
from weather_proxy.routes import analytics, deps, schemas

router = APIRouter(tags=["usage"], dependencies=[Depends(deps.only_known_parameters)])


@router.get(
    "/v1/usage",
    summary="The calling key's limit and usage, or its history",
    description="Needs X-API-Key. Takes no token and counts against no quota, so it answers a key "
    "that is over its limit or quota too. Without `from`/`to`: the limit, what is left of it, the quota and "
    "today's (UTC) counts, fleet-wide when Redis answers. With `from` and `to` (UTC days, at most 366): "
    "the key's requests, errors and cache hits per day or hour, from the usage history.",
    response_class=Response,
    openapi_extra={"parameters": [analytics.range_parameter(granularity=True)]},
    responses={
        200: {
            "model": schemas.UsageOut | schemas.UsageHistoryOut,
            "description": "Usage of the calling key (UsageHistoryOut with from/to).",
            "headers": analytics.RATE_LIMIT_HEADERS,
        },
        400: analytics.PROBLEMS[400],
        401: schemas.problem("X-API-Key missing.", 401, "Missing API key"),
        403: schemas.problem(
            "X-API-Key unknown, expired or disabled, or its key lacks usage:read.", 403, "Invalid API key"
        ),
        404: analytics.PROBLEMS[404],
        503: analytics.PROBLEMS[503],
    },
)
async def get_usage(
    caller: deps.UsageCallerDep,
    rt: deps.RuntimeDep,
    first: analytics.From = None,
    to: analytics.To = None,
    granularity: Annotated[
        Literal["day", "hour"] | None,
        Query(include_in_schema=False),  # documented in the range parameter
    ] = None,
) -> Response:
    identity = caller.identity
    if identity.key_id is None:
        raise problems.ProblemError(401, "Usage is per API key: send an X-API-Key header.")
    if first is not None or to is not None:
        return await _history(rt, caller, identity.key_id, first, to, granularity or "day")
    if granularity is not None:
        raise problems.ProblemError(400, "granularity: only goes with from and to.")
    decision = caller.decision
    body = {
        "keyId": identity.key_id,
        "limit": {
            "requestsPerMinute": identity.limit.requests_per_minute,
            "burst": identity.limit.burst,
            "capacity": decision.limit,
            # The most requests any 60 s may admit: a full bucket plus a minute's refill.
            "window": identity.limit.requests_per_minute + decision.limit,
        },
        "remaining": decision.remaining,
        "resetSeconds": decision.reset_seconds,
        "quota": _quota(decision.quota),
        "requests": await rt.parts.analytics.usage(identity.key_id),
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=decision.headers())


async def _history(
    rt: runtime_mod.Runtime,
    caller: deps.Caller,
    key_id: str,
    first: str | None,
    last: str | None,
    granularity: queries.Granularity,
) -> Response:
    history = analytics.history_of(rt)
    span = analytics.parse_range(first, last, granularity, today=analytics.today_utc(history))
    try:
        periods = await history.read(lambda conn: queries.usage(conn, key_id, span))
    except database.DatabaseUnavailable as exc:
        raise analytics.unavailable(exc) from None
    body = {"key": key_id, "periods": periods}
    return Response(orjson.dumps(body), media_type="application/json", headers=caller.decision.headers())


def _quota(state: limiter.QuotaState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    resets = datetime.datetime.fromtimestamp(state.resets_at, datetime.UTC)
    return {
        "limit": state.limit,
        "used": state.used,
        "remaining": state.remaining,
        "resetsAt": resets.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
