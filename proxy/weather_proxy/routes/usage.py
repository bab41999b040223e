"""``GET /v1/usage``: the calling key's limit, what is left of it, and its request counts."""

from __future__ import annotations

import datetime
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from weather_proxy.http import problems
from weather_proxy.ratelimit import limiter
from weather_proxy.routes import deps, schemas

router = APIRouter(tags=["usage"])


@router.get(
    "/v1/usage",
    summary="The calling key's limit and usage",
    description="Needs X-API-Key. Counts are today's (UTC), fleet-wide when Redis answers.",
    response_class=Response,
    responses={
        200: {"model": schemas.UsageOut, "description": "Usage of the calling key."},
        401: schemas.problem("X-API-Key missing.", 401, "Missing API key"),
        403: schemas.problem(
            "X-API-Key unknown, expired or disabled, or its key lacks usage:read.", 403, "Invalid API key"
        ),
        429: schemas.problem(
            "Rate limit (rate-limited) or quota (quota-exceeded) exceeded; see Retry-After.",
            429,
            "Too many requests",
        ),
    },
)
async def get_usage(caller: deps.UsageCallerDep, rt: deps.RuntimeDep) -> Response:
    identity = caller.identity
    if identity.key_id is None:
        raise problems.ProblemError(401, "Usage is per API key: send an X-API-Key header.")
    assert rt.analytics is not None
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
        "requests": await rt.analytics.usage(identity.key_id),
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=decision.headers())


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
