"""API keys: lookup by hash, 401/403 rules, per-key limits, usage, audit log without plaintext."""

from __future__ import annotations

import datetime
import hashlib
import logging
import pathlib

import pytest

from tests.unit.proxy.conftest import KEY, AppFactory
from weather_proxy import config as config_mod
from weather_proxy.auth import keys
from weather_proxy.routes import deps

LIMITS = config_mod.RateLimit()


def ring(*entries: dict[str, object]) -> keys.KeyRing:
    return keys.KeyRing(config_mod.KeysFile.model_validate({"keys": list(entries)}))


def test_known_key_gets_its_identity_and_limit() -> None:
    kr = ring({"id": "ns/a", "sha256": keys.hash_key("s3cret"), "rateLimit": {"requestsPerMinute": 7}})
    who = kr.authenticate("s3cret", required=True, limits=LIMITS, client_address="1.2.3.4")
    assert who.key_id == "ns/a"
    assert who.limit.requests_per_minute == 7
    assert who.limiter_id == "key:ns/a"
    assert len(kr) == 1


def test_a_rotated_keys_previous_hash_is_the_same_consumer() -> None:
    """During a rotation's grace both keys take from one bucket and one quota, under one id."""
    kr = ring(
        {"id": "ns/a", "sha256": keys.hash_key("new-key"), "rateLimit": {"requestsPerMinute": 7}},
        {"id": "ns/a#previous", "sha256": keys.hash_key("old-key"), "rateLimit": {"requestsPerMinute": 7}},
    )
    new = kr.authenticate("new-key", required=True, limits=LIMITS, client_address="x")
    old = kr.authenticate("old-key", required=True, limits=LIMITS, client_address="x")
    assert (old.key_id, old.limiter_id) == (new.key_id, new.limiter_id) == ("ns/a", "key:ns/a")


def test_default_limit_when_the_key_has_none() -> None:
    kr = ring({"id": "ns/a", "sha256": keys.hash_key("s3cret")})
    assert kr.authenticate("s3cret", required=True, limits=LIMITS, client_address="x").limit == LIMITS.default


@pytest.mark.parametrize(
    ("entry", "presented", "status", "slug"),
    [
        ({"id": "a", "sha256": keys.hash_key("k")}, "other", 403, "invalid-key"),
        ({"id": "a", "sha256": keys.hash_key("k"), "disabled": True}, "k", 403, "key-disabled"),
        (
            {"id": "a", "sha256": keys.hash_key("k"), "expiresAt": "2020-01-01T00:00:00Z"},
            "k",
            403,
            "key-expired",
        ),
        (
            {"id": "a", "sha256": keys.hash_key("k"), "expiresAt": "2020-01-01T00:00:00"},
            "k",
            403,
            "key-expired",
        ),
        ({"id": "a", "sha256": keys.hash_key("k")}, None, 401, "missing-api-key"),
        ({"id": "a", "sha256": keys.hash_key("k")}, "", 401, "missing-api-key"),
    ],
)
def test_refusals(entry: dict[str, object], presented: str | None, status: int, slug: str) -> None:
    with pytest.raises(keys.Refused) as err:
        ring(entry).authenticate(presented, required=True, limits=LIMITS, client_address="x")
    problem = deps.refusal_problem(err.value)  # how the route layer answers it
    assert problem.status == status
    assert problem.slug == slug
    assert "k" not in problem.detail.split()


def test_future_expiry_is_accepted() -> None:
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    kr = ring({"id": "a", "sha256": keys.hash_key("k"), "expiresAt": future.isoformat()})
    assert kr.authenticate("k", required=True, limits=LIMITS, client_address="x").key_id == "a"


def test_anonymous_when_auth_is_optional() -> None:
    who = ring().authenticate(None, required=False, limits=LIMITS, client_address="9.9.9.9")
    assert who.key_id is None
    assert who.limit == LIMITS.anonymous
    assert who.limiter_id == keys.anonymous_limiter_id("9.9.9.9")
    assert "9.9.9.9" not in who.limiter_id


def test_wrong_key_is_refused_even_when_optional() -> None:
    with pytest.raises(keys.UnknownKey) as err:
        ring().authenticate("nope", required=False, limits=LIMITS, client_address="x")
    assert deps.refusal_problem(err.value).status == 403


