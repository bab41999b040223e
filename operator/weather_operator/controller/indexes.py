"""The two Kopf indexes, live views Kopf keeps up to date from its watches, as the reconciles read them.

* ``weatherproxies_by_name``: (namespace, name) -> a snapshot of each WeatherProxy;
* ``apikeys_by_proxy``: (namespace, proxy) -> a snapshot + hash record of each ApiKey.

Every reconcile starts from the latest snapshot here, never from an event's body.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from weather_operator import keys

FLEETS_INDEX = "weatherproxies_by_name"
KEYS_INDEX = "apikeys_by_proxy"

Key = tuple[str, str]


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, detached copy of what the reconciles need of an object (no managedFields)."""
    metadata = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            field: copy.deepcopy(metadata[field])
            for field in ("name", "namespace", "uid", "generation", "annotations", "deletionTimestamp")
            if field in metadata
        },
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
        "status": copy.deepcopy(dict(body.get("status") or {})),
    }


@dataclasses.dataclass(frozen=True)
class IndexedKey:
    """An ApiKey as the ``apikeys_by_proxy`` index holds it: hashes, never a plaintext."""

    record: keys.KeyRecord
    body: dict[str, Any]


class Indexes:
    """Reads of the indexes (Kopf's, or plain dicts in tests); attributes are replaced, never mutated."""

    def __init__(self, fleets: Mapping[Key, Any], apikeys: Mapping[Key, Any]) -> None:
        self.fleets = fleets
        self.apikeys = apikeys

    def fleet(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The latest snapshot of a WeatherProxy, or None when it does not exist (or is going away)."""
        for body in _values(self.fleets, (namespace, name)):
            if isinstance(body, dict) and not body["metadata"].get("deletionTimestamp"):
                return body
        return None

    def all_fleets(self) -> list[dict[str, Any]]:
        return [body for key in list(self.fleets) if (body := self.fleet(*key)) is not None]

    def keys_of(self, namespace: str, proxy: str) -> list[IndexedKey]:
        """The ApiKeys naming this fleet in their proxyRef."""
        return [item for item in _values(self.apikeys, (namespace, proxy)) if isinstance(item, IndexedKey)]

    def api_key(self, namespace: str, proxy: str, name: str) -> IndexedKey | None:
        """The ApiKey ``name`` among the fleet ``proxy``'s."""
        for item in self.keys_of(namespace, proxy):
            if item.body["metadata"]["name"] == name:
                return item
        return None

    def key_counts(self) -> dict[Key, int]:
        """ApiKeys per existing fleet (the ``weather_operator_api_keys`` gauge)."""
        return {key: len(self.keys_of(*key)) for key in list(self.fleets) if self.fleet(*key)}


def _values(index: Mapping[Key, Any], key: Key) -> list[Any]:
    if key not in index:
        return []
    return list(index[key])
