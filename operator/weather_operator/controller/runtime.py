"""Operator-wide runtime state, created at startup and shared with every handler via Kopf's memo.

Nothing mutable is module-global: each operator run (and each test run) starts clean.
The state holds the operator's API client, the reconcile-request queue, what was last
written (so unchanged objects and statuses are not written again), the latest body of
each watched workload (so status is observed without reads), and the two Kopf indexes
(live views Kopf keeps up to date from its watches):

* ``weatherproxies_by_name``: (namespace, name) -> a snapshot of each WeatherProxy;
* ``apikeys_by_proxy``: (namespace, proxy) -> a snapshot + hash record of each ApiKey.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

import kopf
import kubernetes.client

from weather_operator import apply, keys, metrics, settings, workqueue
from weather_operator import discovery as discovery_

MEMO_KEY = "weather"

logger = logging.getLogger(__name__)
FLEETS_INDEX = "weatherproxies_by_name"
KEYS_INDEX = "apikeys_by_proxy"

WEATHERPROXY = "WeatherProxy"
APIKEY = "ApiKey"

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


def workload_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """What status and roll-out checks read of a Deployment/StatefulSet (kept per watched workload)."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    template = (spec.get("template") or {}).get("metadata") or {}
    return {
        "kind": body.get("kind"),
        "metadata": {"name": metadata.get("name"), "generation": metadata.get("generation")},
        "spec": {
            "replicas": spec.get("replicas"),
            "template": {"metadata": {"annotations": copy.deepcopy(template.get("annotations") or {})}},
        },
        "status": copy.deepcopy(dict(body.get("status") or {})),
    }


@dataclasses.dataclass(frozen=True)
class IndexedKey:
    """An ApiKey as the ``apikeys_by_proxy`` index holds it: hashes, never a plaintext."""

    record: keys.KeyRecord
    body: dict[str, Any]