async def test_http_auth_limits_and_usage(
    proxy: AppFactory, keys_file: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="weather_proxy.audit")
    async with proxy(auth={"required": True, "keysFile": str(keys_file)}) as (_app, client):
        missing = await client.get("/v1/weather", params={"city": "Paris"})
        unknown = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": "nope"})
        disabled = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": "off"})
        expired = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": "old"})
        ok = [
            await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
            for _ in range(3)
        ]
        usage = await client.get("/v1/usage", headers={"X-API-Key": KEY})
        last = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
        limited = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
        over = await client.get("/v1/usage", headers={"X-API-Key": KEY})
        ready = await client.get("/health/ready")
    assert missing.status_code == 401
    assert unknown.status_code == disabled.status_code == expired.status_code == 403
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert ok[0].headers["ratelimit-limit"] == "4"  # a bucket of 4, refilled at 3/min
    assert [int(r.headers["ratelimit-remaining"]) for r in ok] == [3, 2, 1]
    assert usage.status_code == 200
    doc = usage.json()
    assert doc["keyId"] == "weather/team-a"
    assert doc["limit"] == {"requestsPerMinute": 3, "burst": 4, "capacity": 4, "window": 7}
    assert doc["quota"] is None
    assert doc["remaining"] == 1  # /v1/usage takes no token: the last one is still there
    assert doc["requests"]["requests"] == 3
    assert doc["requests"]["topCities"] == [{"city": "Paris", "requests": 3}]
    assert last.status_code == 200
    assert limited.status_code == 429
    assert 19 <= int(limited.headers["retry-after"]) <= 20  # one token every 20 s
    assert limited.json()["type"] == "https://weatherproxy.dev/problems/rate-limited"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["content-type"] == "application/problem+json"
    # A key over its limit still reads its usage, and reading it spent nothing.
    assert over.status_code == 200
    assert over.json()["remaining"] == 0
    assert "retry-after" not in over.headers
    assert ready.json()["checks"]["keys"]["count"] == 3
    audit = [r for r in caplog.records if r.name == "weather_proxy.audit"]
    assert len(audit) == 7  # 4 served + 2 usage + 429; refused keys have no key id
    assert {getattr(r, "keyId", None) for r in audit} == {"weather/team-a"}
    assert [getattr(r, "status", None) for r in audit][-2:] == [429, 200]
    assert KEY not in caplog.text


async def test_usage_counts_the_place_found_not_the_city_as_typed(
    proxy: AppFactory, keys_file: pathlib.Path
) -> None:
    """The per-key city counters hold the geocoder's name, as the history rows do (docs/privacy.md)."""
    async with proxy(auth={"required": True, "keysFile": str(keys_file)}) as (_app, client):
        for typed in ("  sao PAULO ", "São Paulo"):
            served = await client.get("/v1/weather", params={"city": typed}, headers={"X-API-Key": KEY})
            assert served.status_code == 200, served.text
        usage = await client.get("/v1/usage", headers={"X-API-Key": KEY})
    assert usage.json()["requests"]["topCities"] == [{"city": "São Paulo", "requests": 2}]


async def test_usage_needs_a_key(proxy: AppFactory) -> None:
    async with proxy() as (_app, client):
        response = await client.get("/v1/usage")
    assert response.status_code == 401


async def test_anonymous_limit_when_auth_is_off(proxy: AppFactory) -> None:
    async with proxy(rateLimit={"anonymous": {"requestsPerMinute": 1, "burst": 0}}) as (app, client):
        first = await client.get("/v1/weather", params={"city": "Paris"})
        second = await client.get("/v1/weather", params={"city": "Paris"})
        metrics = (await client.get("/metrics")).text
    assert first.status_code == 200
    assert second.status_code == 429
    assert "weather_proxy_rate_limited_total 1.0" in metrics
    assert app.state.runtime.keyring is not None


def test_plaintext_is_never_stored() -> None:
    kr = ring({"id": "a", "sha256": hashlib.sha256(b"plain").hexdigest()})
    assert "plain" not in repr(vars(kr))


