"""Operator-wide runtime state, created at startup and shared with every handler via Kopf's memo.

Nothing mutable is module-global: each operator run (and each test run) starts clean.
The settings are read from the environment once, when the handlers are imported,
because Kopf needs timer intervals at decoration time.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

import kopf
import kubernetes.client

from weather_operator import apply, settings
from weather_operator import discovery as discovery_

MEMO_KEY = "weather"

SETTINGS = settings.OperatorSettings.from_env()


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass
class State:
    """What handlers share: settings, the apply client, caches, per-fleet locks and timers."""

    settings: settings.OperatorSettings
    clock: Callable[[], datetime.datetime] = utcnow
    _cluster: apply.Cluster | None = None
    _api_client: kubernetes.client.ApiClient | None = None
    discovery: discovery_.MonitoringDiscovery | None = None
    # One reconcile of a fleet at a time, whichever path triggered it.
    fleet_locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # One write of a fleet's keys Secret at a time (its content is computed inside the lock).
    keys_locks: collections.defaultdict[tuple[str, str], asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # Hash of the keys.yaml last applied per fleet, to skip no-op writes.
    applied_keys: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    # resourceVersion of each applied child last seen, to tell real changes from no-op applies.
    child_versions: dict[tuple[str, str], str | None] = dataclasses.field(default_factory=dict)
    # The fleet each ApiKey belonged to at its last event (a changed proxyRef re-syncs both).
    key_proxies: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    # Pending re-render of a fleet's keys.yaml at its next key expiry.
    expiry_timers: dict[tuple[str, str], asyncio.TimerHandle] = dataclasses.field(default_factory=dict)
    background: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)

    def connect(self, api_client: kubernetes.client.ApiClient) -> None:
        """Use a freshly authenticated client (Kopf re-logs in on 401)."""
        old = self._api_client
        self._api_client = api_client
        self._cluster = apply.Cluster(api_client, self.settings.request_timeout_seconds)
        if self.discovery is None:
            self.discovery = discovery_.MonitoringDiscovery(
                self._served_kinds, ttl=self.settings.monitoring_recheck_seconds
            )
        if old is not None:
            old.close()  # type: ignore[no-untyped-call]

    async def _served_kinds(self, api_version: str) -> set[str]:
        return await self.cluster.served_kinds(api_version)

    @property
    def cluster(self) -> apply.Cluster:
        if self._cluster is None:
            raise kopf.TemporaryError("not logged in to the API server yet", delay=1)
        return self._cluster

    @property
    def monitoring(self) -> discovery_.MonitoringDiscovery:
        if self.discovery is None:
            raise kopf.TemporaryError("not logged in to the API server yet", delay=1)
        return self.discovery

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background, keeping a reference until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is kept for a deleted fleet."""
        key = (namespace, name)
        self.applied_keys.pop(key, None)
        timer = self.expiry_timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def close(self) -> None:
        for timer in self.expiry_timers.values():
            timer.cancel()
        self.expiry_timers.clear()
        for task in list(self.background):
            task.cancel()
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        if self._api_client is not None:
            self._api_client.close()  # type: ignore[no-untyped-call]
            self._api_client = None
            self._cluster = None


def state_of(memo: Any) -> State:
    """The State stored in Kopf's memo by the startup handler."""
    state = memo.get(MEMO_KEY) if hasattr(memo, "get") else getattr(memo, MEMO_KEY, None)
    if not isinstance(state, State):
        raise kopf.TemporaryError("operator state not initialised yet", delay=1)
    return state
