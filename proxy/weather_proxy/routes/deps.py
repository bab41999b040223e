"""Typed dependencies: the runtime, and the authenticated, rate-limited caller."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import Depends, Request

from weather_proxy import runtime as runtime_mod
from weather_proxy.auth import keys
from weather_proxy.http import problems
from weather_proxy.ratelimit import limiter


def get_runtime(request: Request) -> runtime_mod.Runtime:
    rt: runtime_mod.Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[runtime_mod.Runtime, Depends(get_runtime)]


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    identity: keys.Identity
    decision: limiter.Decision


async def authorized_caller(request: Request) -> Caller:
    """Authenticate X-API-Key and count the request against the caller's limit (401/403/429)."""
    rt: runtime_mod.Runtime = request.app.state.runtime
    cfg = rt.config
    client = request.scope.get("client")
    identity = rt.keyring.authenticate(
        request.headers.get("x-api-key"),
        required=cfg.auth.required,
        limits=cfg.rate_limit,
        client_address=client[0] if client else "unknown",
    )
    if identity.key_id is not None:
        request.state.key_id = identity.key_id
    assert rt.limiter is not None, "the app's lifespan has not run"
    decision = await rt.limiter.hit(identity.limiter_id, identity.limit)
    if not decision.allowed:
        rt.metrics.rate_limited.inc()
        headers = decision.headers()
        headers["Retry-After"] = str(decision.reset_seconds)
        raise problems.ProblemError(
            429, f"Rate limit of {decision.limit} requests per minute exceeded.", headers=headers
        )
    return Caller(identity, decision)


CallerDep = Annotated[Caller, Depends(authorized_caller)]
