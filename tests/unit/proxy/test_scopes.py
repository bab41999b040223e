"""API-key scopes: keys.yaml validation, the check, the 403 problem, OpenAPI.

The contract: docs/contracts.md, Keys, limits, quotas and scopes.

The HTTP cases run the real app (fast path and FastAPI routing) against the Open-Meteo
emulator and a real redis-server, so "no token spent" is read from the fleet's counters.
"""

from __future__ import annotations

import hashlib
import logging
import pathlib
from typing import Any

import httpx
import orjson
import pytest
from fastapi.responses import JSONResponse

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import build_config, running
from weather_proxy import config as config_mod
from weather_proxy.auth import keys
from weather_proxy.http import problems
from weather_proxy.routes import deps

SCOPE_TYPE = "https://weatherproxy.dev/problems/insufficient-scope"
LIMIT = {"requestsPerMinute": 60, "burst": 5}
# plaintext -> (key id, scopes in keys.yaml; None: no scopes field)
KEYS: dict[str, tuple[str, list[str] | None]] = {
    "k-defaults": ("weather/defaults", None),
    "k-usage": ("weather/usage-only", ["usage:read"]),
    "k-weather": ("weather/weather-only", ["weather:read"]),
    "k-analytics": ("weather/analytics", ["analytics:read", "weather:read"]),
}


def _entry(plaintext: str, key_id: str, scopes: list[str] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": key_id,
        "sha256": hashlib.sha256(plaintext.encode()).hexdigest(),
        "rateLimit": LIMIT,
    }
    if scopes is not None:
        entry["scopes"] = scopes
    return entry


