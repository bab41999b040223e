"""A BlueGreen fleet's smoke key in keys.yaml: one probe entry that every keys layout delivers.

The entry is added to the fleet's keys file before it is split, so the single Secret, each
sharded layout and a resharding's union all carry it where the proxies look; the proxy, given
the rendered Secrets' content (as its mounted files or its watch of the Secrets read it), takes
the smoke key as a probe key. Only its hash is rendered.
"""

from __future__ import annotations

import base64
import datetime

import pytest

from weather_operator import keys
from weather_operator.render import keys_secret, names
from weather_proxy import config
from weather_proxy.auth import keys as proxy_keys

NOW = datetime.datetime(2026, 12, 8, tzinfo=datetime.UTC)
SMOKE = keys.generate_key()


def fleet_keys() -> config.KeysFile:
    records = [keys.KeyRecord(id=f"prod/key-{i:03d}", proxy="weather", sha256=f"{i:064x}") for i in range(40)]
    return keys.keys_file(records, NOW, [keys.smoke_entry("prod", "weather", SMOKE)])


def delivered(shards: int, previous: int | None) -> list[config.KeysFile]:
    """What the proxies read from each keys Secret of the layout."""
    rendered = keys_secret.render_layout(
        "weather", "prod", fleet_keys(), shards=shards, previous=previous, written={}, now=NOW
    )
    return [
        config.parse_keys(base64.b64decode(item.secret["data"][names.KEYS_KEY]).decode(), item.name)
        for item in rendered
    ]


def test_the_smoke_entry_is_a_probe_with_the_fleets_id_and_the_keys_hash_only() -> None:
    entry = keys.smoke_entry("prod", "weather", SMOKE)
    assert (entry.id, entry.sha256, entry.probe) == ("prod/weather:smoke", keys.sha256_hex(SMOKE), True)
    assert entry.scopes == [config.Scope.WEATHER_READ]
    assert "prod/weather:smoke" in {e.id for e in fleet_keys().keys}


@pytest.mark.parametrize(("shards", "previous"), [(1, None), (4, None), (4, 2), (2, 4)])
def test_every_layout_delivers_it_and_the_proxy_takes_it_as_a_probe(
    shards: int, previous: int | None
) -> None:
    files = delivered(shards, previous)
    holding = [f for f in files if any(e.id == "prod/weather:smoke" for e in f.keys)]
    assert holding, "no keys Secret of the layout holds the smoke key"
    if previous is None:
        assert len(holding) == 1  # one home, as any key
    ring = proxy_keys.KeyRing.union(proxy_keys.KeyRing(f) for f in files)
    identity = ring.authenticate(SMOKE, required=True, limits=config.RateLimit(), client_address="10.0.0.9")
    assert identity.probe
    assert identity.key_id == "prod/weather:smoke"
    rendered = keys_secret.render_layout(
        "weather", "prod", fleet_keys(), shards=shards, previous=previous, written={}, now=NOW
    )
    assert all(SMOKE not in str(item.secret) for item in rendered)  # a hash, never the key


def test_the_smoke_keys_secret_holds_the_key_under_the_apikey_data_key() -> None:
    secret = keys_secret.render_smoke_key_secret("weather", "prod", SMOKE)
    assert secret["metadata"]["name"] == "weather-smoke-key"
    assert base64.b64decode(secret["data"]["apiKey"]).decode() == SMOKE
