"""Keys over several Secrets: stable assignment, resharding that never drops a key, sizes under 1 MiB."""

from __future__ import annotations

import hashlib

import orjson
import pytest
import yaml

from weather_operator import keyshards
from weather_proxy import config


def _keys(count: int, *, limit_every: int = 5) -> config.KeysFile:
    entries = []
    for i in range(count):
        limit = config.Limit(requests_per_minute=600, burst=60) if i % limit_every == 0 else None
        entries.append(
            config.KeyEntry(
                id=f"tenants/key-{i:06d}",
                sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                rate_limit=limit,
            )
        )
    return config.KeysFile(revision=7, keys=entries)


def test_a_shard_renders_as_json_that_is_also_the_yaml_keys_file() -> None:
    keys = _keys(3)
    text = keyshards.render(keys)
    assert config.KeysFile.model_validate(orjson.loads(text)) == keys
    assert config.KeysFile.model_validate(yaml.safe_load(text)) == keys
    assert text.count("\n") == 5  # envelope, one line per entry, closing line
    assert '"disabled"' not in text  # defaults are left out
    empty = keyshards.render(config.KeysFile())
    assert config.KeysFile.model_validate(orjson.loads(empty)) == config.KeysFile()


def test_a_rotations_previous_entry_stays_in_its_keys_shard() -> None:
    for shards in (2, 4, 16, 64):
        for i in range(200):
            key_id = f"ns/key-{i}"
            assert keyshards.shard_of(key_id + "#previous", shards) == keyshards.shard_of(key_id, shards)


@pytest.mark.parametrize("shards", [1, 2, 8, 32])
def test_split_keeps_every_entry_once(shards: int) -> None:
    keys = _keys(2000)
    parts = keyshards.split(keys, shards)
    assert len(parts) == shards
    merged = sorted((entry for part in parts for entry in part.keys), key=lambda e: e.id)
    assert merged == sorted(keys.keys, key=lambda e: e.id)
    assert all(part.revision == keys.revision for part in parts)
    if shards > 1:
        sizes = [len(part.keys) for part in parts]
        assert max(sizes) < 2 * min(sizes)  # hashing spreads them


def test_doubling_moves_a_key_only_to_its_shards_sibling() -> None:
    for n in (1, 2, 4, 8):
        for i in range(500):
            before = keyshards.shard_of(f"ns/k{i}", n)
            assert keyshards.shard_of(f"ns/k{i}", 2 * n) in (before, before + n)


def test_shard_count_has_hysteresis() -> None:
    grow, shrink = keyshards.GROW_AT, keyshards.SHRINK_TO
    assert keyshards.shard_count(0, 1) == 1
    assert keyshards.shard_count(grow, 1) == 1
    assert keyshards.shard_count(grow + 1, 1) == 2
    assert keyshards.shard_count(5 * grow, 1) == 8
    # Just past a doubling, a few keys deleted do not halve it back...
    assert keyshards.shard_count(grow, 2) == 2
    assert keyshards.shard_count(shrink, 2) == 2
    # ...only a fleet well under the boundary is packed into fewer shards.
    assert keyshards.shard_count(shrink - 1, 2) == 1
    assert keyshards.shard_count(0, 16) == 1
    assert keyshards.shard_count(10**12, 1) == keyshards.MAX_SHARDS


def test_while_resharding_every_secret_of_both_layouts_holds_its_keys() -> None:
    keys = _keys(1000)
    for before, after in ((1, 2), (2, 8), (8, 2)):
        parts = keyshards.layout(keys, after, before)
        assert len(parts) == max(before, after)
        for entry in keys.keys:
            assert entry in parts[keyshards.shard_of(entry.id, before)].keys  # pods still on the old layout
            assert entry in parts[keyshards.shard_of(entry.id, after)].keys  # pods already on the new one
    assert keyshards.layout(keys, 4, 4) == keyshards.layout(keys, 4) == keyshards.split(keys, 4)


def test_a_resharding_that_does_not_roll_out_never_overfills_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keyshards, "UNION_MAX_BYTES", 20 * 1024)
    keys = _keys(1000)  # about 100 KiB: from one Secret to eight, the old one cannot hold them all
    parts = keyshards.layout(keys, 8, 1)
    assert max(len(keyshards.render(part).encode()) for part in parts) <= 21 * 1024
    for entry in keys.keys:  # the new layout is complete whatever the old copies had to leave out
        assert entry in parts[keyshards.shard_of(entry.id, 8)].keys
    assert all(part.keys == sorted(part.keys, key=lambda e: e.id) for part in parts)


def test_fifty_thousand_keys_fit_secrets_well_under_one_mebibyte() -> None:
    keys = _keys(50_000, limit_every=1)  # every key with its own limit: the larger entries
    shards = keyshards.shard_count(keyshards.size(keys), 1)
    parts = keyshards.split(keys, shards)
    largest = max(len(keyshards.render(part).encode()) for part in parts)
    assert shards == 16
    assert largest < 700 * 1024
