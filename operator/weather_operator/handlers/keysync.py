"""Keeping a fleet's keys Secret (``<proxy>-keys``, key ``keys.yaml``) equal to its ApiKeys.

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

from weather_operator import apply, keys
from weather_operator.handlers import runtime
from weather_operator.render import keys_secret, names
from weather_proxy import config


def records_of(state: runtime.State, namespace: str, proxy: str) -> list[keys.KeyRecord]:
    return [item.record for item in state.keys_of(namespace, proxy)]


def keys_file_of(state: runtime.State, namespace: str, proxy: str) -> config.KeysFile:
    return keys.keys_file(records_of(state, namespace, proxy), state.clock())


async def sync_keys(
    state: runtime.State, namespace: str, proxy: str, owner: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """Apply the fleet's keys Secret if its content changed; the applied object, else None.

    Without an ``owner`` body the WeatherProxy comes from the index; when it does not exist,
    nothing is written (its reconcile writes the Secret when it appears).
    """
    key = (namespace, proxy)
    async with state.keys_locks[key]:
        records = records_of(state, namespace, proxy)
        now = state.clock()
        keys_file = keys.keys_file(records, now)
        _schedule_expiry(state, namespace, proxy, records, now)
        digest = hashlib.sha256(keys_secret.keys_yaml(keys_file).encode("utf-8")).hexdigest()
        if state.applied_keys.get(key) == digest:
            return None
        in_reconcile = owner is not None
        owner = owner if owner is not None else state.fleet(namespace, proxy)
        if owner is None:
            return None
        revision = await _revision(state, namespace, proxy, digest, now)
        versioned = keys_file.model_copy(update={"revision": revision})
        applied = await state.cluster.apply(
            apply.adopt(keys_secret.render(proxy, namespace, versioned), owner)
        )
        state.applied_keys[key] = digest
        state.key_revisions[key] = (digest, revision)
    if not in_reconcile and state.on_keys_changed is not None:
        state.on_keys_changed(state, namespace, proxy)
    return applied


async def _revision(
    state: runtime.State, namespace: str, proxy: str, digest: str, now: datetime.datetime
) -> int:
    """The revision of content ``digest``: unchanged when it is what was written last, else higher."""
    previous = state.key_revisions.get((namespace, proxy))
    if previous is None:
        previous = await _live_revision(state, namespace, proxy)
    last_digest, last = previous
    if last_digest == digest:
        return last
    return max(last + 1, int(now.timestamp() * 1000))


async def _live_revision(state: runtime.State, namespace: str, proxy: str) -> tuple[str, int]:
    """(hash of the content without its revision, revision) of the keys Secret as it is stored."""
    secret = await state.cluster.get(apply.SECRET, namespace, names.keys_secret_name(proxy))
    encoded = ((secret or {}).get("data") or {}).get(names.KEYS_KEY)
    if not encoded:
        return "", 0
    try:
        stored = config.parse_keys(base64.b64decode(encoded).decode("utf-8"), "the keys Secret")
    except (ValueError, binascii.Error):
        return "", 0  # unreadable: overwritten with a fresh revision
    text = keys_secret.keys_yaml(stored.model_copy(update={"revision": 0}))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), stored.revision


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
