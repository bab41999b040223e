"""Operator-wide runtime state, created at startup and shared with every handler via Kopf's memo.

Nothing mutable is module-global: each operator run (and each test run) starts clean.
The state holds the operator's API client, caches that prevent no-op writes, per-object
locks, and the two Kopf indexes (live views Kopf keeps up to date from its watches):

* ``weatherproxies_by_name``: (namespace, name) -> a snapshot of each WeatherProxy;
* ``apikeys_by_proxy``: (namespace, proxy) -> a snapshot + hash record of each ApiKey.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import datetime
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

import kopf
import kubernetes.client

from weather_operator import apply, keys, settings
from weather_operator import discovery as discovery_

MEMO_KEY = "weather"
FLEETS_INDEX = "weatherproxies_by_name"
KEYS_INDEX = "apikeys_by_proxy"

logger = logging.getLogger(__name__)

Key = tuple[str, str]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, detached copy of what the handlers need of an object (no managedFields)."""
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


@dataclasses.dataclass
class State:
    """What handlers share: settings, the apply client, indexes, caches, locks and tasks."""

    settings: settings.OperatorSettings
    clock: Callable[[], datetime.datetime] = utcnow
    fleets: Mapping[Key, Any] = dataclasses.field(default_factory=dict)
    apikeys: Mapping[Key, Any] = dataclasses.field(default_factory=dict)
    _cluster: apply.Cluster | None = None
    _api_client: kubernetes.client.ApiClient | None = None
    discovery: discovery_.MonitoringDiscovery | None = None
    # One reconcile of a fleet at a time, whichever path triggered it.
    fleet_locks: collections.defaultdict[Key, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # One write of a fleet's keys Secret at a time (its content is computed inside the lock).
    keys_locks: collections.defaultdict[Key, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # One reconcile of an ApiKey at a time (the handler and the periodic re-check).
    apikey_locks: collections.defaultdict[Key, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    # Hash of the keys.yaml last applied per fleet, to skip no-op writes.
    applied_keys: dict[Key, dict[str, str]] = dataclasses.field(default_factory=dict)
    # (hash, revision) of the keys.yaml content last written per fleet: a re-apply of the same
    # content keeps its revision; new content gets a higher one.
    # Keyed by (namespace, Secret name): each shard has its own revision.
    key_revisions: dict[Key, tuple[str, int]] = dataclasses.field(default_factory=dict)
    # Per fleet: keys syncs asked for, and the count covered by the latest one started (they coalesce).
    key_syncs_requested: dict[Key, int] = dataclasses.field(default_factory=dict)
    key_syncs_started: dict[Key, int] = dataclasses.field(default_factory=dict)
    # (shards, shards before the resharding that is rolling out, else None) per fleet.
    key_layouts: dict[Key, tuple[int, int | None]] = dataclasses.field(default_factory=dict)
    # The status last written per object: a later reconcile from a body older than that write
    # compares with what is really stored, so a status is written once, not once per stale body.
    written_status: dict[tuple[str, str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    # resourceVersion of each applied child last seen, to tell real changes from no-op applies.
    child_versions: dict[Key, str | None] = dataclasses.field(default_factory=dict)
    # metadata.generation of each watched Deployment/StatefulSet at its last event.
    workload_generations: dict[Key, str] = dataclasses.field(default_factory=dict)
    # The fleet each ApiKey belonged to at its last event (a changed proxyRef re-syncs both).
    key_proxies: dict[Key, str] = dataclasses.field(default_factory=dict)
    # Pending re-render of a fleet's keys.yaml at its next key expiry.
    expiry_timers: dict[Key, asyncio.TimerHandle] = dataclasses.field(default_factory=dict)
    # Fleets with a reconcile requested (by child events) and the task working them off.
    requested: set[Key] = dataclasses.field(default_factory=set)
    requested_triggers: dict[Key, str] = dataclasses.field(default_factory=dict)
    background: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)
    # Called when a fleet's keys change by themselves (an expiry): re-checks its ApiKeys' status.
    on_key_transition: Callable[[State, str, str], None] | None = None
    # Called when keysync rewrote a fleet's keys Secret outside a reconcile (status.apiKeys moves).
    on_keys_changed: Callable[[State, str, str], None] | None = None
    # Called when a fleet's keys need another number of Secrets: its pods must roll to the new layout.
    on_key_layout_changed: Callable[[State, str, str], None] | None = None
    # The periodic loop's coroutine factory, started by the first object Kopf processes.
    periodic: Callable[[], Coroutine[Any, Any, Any]] | None = None
    periodic_started: bool = False

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
    def connected(self) -> bool:
        return self._cluster is not None

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

    # --- the indexes -------------------------------------------------------------------------------

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

    def all_keys(self) -> Iterator[IndexedKey]:
        for key in list(self.apikeys):
            yield from self.keys_of(*key)

    # --- status written once -----------------------------------------------------------------------

    def previous_status(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The status as it is stored: the one this process last wrote, else the body's."""
        metadata = body["metadata"]
        written = self.written_status.get((kind, metadata["namespace"], metadata["name"]))
        return dict(written if written is not None else body.get("status") or {})

    def remember_status(self, kind: str, body: Mapping[str, Any], written: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        key = (kind, metadata["namespace"], metadata["name"])
        self.written_status[key] = {**self.written_status.get(key, body.get("status") or {}), **written}

    # --- background work ---------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str = "background task") -> None:
        """Run ``coro`` in the background, keeping a reference; failures are logged, not lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(lambda done: self._finished(done, what))

    def start_periodic(self) -> None:
        """Start the periodic loop (once), from inside Kopf's per-object processing.

        Not from the startup handler: Kopf's event posting (``kopf.event``) works only in
        tasks whose context Kopf prepared for processing objects; a task inherits it.
        """
        if self.periodic is not None and not self.periodic_started:
            self.periodic_started = True
            self.spawn(self.periodic(), "periodic loop")

    def _finished(self, task: asyncio.Task[Any], what: str) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed: %r", what, task.exception())

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is kept for a deleted fleet."""
        key = (namespace, name)
        written = self.applied_keys.pop(key, None) or {}
        for secret in written:
            self.key_revisions.pop((namespace, secret), None)
        self.key_layouts.pop(key, None)
        self.written_status.pop(("WeatherProxy", namespace, name), None)
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


def _values(index: Mapping[Key, Any], key: Key) -> list[Any]:
    if key not in index:
        return []
    return list(index[key])


def started_state(memo: Any) -> State | None:
    """The State if the startup handler made one, with its periodic loop running; else None."""
    state = memo.get(MEMO_KEY) if hasattr(memo, "get") else getattr(memo, MEMO_KEY, None)
    if not isinstance(state, State):
        return None
    state.start_periodic()
    return state


def state_of(memo: Any) -> State:
    """The State stored in Kopf's memo by the startup handler."""
    state = memo.get(MEMO_KEY) if hasattr(memo, "get") else getattr(memo, MEMO_KEY, None)
    if not isinstance(state, State):
        raise kopf.TemporaryError("operator state not initialised yet", delay=1)
    return state
