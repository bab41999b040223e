"""A fleet's children on the API server: applying them when they changed, creating generated Secrets
once, deleting the unwanted, and what is remembered of them between reconciles (``ChildMemory``).

Children are named ``Kind/name`` within their fleet's namespace. Nothing here renders: the
fleet's reconcile passes what ``render`` made, and this module owns every write of a child.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from weather_operator import apply, discovery, events
from weather_operator.api import constants
from weather_operator.controller import connection
from weather_operator.render import meta

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})
# Kinds whose objects nobody but their writers changes (no status written by a controller):
# a new resourceVersion after an apply means the apply changed them.
STATUSLESS_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Service",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
        "PodLogs",
    }
)
# Kinds with immutable fields a new render may change: deleted and created anew. A StatefulSet
# (e.g. Redis persistence switched on by a new environment: Redis is a cache, losing it is safe)
# and a Service (``clusterIP``, e.g. Redis's Service becoming headless).
RECREATED_KINDS = frozenset({"StatefulSet", "Service"})


def ident(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def digest(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


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


@dataclasses.dataclass
class ChildMemory:
    """What one fleet's reconciles remember of its children, by ``Kind/name``.

    Kept in memory, not as an annotation on each child: a hash annotation would be a new field
    on every child of every fleet (one more write each when the operator is upgraded), and a
    restart re-applies everything once anyway, which server-side apply makes a no-op.
    """

    # The digest of each child as last applied: an unchanged render is not applied again. A foreign
    # change or deletion (the child's watch event) and the drift repair drop it.
    applied: dict[str, str] = dataclasses.field(default_factory=dict)
    # Generated Secrets (passwords) known to exist: created once, never applied again.
    created: set[str] = dataclasses.field(default_factory=set)
    # The version the API server gave each child at its last apply: the resourceVersion of kinds
    # without a controller-written status, else the time of the operator's managedFields entry.
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    # Children known not to exist (unwanted ones are not read again).
    absent: set[str] = dataclasses.field(default_factory=set)
    # The latest body of each watched Deployment/StatefulSet (``workload_view``).
    workloads: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def forget(self, child: str) -> None:
        """The child changed or went away behind the operator's back: the next reconcile writes it."""
        self.applied.pop(child, None)
        self.created.discard(child)
        self.absent.discard(child)

    def gone(self, child: str) -> None:
        """The operator deleted the child (or found it missing)."""
        self.forget(child)
        self.workloads.pop(child, None)
        self.absent.add(child)


