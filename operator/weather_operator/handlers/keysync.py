"""Keeping a fleet's keys Secrets (``<proxy>-keys``, ``<proxy>-keys-1``, ...) equal to its ApiKeys.

Called by the WeatherProxy reconcile and directly on every ApiKey event, so a key
added, changed or deleted reaches the Secret within one watch event. The proxy pods
watch the Secret (and hot-reload its mounted file as the fallback); keys are not part of
the config hash, so no pod restarts. An expiring key is dropped at its expiry moment by a
loop callback scheduled here.

Every new content gets a higher ``revision`` (the clock in milliseconds, above any revision
written before, the live Secret's included after a restart); a re-apply of the same content
keeps its revision. The proxy never lets its lagging mounted file replace a newer revision
it got from the watch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import hashlib
from collections.abc import Mapping
from typing import Any

from weather_operator import apply, keys, keyshards
from weather_operator.handlers import runtime
from weather_operator.render import keys_secret, names
from weather_proxy import config


def records_of(state: runtime.State, namespace: str, proxy: str) -> list[keys.KeyRecord]:
    return [item.record for item in state.keys_of(namespace, proxy)]


def keys_file_of(state: runtime.State, namespace: str, proxy: str) -> config.KeysFile:
    return keys.keys_file(records_of(state, namespace, proxy), state.clock())


async def sync_keys(
    state: runtime.State, namespace: str, proxy: str, owner: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Apply the fleet's keys Secrets whose content changed; the applied objects.

    The keys are spread over ``keyshards.shard_count`` Secrets; when that count changes, a
    resharding starts (``runtime.State.key_layouts``): every Secret of both layouts holds the
    keys of both until the pods run with the new one (``finish_resharding``), and the fleet is
    reconciled at once to roll them. Without an ``owner`` body the WeatherProxy comes from the
    index; when it does not exist, nothing is written (its reconcile writes the Secrets).
    """
    key = (namespace, proxy)
    resharded = False
    # Syncs coalesce: callers that queued while one ran are served by the next one, which reads
    # the index after all their events (1,000 ApiKey events then cost a few syncs, not 1,000).
    requested = state.key_syncs_requested[key] = state.key_syncs_requested.get(key, 0) + 1
    async with state.keys_locks[key]:
        if state.key_syncs_started.get(key, 0) >= requested:
            return []
        state.key_syncs_started[key] = state.key_syncs_requested[key]
        records = records_of(state, namespace, proxy)
        now = state.clock()
        keys_file = keys.keys_file(records, now)
        _schedule_expiry(state, namespace, proxy, records, now)
        in_reconcile = owner is not None
        owner = owner if owner is not None else state.fleet(namespace, proxy)
        if owner is None:
            return []
        shards, previous = await layout_of(state, namespace, proxy)
        wanted = keyshards.shard_count(keyshards.size(keys_file), shards)
        if wanted != shards:
            # Pods may still run the oldest layout: it stays readable until the roll-out ends.
            previous, shards, resharded = (shards if previous is None else previous), wanted, True
            state.key_layouts[key] = (shards, previous)
        applied = await _apply_shards(state, namespace, proxy, owner, keys_file, shards, previous, now)
    if resharded or (applied and not in_reconcile):
        if resharded and state.on_key_layout_changed is not None:
            state.on_key_layout_changed(state, namespace, proxy)
        elif state.on_keys_changed is not None:
            state.on_keys_changed(state, namespace, proxy)
    return applied


