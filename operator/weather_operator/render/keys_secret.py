"""The Secrets with the fleet's keys (``keys.yaml``): hashes of its ApiKeys, never a plaintext key.

One Secret per shard (``weather_operator.keyshards``): ``<proxy>-keys``, ``<proxy>-keys-1``, ...
Each carries the shard count (and, while a resharding rolls out, the previous count) in an
annotation, so an operator that restarts picks the layout up from the cluster.
"""

from __future__ import annotations

import base64
from typing import Any

from weather_operator import keyshards
from weather_operator.api import constants
from weather_operator.render import meta, names
from weather_proxy import config

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
