"""Typed dependencies: the runtime, and the authenticated, scope-checked, rate-limited caller."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.types import Scope

from weather_proxy import config as config_mod
from weather_proxy import runtime as runtime_mod
from weather_proxy.auth import keys
from weather_proxy.http import problems
from weather_proxy.ratelimit import limiter


def get_runtime(request: Request) -> runtime_mod.Runtime:
    rt: runtime_mod.Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[runtime_mod.Runtime, Depends(get_runtime)]


# How each refusal of the key ring is answered: status, title, problem type slug (the table of
# docs/contracts.md, HTTP API).
REFUSALS: dict[type[keys.Refused], tuple[int, str | None, str | None]] = {
    keys.MissingKey: (401, None, None),
    keys.UnknownKey: (403, "Invalid API key", "invalid-key"),
    keys.DisabledKey: (403, "API key disabled", "key-disabled"),
    keys.ExpiredKey: (403, "API key expired", "key-expired"),
    keys.InsufficientScope: (403, "Insufficient scope", keys.INSUFFICIENT_SCOPE),
}


def refusal_problem(refused: keys.Refused) -> problems.ProblemError:
    """The problem document answering a refusal of the key ring (401 or 403)."""
    status, title, slug = REFUSALS.get(type(refused), (403, None, None))
    return problems.ProblemError(status, str(refused), title=title, slug=slug)


@dataclasses.dataclass(slots=True)  # not frozen: made on every request (see limiter.Decision)
class Caller:
    identity: keys.Identity
    decision: limiter.Decision


async def authorize(
    rt: runtime_mod.Runtime,
    api_key: str | None,
    client_address: str,
    state: dict[str, object],
    *,
    scope: config_mod.Scope,
    spend: bool = True,
) -> Caller:
    """Authenticate X-API-Key, check the route's ``scope``, count the request against the limit.

    401 missing key; 403 bad key or ``insufficient-scope``; 429 over the limit or quota.
    Framework-free (the weather fast path calls it with raw ASGI data); records the key id
    in the request ``state`` for the audit line. ``spend=False`` takes no token and counts
    against no quota: the decision then only reports the bucket and quota as they are.
    A probe key (the operator's smoke key) is never limited: it takes no token and counts against
    no quota, and ``state["probe"]`` keeps its request out of the usage history.
    """
    cfg = rt.config
    try:
        identity = rt.keyring.authenticate(
            api_key, required=cfg.auth.required, limits=cfg.rate_limit, client_address=client_address
        )
        if identity.key_id is not None:
            state["key_id"] = identity.key_id
        keys.require_scope(identity, scope)  # before the limit: a request refused here spends no token
    except keys.Refused as refused:
        raise refusal_problem(refused) from None
    if identity.probe:
        state["probe"] = True
        capacity = identity.limit.capacity  # an untouched bucket: the headers say nothing was spent
        return Caller(identity, limiter.Decision(True, capacity, capacity, 0))
    limits = rt.parts.limiter
    quota = identity.limit.quota
    if quota is None and identity.key_id is not None:
        quota = cfg.rate_limit.default.quota  # a key's own rateLimit without a quota keeps the fleet's
    if not spend:
        return Caller(identity, await limits.peek(identity.limiter_id, identity.limit, quota))
    decision = limits.hit_leased(identity.limiter_id, identity.limit, quota)
    if decision is None:
        decision = await limits.hit(identity.limiter_id, identity.limit, quota)
    if not decision.allowed:
        rt.metrics.rate_limited.inc()
        if decision.quota_exceeded:
            rt.metrics.quota_exceeded.inc()
        raise decision.problem()
    return Caller(identity, decision)


def header_value(raw: bytes) -> str:
    """A header's value without the blanks around it, which are not part of it (RFC 9110 §5.5).

    Servers differ on whether they strip them (granian does, httptools does not); a key sent
    with a trailing blank must be the same key under either.
    """
    return raw.strip(b" \t").decode("latin-1")


def several_keys() -> problems.ProblemError:
    """400 for a request with more than one X-API-Key: which one counts would be a guess."""
    return problems.ProblemError(400, "X-API-Key: send one key, not several.")


def api_key_of(scope: Scope) -> str | None:
    """The request's X-API-Key; 400 when it is given more than once."""
    found: str | None = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            if found is not None:
                raise several_keys()
            found = header_value(value)
    return found


# Route -> the query parameters it takes (the aliases of its handler's Query parameters).
_QUERY_NAMES: dict[int, tuple[object, frozenset[str]]] = {}


def query_names(route: object) -> frozenset[str]:
    known = _QUERY_NAMES.get(id(route))
    if known is None or known[0] is not route:
        dependant = getattr(route, "dependant", None)
        names = _query_aliases(dependant) if dependant is not None else frozenset()
        known = _QUERY_NAMES[id(route)] = (route, names)
    return known[1]


def _query_aliases(dependant: Any) -> frozenset[str]:
    """The query parameters of a FastAPI dependant and of its dependencies, by their wire names."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_aliases(sub)
    return frozenset(names)


def only_known_parameters(request: Request) -> None:
    """400 for a query parameter the route does not take, or one given twice (a router dependency).

    Silently ignoring them would answer a request the document says is invalid, as if it were
    another one (a misspelt ``form=`` would quietly give the default range).
    """
    allowed = query_names(request.scope.get("route"))
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in allowed:
            raise problems.ProblemError(400, f"{name[:40]!r}: unknown query parameter of this route.")
        if name in seen:
            raise problems.ProblemError(400, f"{name}: given more than once.")
        seen.add(name)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


# X-API-Key as an OpenAPI security scheme; each operation's requirement lists the scope it needs.
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="APIKeyHeader",
    description="An API key; each operation names the scope its key needs (`weather:read`, ...).",
    auto_error=False,  # authorize answers a missing key, as a problem document
)


def require(scope: config_mod.Scope, *, spend: bool = True) -> Any:
    """The FastAPI dependency form of ``authorize``: ``Annotated[Caller, require(scope)]``.

    Declared as a ``Security`` of ``API_KEY_HEADER``, so the OpenAPI document lists the scope.
    """

    async def authorized_caller(
        request: Request, _documented: Annotated[str | None, Security(API_KEY_HEADER)]
    ) -> Caller:
        # The key is read here, not from the security scheme: that takes the first of several.
        state: dict[str, object] = request.scope.setdefault("state", {})
        api_key = api_key_of(request.scope)
        return await authorize(
            request.app.state.runtime, api_key, client_address(request.scope), state, scope=scope, spend=spend
        )

    return Security(authorized_caller, scopes=[scope.value])


def declare_scope(scope: config_mod.Scope) -> Any:
    """Only the OpenAPI requirement of ``scope``, for a route that calls ``authorize`` itself."""
    return Security(API_KEY_HEADER, scopes=[scope.value])


# The caller of a FastAPI route, by the scope the route needs.
# /v1/usage spends nothing and answers a key over its limit or quota: that is when it is needed.
UsageCallerDep = Annotated[Caller, require(config_mod.Scope.USAGE_READ, spend=False)]
AnalyticsCallerDep = Annotated[Caller, require(config_mod.Scope.ANALYTICS_READ)]
