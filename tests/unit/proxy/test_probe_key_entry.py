"""keys.yaml ``probe``: what a probe entry may say, and what the key ring makes of it."""

from __future__ import annotations

import pytest

from weather_proxy import config as proxy_config
from weather_proxy.auth import keys

PROBE_KEY = "wpk_probe_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SHA = keys.hash_key(PROBE_KEY)


def entry(**fields: object) -> str:
    extra = "".join(f', "{name}": {value}' for name, value in fields.items())
    return f'{{"keys": [{{"id": "ns/fleet:smoke", "sha256": "{SHA}", "probe": true{extra}}}]}}'


def test_a_probe_key_may_read_the_weather_only_whatever_its_entry_lists() -> None:
    ring = keys.KeyRing(proxy_config.parse_keys(entry(), "keys.yaml"))
    identity = ring.authenticate(
        PROBE_KEY, required=True, limits=proxy_config.RateLimit(), client_address="10.0.0.1"
    )
    assert identity.probe
    assert identity.scopes == {proxy_config.Scope.WEATHER_READ}
    keys.require_scope(identity, proxy_config.Scope.WEATHER_READ)
    with pytest.raises(keys.InsufficientScope):
        keys.require_scope(identity, proxy_config.Scope.USAGE_READ)


def test_an_ordinary_key_is_no_probe() -> None:
    text = f'{{"keys": [{{"id": "ns/k", "sha256": "{SHA}"}}]}}'
    identity = keys.KeyRing(proxy_config.parse_keys(text, "keys.yaml")).authenticate(
        PROBE_KEY, required=True, limits=proxy_config.RateLimit(), client_address="10.0.0.1"
    )
    assert not identity.probe
    assert proxy_config.Scope.USAGE_READ in identity.scopes


def test_a_probe_entry_may_list_weather_read_alone() -> None:
    parsed = proxy_config.parse_keys(entry(scopes='["weather:read"]'), "keys.yaml")
    assert parsed.keys[0].probe


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scopes": '["weather:read", "usage:read"]'}, "scopes: a probe key has weather:read only"),
        (
            {"rateLimit": '{"requestsPerMinute": 5, "burst": 1}'},
            "rateLimit: a probe key counts against no limit",
        ),
    ],
)
def test_a_probe_entry_asking_for_more_is_refused_by_name(fields: dict[str, str], message: str) -> None:
    with pytest.raises(proxy_config.ConfigError, match=rf"keys\.yaml: keys\.0: .*{message}"):
        proxy_config.parse_keys(entry(**fields), "keys.yaml")