@dataclasses.dataclass
class State:
    """What handlers share: settings, the API client, the queue, indexes and what was written."""

    settings: settings.OperatorSettings
    clock: Callable[[], datetime.datetime] = utcnow
    fleets: Mapping[Key, Any] = dataclasses.field(default_factory=dict)
    apikeys: Mapping[Key, Any] = dataclasses.field(default_factory=dict)
    metrics: metrics.OperatorMetrics = dataclasses.field(default_factory=metrics.OperatorMetrics)
    _cluster: apply.Cluster | None = None
    discovery: discovery_.MonitoringDiscovery | None = None
    cnpg: discovery_.CnpgDiscovery | None = None
    queue: workqueue.WorkQueue | None = None
    # Digest of each child as last applied, per (namespace, "Kind/name"): an unchanged render is not
    # re-applied. A child's foreign change or deletion (watch event) and the drift repair drop entries.
    applied: dict[Key, str] = dataclasses.field(default_factory=dict)
    # Fleets whose next reconcile applies every child, changed or not (the drift repair).
    full_apply: set[Key] = dataclasses.field(default_factory=set)
    # Children known not to exist, per (namespace, "Kind/name") (so unwanted ones are not read again).
    absent: set[Key] = dataclasses.field(default_factory=set)
    # (digest, revision) of the keys.yaml content last written, per (namespace, Secret name).
    key_revisions: dict[Key, tuple[str, int]] = dataclasses.field(default_factory=dict)
    # (shards, shards before the resharding that is rolling out, else None) per fleet.
    key_layouts: dict[Key, tuple[int, int | None]] = dataclasses.field(default_factory=dict)
    # The status last written per object: compared with the newly computed one (written on change).
    written_status: dict[tuple[str, str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    # The latest body of each watched Deployment/StatefulSet, per (namespace, "Kind/name").
    workloads: dict[Key, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # metadata.generation last reconciled per (kind, namespace, name): events that do not move it
    # (status writes, the operator's own annotation patches) are not reconciles.
    generations: dict[tuple[str, str, str], Any] = dataclasses.field(default_factory=dict)
    # The fleet and the record each ApiKey had at its last event (a change re-renders the fleet's keys).
    key_owners: dict[Key, tuple[str, keys.KeyRecord | None]] = dataclasses.field(default_factory=dict)
    # ApiKeys whose spec the index cannot read (no record): their latest snapshot, for their reconcile.
    unindexed_keys: dict[Key, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # ApiKeys to re-check periodically: read from a user's Secret, or with a problem.
    key_rechecks: set[Key] = dataclasses.field(default_factory=set)
    # The periodic loop's coroutine factory, started by the first object Kopf processes.
    periodic: Callable[[], Coroutine[Any, Any, Any]] | None = None
    periodic_task: asyncio.Task[Any] | None = None
    background: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)

    def connect(self, configuration: kubernetes.client.Configuration) -> None:
        """Use freshly loaded credentials (Kopf logs in again on a 401)."""
        old = self._cluster
        self._cluster = apply.Cluster(
            apply.Credentials.from_configuration(configuration),
            self.settings.request_timeout_seconds,
            self.settings.api_connections,
        )
        self.metrics.watch_client(self._cluster)
        if self.discovery is None:
            self.discovery = discovery_.MonitoringDiscovery(
                self._served_kinds, ttl=self.settings.monitoring_recheck_seconds
            )
        if self.cnpg is None:
            self.cnpg = discovery_.CnpgDiscovery(
                self._served_kinds, ttl=self.settings.monitoring_recheck_seconds
            )
        if old is not None:
            self.spawn(old.close(), "closing the previous API client")

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

    @property
    def cloudnativepg(self) -> discovery_.CnpgDiscovery:
        if self.cnpg is None:
            raise kopf.TemporaryError("not logged in to the API server yet", delay=1)
        return self.cnpg

    # --- the queue ---------------------------------------------------------------------------------

    def request(self, kind: str, namespace: str, name: str, reason: str, delay: float = 0.0) -> None:
        """Reconcile this object soon (or after ``delay`` seconds); requests for it coalesce."""
        if self.queue is not None:
            self.queue.add(workqueue.Request(kind, namespace, name), reason, delay)

    def request_fleet(self, namespace: str, name: str, reason: str, delay: float = 0.0) -> None:
        self.request(WEATHERPROXY, namespace, name, reason, delay)

    def request_key(self, namespace: str, name: str, reason: str, delay: float = 0.0) -> None:
        self.request(APIKEY, namespace, name, reason, delay)

    def start(self) -> None:
        """Start the queue's workers and the periodic loop (once), from inside Kopf's processing.

        Not from the startup handler: Kopf's event posting (``kopf.event``) works only in
        tasks whose context Kopf prepared for processing objects; a task inherits it.
        """
        if self.queue is not None and not self.queue.started:
            self.queue.start()
        if self.periodic is not None and self.periodic_task is None:
            self.periodic_task = self.spawn(self.periodic(), "periodic loop")

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

    def api_key(self, namespace: str, name: str) -> IndexedKey | None:
        owner = self.key_owners.get((namespace, name))
        if owner is None:
            return None
        for item in self.keys_of(namespace, owner[0]):
            if item.body["metadata"]["name"] == name:
                return item
        return None

    # --- status written once -----------------------------------------------------------------------

    def previous_status(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The status as it is stored: the one this process last wrote, else the body's."""
        metadata = body["metadata"]
        written = self.written_status.get((kind, metadata["namespace"], metadata["name"]))
        return dict(written if written is not None else body.get("status") or {})

    def remember_status(self, kind: str, body: Mapping[str, Any], written: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        key = (kind, metadata["namespace"], metadata["name"])
        merged = {**self.written_status.get(key, body.get("status") or {}), **written}
        self.written_status[key] = {k: v for k, v in merged.items() if v is not None}

    def forget_fleet(self, namespace: str, name: str) -> None:
        """Drop what is kept for a deleted fleet."""
        for secret in [
            k for k in self.key_revisions if k[0] == namespace and k[1].startswith(f"{name}-keys")
        ]:
            self.key_revisions.pop(secret, None)
        self.key_layouts.pop((namespace, name), None)
        self.written_status.pop((WEATHERPROXY, namespace, name), None)
        self.generations.pop((WEATHERPROXY, namespace, name), None)
        if self.queue is not None:
            self.queue.forget(workqueue.Request(WEATHERPROXY, namespace, name))

    def forget_child(self, namespace: str, ident: str) -> None:
        """A child changed or went away behind the operator's back: the next reconcile applies it."""
        self.applied.pop((namespace, ident), None)
        self.absent.discard((namespace, ident))

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str = "background task") -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference until it ends; a failure is logged."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(lambda done: self._finished(done, what))
        return task

    def _finished(self, task: asyncio.Task[Any], what: str) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed: %r", what, task.exception())

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.stop()
        if self.periodic_task is not None:
            self.periodic_task.cancel()
            self.periodic_task = None
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self._cluster is not None:
            await self._cluster.close()
            self._cluster = None


def _values(index: Mapping[Key, Any], key: Key) -> list[Any]:
    if key not in index:
        return []
    return list(index[key])


def started_state(memo: Any) -> State | None:
    """The State if the startup handler made one, with its workers running; else None."""
    state = memo.get(MEMO_KEY) if hasattr(memo, "get") else getattr(memo, MEMO_KEY, None)
    if not isinstance(state, State):
        return None
    state.start()
    return state


def state_of(memo: Any) -> State:
    """The State stored in Kopf's memo by the startup handler."""
    state = memo.get(MEMO_KEY) if hasattr(memo, "get") else getattr(memo, MEMO_KEY, None)
    if not isinstance(state, State):
        raise kopf.TemporaryError("operator state not initialised yet", delay=1)
    state.start()
    return state
