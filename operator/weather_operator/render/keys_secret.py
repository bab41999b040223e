"""The Secret with the fleet's ``keys.yaml``: hashes of its ApiKeys, never a plaintext key."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from weather_operator.render import meta, names
from weather_proxy import config


def keys_yaml(keys: config.KeysFile) -> str:
    """``keys.yaml`` text, deterministic (entries in the given order)."""
    return yaml.safe_dump(keys.to_camel_dict(), sort_keys=False, default_flow_style=False)


def render(proxy: str, namespace: str, keys: config.KeysFile) -> dict[str, Any]:
    """The keys Secret; base64 ``data`` (not stringData) so server-side apply sees no diff."""
    encoded = base64.b64encode(keys_yaml(keys).encode("utf-8")).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta.metadata(names.keys_secret_name(proxy), namespace, proxy, names.PROXY),
        "data": {names.KEYS_KEY: encoded},
    }
