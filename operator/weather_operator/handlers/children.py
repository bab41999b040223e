"""Watching the fleets' children: readiness into status, deleted or edited children restored at once.

Only objects labelled ``app.kubernetes.io/managed-by: weather-operator`` and controlled by
a WeatherProxy count. No hot loop on the operator's own writes: a re-apply of an unchanged
object is a no-op on the API server and produces no event.

* Deleted child: the fleet is reconciled (the child is re-created).
* Deployment/StatefulSet: a new ``metadata.generation`` means its spec was changed (by a
  person, or by the operator's own apply): the fleet is reconciled, which is a no-op when
  it was the operator. A status-only change refreshes the owner's status.
* ConfigMap/Secret/Service, and the proxy pods' ServiceAccount, Role and RoleBinding: they
  have no status, every change is a content change: the fleet is reconciled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from weather_operator.api import constants
from weather_operator.handlers import fleet, runtime
from weather_operator.render import names

MANAGED = {"app.kubernetes.io/managed-by": names.MANAGED_BY}


def owner_name(body: Mapping[str, Any]) -> str | None:
    """The name of the WeatherProxy controlling ``body``, if any."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if (
            ref.get("kind") == constants.WEATHERPROXY_KIND
            and str(ref.get("apiVersion", "")).startswith(constants.GROUP + "/")
            and ref.get("controller")
        ):
            return str(ref.get("name"))
    return None


def _owner(state: runtime.State, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The owning WeatherProxy (from the index), unless it is gone: then the children go with it."""
    name = owner_name(body)
    if name is None:
        return None
    owner = state.fleet(body["metadata"]["namespace"], name)
    if owner is None:
        return None
    uids = {ref.get("uid") for ref in body["metadata"].get("ownerReferences") or []}
    return owner if owner["metadata"].get("uid") in uids else None


def changed_by_operator(body: Mapping[str, Any]) -> bool:
    """Whether the latest write to ``body`` (per managedFields, second resolution) was the operator's.

    A tie with another manager counts as foreign: the resulting reconcile is a no-op at worst.
    """
    entries = [e for e in body.get("metadata", {}).get("managedFields") or [] if e.get("time")]
    if not entries:
        return False
    latest = max(str(e["time"]) for e in entries)
    return all(e.get("manager") == constants.FIELD_MANAGER for e in entries if str(e["time"]) == latest)


def _describe(body: Mapping[str, Any]) -> str:
    return f"{body.get('kind', 'object')} {body['metadata']['name']}"


async def on_workload_event(state: runtime.State, event: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    if event.get("type") not in {"DELETED", "MODIFIED", "ADDED"}:
        return
    owner = _owner(state, body)
    if owner is None:
        return
    namespace, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
    ident = (namespace, f"{body.get('kind')}/{body['metadata']['name']}")
    generation = body["metadata"].get("generation")
    if event["type"] == "DELETED":
        state.workload_generations.pop(ident, None)
        fleet.request(state, namespace, name, trigger=f"{_describe(body)} was deleted")
        return
    seen = state.workload_generations.get(ident)
    state.workload_generations[ident] = str(generation)
    if (
        event["type"] == "MODIFIED"
        and seen is not None
        and seen != str(generation)
        and not changed_by_operator(body)
    ):
        fleet.request(state, namespace, name, trigger=f"{_describe(body)} was changed")
        return
    await fleet.refresh_status(state, owner)


async def on_config_event(state: runtime.State, event: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    if event.get("type") not in {"DELETED", "MODIFIED"}:
        return
    if event["type"] == "MODIFIED" and changed_by_operator(body):
        return
    owner = _owner(state, body)
    if owner is None:
        return
    verb = "deleted" if event["type"] == "DELETED" else "changed"
    fleet.request(
        state,
        owner["metadata"]["namespace"],
        owner["metadata"]["name"],
        trigger=f"{_describe(body)} was {verb}",
    )


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("apps", "v1", "statefulsets", labels=MANAGED)
async def workload_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    await on_workload_event(runtime.state_of(memo), event, body)


@kopf.on.event("v1", "services", labels=MANAGED)
@kopf.on.event("v1", "configmaps", labels=MANAGED)
@kopf.on.event("v1", "secrets", labels=MANAGED)
@kopf.on.event("v1", "serviceaccounts", labels=MANAGED)
@kopf.on.event("rbac.authorization.k8s.io", "v1", "roles", labels=MANAGED)
@kopf.on.event("rbac.authorization.k8s.io", "v1", "rolebindings", labels=MANAGED)
async def config_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    await on_config_event(runtime.state_of(memo), event, body)
