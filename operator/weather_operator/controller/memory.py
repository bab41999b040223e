"""What the controller remembers between reconciles: one record per WeatherProxy and per ApiKey.

Nothing here is read back from the API server: it is what this process saw and wrote, so a
restarted operator starts with empty records (it re-applies every child once, and reads
the keys layout back from the Secrets). Each record's parts belong to the module that
uses them: ``children.ChildMemory`` (what was applied), ``keysync.KeyLayout`` (the keys
Secrets), ``WrittenStatus`` (the status last written). A record goes when its object's
DELETED event comes (``handlers``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from weather_operator import keys
from weather_operator.controller import certificates, children, keysync, rollout

Key = tuple[str, str]


@dataclasses.dataclass
class WrittenStatus:
    """The status as this process last wrote it: compared with the next one (written on change)."""

    last: dict[str, Any] | None = None

    def previous(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The status as it is stored: the one last written, else the (possibly stale) body's."""
        return dict(self.last if self.last is not None else body.get("status") or {})

    def remember(self, body: Mapping[str, Any], written: Mapping[str, Any]) -> None:
        """``written`` was patched in (a merge patch: None cleared a field)."""
        merged = {**self.previous(body), **written}
        self.last = {k: v for k, v in merged.items() if v is not None}


@dataclasses.dataclass
class FleetMemory:
    """One WeatherProxy's record."""

    # metadata.generation last reconciled (None: none seen yet). Events that do not move it (status
    # writes, metadata changes) are not reconciles.
    generation: Any = None
    seen: bool = False
    # The next reconcile applies every child, changed or not (the drift repair).
    full_apply: bool = False
    status: WrittenStatus = dataclasses.field(default_factory=WrittenStatus)
    children: children.ChildMemory = dataclasses.field(default_factory=children.ChildMemory)
    keys: keysync.KeyLayout = dataclasses.field(default_factory=keysync.KeyLayout)
    tls: certificates.TlsMemory = dataclasses.field(default_factory=certificates.TlsMemory)
    # The blue/green analysis running (``rollout.RolloutMemory``); the rollout's state is in status.rollout.
    rollout: rollout.RolloutMemory = dataclasses.field(default_factory=rollout.RolloutMemory)


@dataclasses.dataclass
class ApiKeyMemory:
    """One ApiKey's record."""

    generation: Any = None
    seen: bool = False
    # The fleet and the index record the ApiKey had at its last event (a change re-renders the keys).
    owner: tuple[str, keys.KeyRecord | None] | None = None
    # Its latest snapshot while the index cannot hold it (no hash yet, or a spec it cannot read).
    unindexed: dict[str, Any] | None = None
    # Re-checked by the periodic loop: the key comes from a user's Secret, or it has a problem.
    recheck: bool = False
    status: WrittenStatus = dataclasses.field(default_factory=WrittenStatus)


class Memory:
    """The records, by (namespace, name); a record is made on first use."""

    def __init__(self) -> None:
        self.fleets: dict[Key, FleetMemory] = {}
        self.apikeys: dict[Key, ApiKeyMemory] = {}

    def fleet(self, namespace: str, name: str) -> FleetMemory:
        return self.fleets.setdefault((namespace, name), FleetMemory())

    def apikey(self, namespace: str, name: str) -> ApiKeyMemory:
        return self.apikeys.setdefault((namespace, name), ApiKeyMemory())