async def _apply_shards(
    state: runtime.State,
    namespace: str,
    proxy: str,
    owner: Mapping[str, Any],
    keys_file: config.KeysFile,
    shards: int,
    previous: int | None,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """Write each keys Secret of the layout whose content (or layout annotation) changed."""
    applied = []
    written = state.applied_keys.setdefault((namespace, proxy), {})
    parts = keyshards.layout(keys_file, shards, previous)
    for index, (name, part) in enumerate(zip(names.keys_secret_names(proxy, len(parts)), parts, strict=True)):
        text = keys_secret.keys_yaml(part)
        digest = _digest(shards, previous, text)
        if written.get(name) == digest:
            continue
        revision = await _revision(state, namespace, name, digest, now)
        versioned = part.model_copy(update={"revision": revision})
        secret = keys_secret.render(
            proxy, namespace, versioned, shard=index, shards=shards, previous=previous
        )
        applied.append(await state.cluster.apply(apply.adopt(secret, owner)))
        written[name] = digest
        state.key_revisions[namespace, name] = (digest, revision)
    return applied


async def layout_of(state: runtime.State, namespace: str, proxy: str) -> tuple[int, int | None]:
    """(shards, previous shards while resharding) of a fleet: remembered, else read from its first Secret."""
    key = (namespace, proxy)
    found = state.key_layouts.get(key)
    if found is None:
        secret = await state.cluster.get(apply.SECRET, namespace, names.keys_secret_name(proxy))
        annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
        found = (
            _count(annotations.get(keys_secret.SHARDS_ANNOTATION)) or 1,
            _count(annotations.get(keys_secret.PREVIOUS_SHARDS_ANNOTATION)),
        )
        state.key_layouts[key] = found
    return found


def _count(text: str | None) -> int | None:
    """A shard count from an annotation: a power of two, else None (a bad annotation is ignored)."""
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if 0 < value <= keyshards.MAX_SHARDS and value & (value - 1) == 0 else None


async def finish_resharding(
    state: runtime.State, namespace: str, proxy: str, owner: Mapping[str, Any]
) -> bool:
    """The pods run the new layout: drop the old one's copies and Secrets. True when one was finished."""
    key = (namespace, proxy)
    async with state.keys_locks[key]:
        shards, previous = await layout_of(state, namespace, proxy)
        if previous is None:
            return False
        state.key_layouts[key] = (shards, None)
        keys_file = keys.keys_file(records_of(state, namespace, proxy), state.clock())
        await _apply_shards(state, namespace, proxy, owner, keys_file, shards, None, state.clock())
        written = state.applied_keys.setdefault(key, {})
        for name in names.keys_secret_names(proxy, previous)[shards:]:
            await state.cluster.delete(apply.SECRET, namespace, name)
            written.pop(name, None)
            state.key_revisions.pop((namespace, name), None)
    return True


async def _revision(
    state: runtime.State, namespace: str, name: str, digest: str, now: datetime.datetime
) -> int:
    """The revision of Secret ``name``'s content ``digest``: the last one when unchanged, else higher."""
    previous = state.key_revisions.get((namespace, name))
    if previous is None:
        previous = await _live_revision(state, namespace, name)
    last_digest, last = previous
    if last_digest == digest:
        return last
    return max(last + 1, int(now.timestamp() * 1000))


async def _live_revision(state: runtime.State, namespace: str, name: str) -> tuple[str, int]:
    """(no digest, revision) of a keys Secret as it is stored: a restart never writes a lower revision."""
    secret = await state.cluster.get(apply.SECRET, namespace, name)
    encoded = ((secret or {}).get("data") or {}).get(names.KEYS_KEY)
    if not encoded:
        return "", 0
    try:
        stored = config.parse_keys(base64.b64decode(encoded).decode("utf-8"), f"Secret {name}")
    except (ValueError, binascii.Error):
        return "", 0  # unreadable: overwritten with a fresh revision
    annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
    shards = annotations.get(keys_secret.SHARDS_ANNOTATION, "1")
    previous = annotations.get(keys_secret.PREVIOUS_SHARDS_ANNOTATION)
    text = keys_secret.keys_yaml(stored.model_copy(update={"revision": 0}))
    return _digest(shards, previous, text), stored.revision


def _digest(shards: int | str, previous: int | str | None, text: str) -> str:
    """What decides whether a keys Secret must be written: its layout annotations and its content."""
    return hashlib.sha256(f"{shards}/{previous}\n{text}".encode()).hexdigest()


def _schedule_expiry(
    state: runtime.State,
    namespace: str,
    proxy: str,
    records: list[keys.KeyRecord],
    now: datetime.datetime,
) -> None:
    key = (namespace, proxy)
    previous = state.expiry_timers.pop(key, None)
    if previous is not None:
        previous.cancel()
    moment = keys.next_transition(records, now)
    if moment is None:
        return
    # A little after the moment, so the clock read in the re-sync is surely past it.
    delay = max(0.0, (moment - now).total_seconds()) + 0.05
    loop = asyncio.get_running_loop()
    state.expiry_timers[key] = loop.call_later(delay, _transition, state, namespace, proxy)


def _transition(state: runtime.State, namespace: str, proxy: str) -> None:
    """A key of the fleet expired or left its rotation grace: re-render keys.yaml, re-check statuses."""
    state.spawn(sync_keys(state, namespace, proxy), f"keys.yaml of {namespace}/{proxy}")
    if state.on_key_transition is not None:
        state.on_key_transition(state, namespace, proxy)