class Children:
    """The writes of a fleet's children, through the API client of ``connection``."""

    def __init__(self, connection_: connection.Connection) -> None:
        self.connection = connection_

    async def create_once(
        self, owner: Mapping[str, Any], secret: Mapping[str, Any], memory: ChildMemory
    ) -> bool:
        """Create a generated Secret (a password) once; an existing one is kept. True when created."""
        child = ident(secret)
        if child in memory.created:
            return False
        created = await self.connection.api.create(apply.adopt(secret, owner)) is not None
        memory.created.add(child)
        memory.absent.discard(child)
        return created

    async def apply_changed(
        self,
        owner: Mapping[str, Any],
        objects: Iterable[Mapping[str, Any]],
        memory: ChildMemory,
        *,
        full: bool,
    ) -> list[str]:
        """Apply what changed since its last apply (everything when ``full``); the children it changed."""
        changed: list[str] = []
        for obj in objects:
            child = ident(obj)
            wanted = apply.adopt(obj, owner)
            fingerprint = digest(wanted)
            if not full and memory.applied.get(child) == fingerprint:
                continue
            applied = await self._apply_or_recreate(wanted, owner)
            if memory.applied.get(child) != fingerprint and _changed_by_apply(memory, child, applied):
                changed.append(child)
            memory.applied[child] = fingerprint
            memory.absent.discard(child)
            if obj["kind"] in WORKLOAD_KINDS:
                memory.workloads.setdefault(child, workload_view(applied))
        return changed

    async def _apply_or_recreate(self, obj: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
        """Apply; an object whose immutable fields changed (``RECREATED_KINDS``) is created anew."""
        api = self.connection.api
        try:
            return await api.apply(obj)
        except apply.ApiError as exc:
            if not (exc.status == 422 and obj["kind"] in RECREATED_KINDS and _immutable(exc)):
                raise
        kind = apply.kind_of(obj["apiVersion"], obj["kind"])
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        await api.delete(kind, namespace, name)
        events.warn(
            owner, reason="Recreated", message=f"{obj['kind']} {name}: an immutable field changed; re-created"
        )
        return await api.apply(obj)

    async def delete_unwanted(
        self,
        owner: Mapping[str, Any],
        unwanted: Iterable[meta.ObjectRef],
        memory: ChildMemory,
        *,
        monitoring_available: bool,
    ) -> list[str]:
        """Delete the owner's children that must not exist; those deleted."""
        namespace = owner["metadata"]["namespace"]
        deleted: list[str] = []
        for ref in unwanted:
            child = f"{ref.kind}/{ref.name}"
            if child in memory.absent:
                continue
            kind = apply.kind_of(ref.api_version, ref.kind)
            if kind.api_version == discovery.MONITORING_API_VERSION and not monitoring_available:
                continue  # the kind is not served: nothing of it can exist
            if (
                kind.api_version == discovery.CNPG_API_VERSION
                and not await self.connection.cloudnativepg.available()
            ):
                continue
            if (
                kind.api_version == discovery.CERT_MANAGER_API_VERSION
                and not await self.connection.cert_manager.available()
            ):
                continue
            if (
                kind.api_version == discovery.POD_LOGS_API_VERSION
                and not await self.connection.pod_logs.available()
            ):
                continue
            existing = await self.connection.api.get(kind, namespace, ref.name)
            if existing is not None and _owned_by(existing, owner):
                await self.connection.api.delete(kind, namespace, ref.name)
                deleted.append(child)
            memory.gone(child)
        return deleted

    async def delete_secret(self, namespace: str, name: str, memory: ChildMemory) -> bool:
        """Delete a Secret the render no longer lists (a keys Secret of an old layout); True if it existed."""
        child = f"Secret/{name}"
        memory.applied.pop(child, None)
        return await self.connection.api.delete(apply.SECRET, namespace, name)

    async def workload(
        self, kind: apply.Kind, namespace: str, name: str, memory: ChildMemory
    ) -> dict[str, Any] | None:
        """The workload as its latest watch event showed it; read once when no event came yet."""
        child = f"{kind.kind}/{name}"
        if child in memory.workloads:
            return memory.workloads[child]
        if child in memory.absent:
            return None
        found = await self.connection.api.get(kind, namespace, name)
        if found is None:
            return None
        memory.workloads[child] = workload_view(found)
        return memory.workloads[child]


def _owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])


def _changed_by_apply(memory: ChildMemory, child: str, applied: Mapping[str, Any]) -> bool:
    """Whether the apply changed the child (for the Applied event), not only re-stated it.

    Objects with a controller-written status get new resourceVersions without any apply;
    for them the API server's stamp on the operator's managedFields entry is used, which
    moves only when the operator's fields changed (to the second).
    """
    if applied.get("kind") in STATUSLESS_KINDS:
        version = applied.get("metadata", {}).get("resourceVersion")
    else:
        version = _own_fields_time(applied)
    before = memory.versions.get(child)
    memory.versions[child] = str(version)
    return before != str(version)


def _own_fields_time(obj: Mapping[str, Any]) -> str | None:
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == constants.FIELD_MANAGER and entry.get("operation") == "Apply":
            return str(entry.get("time"))
    return None


def _immutable(exc: apply.ApiError) -> bool:
    text = str(exc)
    return "Forbidden" in text or "immutable" in text or "may not change" in text
