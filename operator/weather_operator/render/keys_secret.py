"""The Secrets with the fleet's keys (``keys.yaml``): hashes of its ApiKeys, never a plaintext key.

One Secret per shard (``weather_operator.keyshards``): ``<proxy>-keys``, ``<proxy>-keys-1``, ...
Each carries the shard count (and, while a resharding rolls out, the previous count) in an
annotation, so an operator that restarts picks the layout up from the cluster.

Also the Secret of a BlueGreen fleet's smoke key (``<proxy>-smoke-key``): the plaintext of the
operator's own probe key, which only the analysis of a candidate slot sends (its hash is an
entry of keys.yaml, ``keys.smoke_entry``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
from collections.abc import Mapping
from typing import Any

from weather_operator import keyshards
from weather_operator.api import constants
from weather_operator.render import meta, names
from weather_proxy import config, contract

# The data key of the smoke key's Secret: the one an ApiKey's Secret has.
SMOKE_KEY_DATA_KEY = contract.APIKEY_SECRET_KEY

SHARDS_ANNOTATION = f"{constants.GROUP}/key-shards"
PREVIOUS_SHARDS_ANNOTATION = f"{constants.GROUP}/key-shards-previous"


def keys_yaml(keys: config.KeysFile) -> str:
    """``keys.yaml`` text of one shard: JSON form (a YAML subset), one entry per line, deterministic."""
    return keyshards.render(keys)


def render(
    proxy: str,
    namespace: str,
    keys: config.KeysFile,
    *,
    shard: int = 0,
    shards: int = 1,
    previous: int | None = None,
) -> dict[str, Any]:
    """One keys Secret; base64 ``data`` (not stringData) so server-side apply sees no diff."""
    encoded = base64.b64encode(keys_yaml(keys).encode("utf-8")).decode("ascii")
    annotations = {SHARDS_ANNOTATION: str(shards)}
    if previous is not None:
        annotations[PREVIOUS_SHARDS_ANNOTATION] = str(previous)
    name = names.keys_secret_names(proxy, shard + 1)[shard]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta.metadata(name, namespace, proxy, names.PROXY, annotations=annotations),
        "data": {names.KEYS_KEY: encoded},
    }


@dataclasses.dataclass(frozen=True)
class KeysSecret:
    """One rendered keys Secret with what decides whether it is new content."""

    name: str
    digest: str  # of its layout annotations and content without the revision
    revision: int
    secret: dict[str, Any]


def content_digest(shards: int | str, previous: int | str | None, text: str) -> str:
    """What decides whether a keys Secret changed: its layout annotations and its content."""
    return hashlib.sha256(f"{shards}/{previous}\n{text}".encode()).hexdigest()


def next_revision(written: tuple[str, int] | None, digest: str, now: datetime.datetime) -> int:
    """The revision of content ``digest``: the one written last when unchanged, else higher.

    New content gets the clock in milliseconds, and always more than any revision written
    before (the live Secret's included after a restart), so the proxy can tell newer content.
    """
    if written is None:
        return int(now.timestamp() * 1000)
    last_digest, last = written
    if last_digest == digest:
        return last
    return max(last + 1, int(now.timestamp() * 1000))


def render_layout(
    proxy: str,
    namespace: str,
    keys: config.KeysFile,
    *,
    shards: int,
    previous: int | None,
    written: Mapping[str, tuple[str, int]],
    now: datetime.datetime,
) -> list[KeysSecret]:
    """Every keys Secret of the layout, each with its revision (``written``: name -> (digest, revision))."""
    out = []
    parts = keyshards.layout(keys, shards, previous)
    for index, (name, part) in enumerate(zip(names.keys_secret_names(proxy, len(parts)), parts, strict=True)):
        digest = content_digest(shards, previous, keys_yaml(part))
        revision = next_revision(written.get(name), digest, now)
        versioned = part.model_copy(update={"revision": revision})
        secret = render(proxy, namespace, versioned, shard=index, shards=shards, previous=previous)
        out.append(KeysSecret(name, digest, revision, secret))
    return out


def render_smoke_key_secret(proxy: str, namespace: str, plaintext: str) -> dict[str, Any]:
    """The Secret of the fleet's smoke key: create it, never apply it (its key is made once)."""
    return meta.secret(
        names.smoke_key_secret_name(proxy), namespace, proxy, names.PROXY, {SMOKE_KEY_DATA_KEY: plaintext}
    )