@pytest.fixture
def scoped_keys(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "keys.yaml"
    entries = [_entry(plaintext, key_id, scopes) for plaintext, (key_id, scopes) in KEYS.items()]
    path.write_bytes(orjson.dumps({"keys": entries}))  # JSON is YAML
    return path


def _config(
    emulator: om.OpenMeteoEmulator, redis_url: str, keys_path: pathlib.Path
) -> config_mod.ProxyConfig:
    return build_config(
        emulator, redis={"url": redis_url}, auth={"required": True, "keysFile": str(keys_path)}
    )


def _assert_insufficient(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["type"] == SCOPE_TYPE
    assert doc["title"] == "Insufficient scope"
    assert doc["status"] == 403
    assert scope in doc["detail"]
    assert doc["instance"] == response.headers["x-request-id"]
    assert "ratelimit-remaining" not in response.headers  # refused before the limit was counted


# keys.yaml


def _load(tmp_path: pathlib.Path, entry: dict[str, Any]) -> config_mod.KeysFile:
    path = tmp_path / "keys.yaml"
    path.write_bytes(orjson.dumps({"keys": [entry]}))
    return config_mod.load_keys(path)


def test_a_key_without_scopes_has_the_defaults(tmp_path: pathlib.Path) -> None:
    (entry,) = _load(tmp_path, _entry("k", "ns/k", None)).keys
    assert entry.scopes == [config_mod.Scope.WEATHER_READ, config_mod.Scope.USAGE_READ]
    assert entry.to_camel_dict()["scopes"] == ["weather:read", "usage:read"]


def test_listed_scopes_are_kept(tmp_path: pathlib.Path) -> None:
    (entry,) = _load(tmp_path, _entry("k", "ns/k", ["analytics:read"])).keys
    assert entry.scopes == [config_mod.Scope.ANALYTICS_READ]


@pytest.mark.parametrize(
    ("scopes", "where", "message"),
    [
        (["weather:write"], "keys.0.scopes.0", "'weather:read', 'usage:read' or 'analytics:read'"),
        (["usage:read", "weather:read", "usage:read"], "keys.0.scopes", "repeated: usage:read"),
        ([], "keys.0.scopes", "at least 1 item"),
        ("weather:read", "keys.0.scopes", "valid list"),
    ],
)
def test_bad_scopes_are_a_config_error_naming_the_field(
    tmp_path: pathlib.Path, scopes: Any, where: str, message: str
) -> None:
    with pytest.raises(config_mod.ConfigError) as caught:
        _load(tmp_path, {"id": "ns/k", "sha256": "a" * 64, "scopes": scopes})
    text = str(caught.value)
    assert f"keys.yaml: {where}: " in text, text
    assert message in text, text


# The check


def _identity(scopes: frozenset[config_mod.Scope] | None, key_id: str | None = "ns/k") -> keys.Identity:
    limit = config_mod.Limit(requests_per_minute=1)
    if scopes is None:
        return keys.Identity(key_id, limit, "key:ns/k")
    return keys.Identity(key_id, limit, "key:ns/k", scopes)


def test_the_keyring_gives_each_key_its_scopes_and_anonymous_callers_the_defaults() -> None:
    ring = keys.KeyRing(
        config_mod.KeysFile.model_validate(
            {"keys": [_entry("a", "ns/a", ["usage:read"]), _entry("b", "ns/b", None)]}
        )
    )
    limits = config_mod.RateLimit()
    only_usage = ring.authenticate("a", required=True, limits=limits, client_address="x")
    defaults = ring.authenticate("b", required=True, limits=limits, client_address="x")
    anonymous = ring.authenticate(None, required=False, limits=limits, client_address="x")
    assert only_usage.scopes == {config_mod.Scope.USAGE_READ}
    assert defaults.scopes == anonymous.scopes == {config_mod.Scope.WEATHER_READ, config_mod.Scope.USAGE_READ}


def test_a_held_scope_passes() -> None:
    keys.require_scope(_identity(None), config_mod.Scope.WEATHER_READ)
    keys.require_scope(
        _identity(frozenset({config_mod.Scope.ANALYTICS_READ})), config_mod.Scope.ANALYTICS_READ
    )


def test_a_missing_scope_is_a_403_problem_naming_it() -> None:
    identity = _identity(frozenset({config_mod.Scope.USAGE_READ}))
    with pytest.raises(keys.InsufficientScope) as caught:
        keys.require_scope(identity, config_mod.Scope.WEATHER_READ)
    assert caught.value.scope == config_mod.Scope.WEATHER_READ
    error = deps.refusal_problem(caught.value)  # how the route layer answers it
    assert (error.status, error.slug, error.title) == (403, "insufficient-scope", "Insufficient scope")
    assert "weather:read" in error.detail
    assert "usage:read" in error.detail  # what the key has, to tell the two apart
    status, headers, body = problems.raw(error)
    doc = orjson.loads(body)
    assert status == 403
    assert (b"content-type", b"application/problem+json") in headers
    assert doc["type"] == SCOPE_TYPE
    assert doc["detail"] == error.detail


def test_an_anonymous_caller_is_told_to_send_a_key_with_the_scope() -> None:
    with pytest.raises(keys.InsufficientScope) as caught:
        keys.require_scope(_identity(None, key_id=None), config_mod.Scope.ANALYTICS_READ)
    problem = deps.refusal_problem(caught.value)
    assert problem.slug == "insufficient-scope"
    assert "analytics:read" in problem.detail
    assert "X-API-Key" in problem.detail


# Over HTTP


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "routed"])
async def test_a_usage_only_key_gets_403_on_weather_and_spends_no_token(
    openmeteo: om.OpenMeteoEmulator,
    redis_url: str,
    scoped_keys: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
    fast_path: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="weather_proxy.audit")
    headers = {"X-API-Key": "k-usage"}
    async with running(_config(openmeteo, redis_url, scoped_keys), fast_path=fast_path) as (_app, client):
        refused = [
            await client.get(path, params={"city": "Paris"}, headers=headers)
            for path in ("/v1/weather", "/weather", "/v1/weather", "/weather", "/v1/weather", "/weather")
        ]
        usage = await client.get("/v1/usage", headers=headers)
    for response in refused:
        _assert_insufficient(response, "weather:read")
    assert openmeteo.calls("search") == openmeteo.calls("forecast") == 0
    # Six refusals, more than the bucket holds, and the bucket is still full (usage takes nothing).
    assert usage.status_code == 200, usage.text
    assert int(usage.headers["ratelimit-remaining"]) == int(usage.headers["ratelimit-limit"])
    assert usage.json()["requests"]["requests"] == 0
    audit = [r for r in caplog.records if r.name == "weather_proxy.audit"]
    assert [getattr(r, "status", None) for r in audit] == [403] * 6 + [200]
    assert {getattr(r, "keyId", None) for r in audit} == {"weather/usage-only"}


