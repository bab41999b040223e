"""A fleet's keys over several Secrets, so no object nears the API server's 1 MiB limit.

Pure functions. Shard ``i`` of ``n`` holds the keys whose id hashes to ``i`` modulo
``n``; ``n`` is a power of two, so when it doubles a key of shard ``i`` stays there or
moves to shard ``i + n``, and when it halves the reverse. While a resharding rolls out,
every Secret of both layouts holds the keys of both (``layout``), so a pod on either
layout finds every key; the old copies go once every pod runs the new layout.

``n`` follows the size of the rendered entries with hysteresis (``shard_count``):
it doubles as soon as the shards would average over ``GROW_AT`` bytes and halves only
when they would still average under ``SHRINK_TO`` after halving, so a fleet whose keys
come and go around a boundary does not reshard (each resharding rolls the proxy pods
once: the shards are mounted files and part of the config).

Each shard's ``keys.yaml`` is written in JSON form, one entry per line: still YAML (JSON
is a subset), diffable, and parsed by the proxy with orjson (50,000 keys in 0.3 s, against
40 s for PyYAML). Fields at their defaults are left out.
"""

from __future__ import annotations

import hashlib

import orjson

from weather_proxy import config

# Average shard size (UTF-8 bytes of keys.yaml) that makes the count double; a Secret's data
# may hold 1 MiB, and hashing spreads keys within a few percent of the average.
GROW_AT = 512 * 1024
# After halving, shards must still average under this: halving happens well below GROW_AT.
SHRINK_TO = 192 * 1024
MAX_SHARDS = 1024
# While a resharding rolls out, a Secret holds both layouts' keys only up to this (its data may hold 1 MiB).
UNION_MAX_BYTES = 900 * 1024


def shard_of(key_id: str, shards: int) -> int:
    """The shard of a key: a stable hash of its id (the base id for a rotation's ``#previous``)."""
    if shards == 1:
        return 0
    base = key_id.split("#", 1)[0]  # a rotation's two entries stay together
    return int.from_bytes(hashlib.sha256(base.encode("utf-8")).digest()[:8], "big") % shards


def entry_json(entry: config.KeyEntry) -> bytes:
    """One entry as compact JSON, fields at their defaults left out."""
    return orjson.dumps(entry.model_dump(mode="json", by_alias=True, exclude_defaults=True))


def render(keys: config.KeysFile) -> str:
    """``keys.yaml`` text of one shard: JSON, one entry per line, deterministic."""
    lines = ",\n".join(entry_json(entry).decode("utf-8") for entry in keys.keys)
    return f'{{"revision": {keys.revision}, "keys": [\n{lines}\n]}}\n'


def size(keys: config.KeysFile) -> int:
    """Bytes the entries take in rendered shards (the per-shard envelope aside)."""
    return sum(len(entry_json(entry)) + 2 for entry in keys.keys)


def shard_count(total_bytes: int, current: int) -> int:
    """How many shards for ``total_bytes`` of entries, given ``current`` (a power of two)."""
    shards = max(1, current)
    while shards < MAX_SHARDS and total_bytes / shards > GROW_AT:
        shards *= 2
    while shards > 1 and total_bytes / (shards // 2) < SHRINK_TO:
        shards //= 2
    return shards


def split(keys: config.KeysFile, shards: int) -> list[config.KeysFile]:
    """The fleet's keys file as ``shards`` files, entries in their original order."""
    parts: list[list[config.KeyEntry]] = [[] for _ in range(shards)]
    for entry in keys.keys:
        parts[shard_of(entry.id, shards)].append(entry)
    return [config.KeysFile(revision=keys.revision, keys=part) for part in parts]


def layout(keys: config.KeysFile, shards: int, previous: int | None = None) -> list[config.KeysFile]:
    """The contents of the keys Secrets for ``shards``; while resharding from ``previous``, the union.

    During a resharding every Secret of both layouts also holds the keys the other layout puts
    there, so pods still on the old layout and pods already on the new one each find every key,
    as long as that keeps the Secret under ``UNION_MAX_BYTES``: a fleet that keeps growing while
    its pods have not rolled (none can start, say) gets the new layout only, rather than a
    Secret the API server refuses.
    """
    if previous is None or previous == shards:
        return split(keys, shards)
    parts: list[list[config.KeyEntry]] = [[] for _ in range(max(shards, previous))]
    sizes = [0] * len(parts)
    extras: list[tuple[int, config.KeyEntry, int]] = []
    for entry in keys.keys:
        new, old = shard_of(entry.id, shards), shard_of(entry.id, previous)
        length = len(entry_json(entry)) + 2
        parts[new].append(entry)
        sizes[new] += length
        if old != new:
            extras.append((old, entry, length))
    for old, entry, length in extras:
        if sizes[old] + length <= UNION_MAX_BYTES:
            parts[old].append(entry)
            sizes[old] += length
    for part in parts:
        part.sort(key=lambda entry: entry.id)
    return [config.KeysFile(revision=keys.revision, keys=part) for part in parts]
