"""Typed dependencies: the runtime, and the authenticated, rate-limited caller."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

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


async def authorize(
    rt: runtime_mod.Runtime, api_key: str | None, client_address: str, state: dict[str, object]
) -> Caller:
    """Authenticate X-API-Key and count the request against the caller's limit (401/403/429).

    Framework-free (the weather fast path calls it with raw ASGI data); records the key id
    in the request ``state`` for the audit line.
    """
    cfg = rt.config
    identity = rt.keyring.authenticate(
        api_key, required=cfg.auth.required, limits=cfg.rate_limit, client_address=client_address
    )
    if identity.key_id is not None:
        state["key_id"] = identity.key_id
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


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def authorized_caller(request: Request) -> Caller:
    """The FastAPI dependency form of ``authorize``."""
    state: dict[str, object] = request.scope.setdefault("state", {})
    return await authorize(
        request.app.state.runtime, request.headers.get("x-api-key"), client_address(request.scope), state
    )


CallerDep = Annotated[Caller, Depends(authorized_caller)]