async def test_a_weather_only_key_gets_403_on_usage_and_spends_no_token(
    openmeteo: om.OpenMeteoEmulator, redis_url: str, scoped_keys: pathlib.Path
) -> None:
    headers = {"X-API-Key": "k-weather"}
    async with running(_config(openmeteo, redis_url, scoped_keys)) as (_app, client):
        refused = [await client.get("/v1/usage", headers=headers) for _ in range(6)]
        weather = await client.get("/v1/weather", params={"city": "Paris"}, headers=headers)
    for response in refused:
        _assert_insufficient(response, "usage:read")
    assert weather.status_code == 200, weather.text
    assert int(weather.headers["ratelimit-remaining"]) == int(weather.headers["ratelimit-limit"]) - 1


async def test_default_scopes_serve_both_routes(
    openmeteo: om.OpenMeteoEmulator, redis_url: str, scoped_keys: pathlib.Path
) -> None:
    headers = {"X-API-Key": "k-defaults"}
    async with running(_config(openmeteo, redis_url, scoped_keys)) as (_app, client):
        weather = await client.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        alias = await client.get("/weather", params={"city": "Paris"}, headers=headers)
        usage = await client.get("/v1/usage", headers=headers)
    assert [weather.status_code, alias.status_code, usage.status_code] == [200, 200, 200]
    assert usage.json()["keyId"] == "weather/defaults"


async def test_anonymous_callers_have_the_default_scopes(openmeteo: om.OpenMeteoEmulator) -> None:
    async with running(build_config(openmeteo)) as (_app, client):
        weather = await client.get("/v1/weather", params={"city": "Paris"})
        usage = await client.get("/v1/usage")
    assert weather.status_code == 200
    assert usage.status_code == 401  # allowed by scope; usage is per key


async def test_a_route_declaring_analytics_read_admits_only_keys_with_it(
    openmeteo: om.OpenMeteoEmulator, redis_url: str, scoped_keys: pathlib.Path
) -> None:
    async with running(_config(openmeteo, redis_url, scoped_keys)) as (app, client):

        @app.get("/v1/analytics/probe")
        async def probe(caller: deps.AnalyticsCallerDep) -> JSONResponse:
            return JSONResponse({"key": caller.identity.key_id})

        allowed = await client.get("/v1/analytics/probe", headers={"X-API-Key": "k-analytics"})
        refused = await client.get("/v1/analytics/probe", headers={"X-API-Key": "k-defaults"})
        weather = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": "k-analytics"}
        )
        doc = app.openapi()
    assert allowed.status_code == 200
    assert allowed.json() == {"key": "weather/analytics"}
    _assert_insufficient(refused, "analytics:read")
    assert weather.status_code == 200
    assert doc["paths"]["/v1/analytics/probe"]["get"]["security"] == [{"APIKeyHeader": ["analytics:read"]}]


async def test_openapi_shows_the_scope_of_each_route(openmeteo: om.OpenMeteoEmulator) -> None:
    async with running(build_config(openmeteo)) as (_app, client):
        doc = (await client.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": deps.API_KEY_HEADER.model.description,
    }
    for path, scope in (
        ("/v1/weather", "weather:read"),
        ("/weather", "weather:read"),
        ("/v1/usage", "usage:read"),
    ):
        operation = doc["paths"][path]["get"]
        assert operation["security"] == [{"APIKeyHeader": [scope]}], path
        assert operation["x-required-scopes"] == [scope], path
        assert f"**Scope:** `{scope}`" in operation["description"], path
        assert SCOPE_TYPE in operation["description"], path
    for path in ("/health/live", "/health/ready", "/metrics"):
        operation = doc["paths"][path]["get"]
        assert "security" not in operation, path
        assert "x-required-scopes" not in operation, path
    # The weather routes keep their documented parameters (X-API-Key among them).
    assert "X-API-Key" in {p["name"] for p in doc["paths"]["/v1/weather"]["get"]["parameters"]}