async def test_fleet_quota_applies_to_keys_and_usage_shows_it(
    proxy: AppFactory, keys_file: pathlib.Path
) -> None:
    """The fleet default's quota holds for a key whose own rateLimit sets none."""
    quota = {"requests": 2, "period": "Day"}
    rate_limit = {"default": {"requestsPerMinute": 600, "burst": 100, "quota": quota}}
    headers = {"X-API-Key": KEY}
    async with proxy(auth={"required": True, "keysFile": str(keys_file)}, rateLimit=rate_limit) as (
        app,
        client,
    ):
        first = await client.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        usage = await client.get("/v1/usage", headers=headers)
        second = await client.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        over = await client.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        spent = await client.get("/v1/usage", headers=headers)
        metrics = (await client.get("/metrics")).text
        now = app.state.runtime.parts.limiter.clock()
    assert first.status_code == usage.status_code == second.status_code == 200
    midnight = datetime.datetime.fromtimestamp(now, datetime.UTC).date() + datetime.timedelta(days=1)
    resets_at = f"{midnight.isoformat()}T00:00:00Z"
    # /v1/usage counts against no quota, and answers a key whose quota is spent.
    assert usage.json()["quota"] == {"limit": 2, "used": 1, "remaining": 1, "resetsAt": resets_at}
    assert spent.status_code == 200
    assert spent.json()["quota"] == {"limit": 2, "used": 2, "remaining": 0, "resetsAt": resets_at}
    assert over.status_code == 429
    body = over.json()
    assert body["type"] == "https://weatherproxy.dev/problems/quota-exceeded"
    assert body["title"] == "Quota exceeded"
    seconds_left = datetime.datetime.combine(midnight, datetime.time(), datetime.UTC).timestamp() - now
    assert abs(int(over.headers["retry-after"]) - seconds_left) <= 2
    assert "weather_proxy_quota_exceeded_total 1.0" in metrics


def test_quota_periods_and_limits_are_validated(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("rateLimit: {default: {requestsPerMinute: 5, quota: {requests: 5, period: Week}}}\n")
    with pytest.raises(config_mod.ConfigError, match=r"rateLimit\.default\.quota\.period"):
        config_mod.load_config(path)
    path.write_text("rateLimit: {default: {requestsPerMinute: 5, quota: {requests: 0, period: Day}}}\n")
    with pytest.raises(config_mod.ConfigError, match=r"rateLimit\.default\.quota\.requests"):
        config_mod.load_config(path)


async def test_keys_sharded_over_several_files_are_merged_and_reloaded(
    proxy: AppFactory, tmp_path: pathlib.Path
) -> None:
    """auth.keysFiles: the mounted copies of a fleet's further keys Secrets (its keys sharded)."""
    first, second = tmp_path / "keys.yaml", tmp_path / "keys-1.yaml"
    first.write_text(f'{{"revision": 1, "keys": [{{"id": "ns/a", "sha256": "{keys.hash_key("key-a")}"}}]}}\n')
    second.write_text(
        f'{{"revision": 1, "keys": [{{"id": "ns/b", "sha256": "{keys.hash_key("key-b")}"}}]}}\n'
    )
    auth = {"required": True, "keysFile": str(first), "keysFiles": [str(second)]}
    async with proxy(auth=auth) as (app, client):
        answers = [
            (await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": k})).status_code
            for k in ("key-a", "key-b", "key-c")
        ]
        second.write_text(
            f'{{"revision": 2, "keys": [{{"id": "ns/c", "sha256": "{keys.hash_key("key-c")}"}}]}}\n'
        )
        await app.state.runtime.parts.reloader.check_all()
        after = [
            (await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": k})).status_code
            for k in ("key-a", "key-b", "key-c")
        ]
    assert answers == [200, 200, 403]
    assert after == [200, 403, 200]


def test_more_keys_files_than_watched_secrets_is_refused() -> None:
    with pytest.raises(ValueError, match=r"auth\.keysFiles: 3 files for 2 auth\.kubernetes\.secretNames"):
        config_mod.Auth.model_validate(
            {
                "keysFile": "/k/keys.yaml",
                "keysFiles": ["/k/keys-1.yaml", "/k/keys-2.yaml"],
                "kubernetes": {"secretNames": ["paris-keys", "paris-keys-1"]},
            }
        )
    with pytest.raises(ValueError, match=r"auth\.keysFiles: needs auth\.keysFile"):
        config_mod.Auth.model_validate({"keysFiles": ["/k/keys-1.yaml"]})
