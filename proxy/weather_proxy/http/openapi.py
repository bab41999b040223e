"""The OpenAPI document, with the scope each operation needs spelled out for people and tools.

A route declares its scope with ``Security(deps.API_KEY_HEADER, scopes=[...])`` (see
``routes.deps.require``); FastAPI writes it into the operation's security requirement,
``{"APIKeyHeader": ["weather:read"]}``, which OpenAPI 3.1 allows for an apiKey scheme.
Swagger UI and ReDoc show the scopes of OAuth2 schemes only, so every such operation also
gets the list as ``x-required-scopes`` and a sentence at the end of its description.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from weather_proxy.auth import keys
from weather_proxy.http import problems


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json`` and ``/docs``) spell out the scopes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spell_out_scopes(generate())  # generate() caches the document in app.openapi_schema
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def spell_out_scopes(document: dict[str, Any]) -> None:
    """Add ``x-required-scopes`` and a description sentence to each operation needing a scope."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            scopes = list(
                dict.fromkeys(
                    scope
                    for requirement in operation.get("security", [])
                    for scheme_scopes in requirement.values()
                    for scope in scheme_scopes
                )
            )
            if not scopes:
                continue
            operation["x-required-scopes"] = scopes
            named = ", ".join(f"`{scope}`" for scope in scopes)
            sentence = (
                f"**Scope:** {named} (a key without it gets 403 "
                f"`{problems.TYPE_BASE}{keys.INSUFFICIENT_SCOPE}`)."
            )
            description = operation.get("description", "")
            operation["description"] = f"{description}\n\n{sentence}" if description else sentence


_INTEGER = {"type": "integer", "minimum": 0}
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "Weak validator of the body; send it back in If-None-Match for a 304.",
        "schema": {"type": "string", "pattern": '^W/"[0-9a-f]{16}"$'},
    },
    "Cache-Control": {
        "description": "`public, max-age=<fresh s left>, stale-while-revalidate=<s>, stale-if-error=<s>` "
        "(max-age 0 on a stale answer).",
        "schema": {"type": "string"},
    },
    "Age": {"description": "Seconds since the data was fetched from upstream.", "schema": _INTEGER},
    "X-Cache": {
        "description": "Where the answer came from: HIT, MISS or STALE.",
        "schema": {"type": "string", "enum": ["HIT", "MISS", "STALE"]},
    },
    "RateLimit-Limit": {"description": "Capacity of the caller's token bucket.", "schema": _INTEGER},
    "RateLimit-Remaining": {"description": "Whole tokens left in the bucket.", "schema": _INTEGER},
    "RateLimit-Reset": {"description": "Seconds until the bucket is full again.", "schema": _INTEGER},
    "Retry-After": {
        "description": "Seconds to wait before retrying (RFC 9110 §10.2.3).",
        "schema": {"type": "integer", "minimum": 0},
    },
}
RATE_LIMIT = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def headers(*names: str) -> dict[str, dict[str, Any]]:
    """The ``headers`` of an OpenAPI response: each named header, sent on every such response."""
    return {name: {**HEADERS[name], "required": True} for name in names}
