"""The keys of a fleet, as its reconcile needs them: the ApiKeys' hashes, their layout, revisions.

The keys Secrets (``<proxy>-keys``, ``<proxy>-keys-1``, ...) are children of the fleet like
any other: rendered by ``render.fleet`` from the ``apikeys_by_proxy`` index and applied by
the fleet's reconcile, which every ApiKey event requests. Requests coalesce in the queue,
so 1,000 ApiKey events cost a few reconciles. The proxy pods watch the Secrets (and
hot-reload their mounted files as the fallback); keys are not part of the config hash, so
no pod restarts for a key.

What this module keeps per fleet (``KeyLayout``, a part of the fleet's record in ``memory``),
for the render:

* the layout: how many Secrets the keys are spread over (``keyshards.shard_count``), and
  while a resharding rolls out, how many there were before (every Secret of both layouts
  holds the keys of both until the pods run with the new one);
* each Secret's (content digest, revision): a re-render of the same content keeps its
  revision; new content gets a higher one (``render.keys_secret.next_revision``). After a
  restart both come from the live Secrets once, so a revision never goes down;
* a BlueGreen fleet's smoke key (``smoke_key``): the plaintext of ``<proxy>-smoke-key``, made
  once, read back once after a restart. Its hash is an entry of every layout's keys.yaml
  (``keys.smoke_entry``, put in the fleet's keys file before it is split), and the analysis of a
  candidate slot sends it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from weather_operator import apply, keys, keyshards
from weather_operator.render import keys_secret, names
from weather_proxy import config


@dataclasses.dataclass
class KeyLayout:
    """A fleet's keys Secrets as last written: their layout and each one's (digest, revision)."""

    # (shards, shards before the resharding that is rolling out, else None); None: not known yet.
    shards: tuple[int, int | None] | None = None
    # Per keys Secret name: (content digest, revision) of the keys.yaml last written.
    revisions: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    # The smoke key's plaintext (BlueGreen fleets), as its Secret holds it; None: not read yet.
    smoke_key: str | None = dataclasses.field(default=None, repr=False)


async def layout(
    api: apply.Cluster, namespace: str, proxy: str, keys_file: config.KeysFile, memory: KeyLayout
) -> tuple[int, int | None]:
    """(shards, previous shards while resharding) for ``keys_file``; its size may start a resharding."""
    shards, previous = await _known_layout(api, namespace, proxy, memory)
    wanted = keyshards.shard_count(keyshards.size(keys_file), shards)
    if wanted != shards:
        # Pods may still run the oldest layout: it stays readable until the roll-out ends.
        previous, shards = (shards if previous is None else previous), wanted
        memory.shards = (shards, previous)
    return shards, previous


async def _known_layout(
    api: apply.Cluster, namespace: str, proxy: str, memory: KeyLayout
) -> tuple[int, int | None]:
    """The layout remembered, else read from the fleet's first keys Secret (with the revisions)."""
    found = memory.shards
    if found is None:
        secret = await api.get(apply.SECRET, namespace, names.keys_secret_name(proxy))
        annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
        found = (
            _count(annotations.get(keys_secret.SHARDS_ANNOTATION)) or 1,
            _count(annotations.get(keys_secret.PREVIOUS_SHARDS_ANNOTATION)),
        )
        memory.shards = found
        for name in names.keys_secret_names(proxy, max(found[0], found[1] or 0)):
            live = secret if name == names.keys_secret_name(proxy) else None
            if live is None:
                live = await api.get(apply.SECRET, namespace, name)
            memory.revisions.setdefault(name, _live_revision(live))
    return found


def finish_resharding(proxy: str, memory: KeyLayout) -> list[str]:
    """The pods run the new layout: forget the old one. The Secrets only it had, to delete."""
    shards, previous = memory.shards or (1, None)
    if previous is None:
        return []
    memory.shards = (shards, None)
    gone = names.keys_secret_names(proxy, previous)[shards:]
    for name in gone:
        memory.revisions.pop(name, None)
    return gone


def revisions_of(proxy: str, shards: int, memory: KeyLayout) -> dict[str, tuple[str, int]]:
    return {
        name: memory.revisions[name]
        for name in names.keys_secret_names(proxy, shards)
        if name in memory.revisions
    }


def written(secrets: list[keys_secret.KeysSecret], memory: KeyLayout) -> None:
    """Remember the keys Secrets as applied: the next render keeps their revisions."""
    for item in secrets:
        memory.revisions[item.name] = (item.digest, item.revision)


def next_transition(records: list[keys.KeyRecord], now: datetime.datetime) -> float | None:
    """Seconds until the fleet's keys.yaml changes by itself (a key expires, a grace ends), if ever."""
    moment = keys.next_transition(records, now)
    if moment is None:
        return None
    # A little after the moment, so the clock read in that reconcile is surely past it.
    return max(0.0, (moment - now).total_seconds()) + 0.05


async def smoke_key(api: apply.Cluster, owner: Mapping[str, Any], memory: KeyLayout) -> str:
    """The plaintext of the fleet's smoke key: remembered, else read from its Secret, else made.

    The Secret is created once (a new key only when it is missing or holds none); the key is
    never logged, and only its hash reaches keys.yaml.
    """
    if memory.smoke_key is not None:
        return memory.smoke_key
    namespace, proxy = owner["metadata"]["namespace"], owner["metadata"]["name"]
    name = names.smoke_key_secret_name(proxy)
    found = _smoke_plaintext(await api.get(apply.SECRET, namespace, name))
    if found is None:
        plaintext = keys.generate_key()
        secret = apply.adopt(keys_secret.render_smoke_key_secret(proxy, namespace, plaintext), owner)
        created = await api.create(secret)
        if created is None:  # it exists: made meanwhile (read it), or without a key (replace it)
            found = _smoke_plaintext(await api.get(apply.SECRET, namespace, name))
            if found is None:
                await api.apply(secret)
        found = found or plaintext
    memory.smoke_key = found
    return found


def _smoke_plaintext(secret: Mapping[str, Any] | None) -> str | None:
    encoded = ((secret or {}).get("data") or {}).get(keys_secret.SMOKE_KEY_DATA_KEY)
    if not encoded:
        return None
    try:
        return base64.b64decode(str(encoded), validate=True).decode("utf-8") or None
    except (binascii.Error, UnicodeDecodeError):
        return None


def _count(text: str | None) -> int | None:
    """A shard count from an annotation: a power of two, else None (a bad annotation is ignored)."""
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if 0 < value <= keyshards.MAX_SHARDS and value & (value - 1) == 0 else None


def _live_revision(secret: dict[str, object] | None) -> tuple[str, int]:
    """(digest, revision) of a keys Secret as it is stored: a restart never writes a lower revision."""
    data = (secret or {}).get("data") or {}
    encoded = data.get(names.KEYS_KEY) if isinstance(data, dict) else None
    if not encoded:
        return "", 0
    metadata = (secret or {}).get("metadata") or {}
    annotations = (metadata.get("annotations") if isinstance(metadata, dict) else None) or {}
    try:
        stored = config.parse_keys(base64.b64decode(str(encoded)).decode("utf-8"), "keys Secret")
    except (ValueError, binascii.Error):
        return "", 0  # unreadable: overwritten with a fresh revision
    text = keys_secret.keys_yaml(stored.model_copy(update={"revision": 0}))
    digest = keys_secret.content_digest(
        annotations.get(keys_secret.SHARDS_ANNOTATION, "1"),
        annotations.get(keys_secret.PREVIOUS_SHARDS_ANNOTATION),
        text,
    )
    return digest, stored.revision
