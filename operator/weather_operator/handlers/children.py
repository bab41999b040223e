"""Kopf adapters of the fleets' children: readiness into status, deleted or edited children restored at once.

Only objects labelled ``app.kubernetes.io/managed-by: weather-operator`` are streamed: the
API server filters them (``handlers.startup`` sets Kopf's label selectors), so the
cluster's other Secrets, ConfigMaps and Deployments never reach the operator. Only those
controlled by a WeatherProxy count. Every event updates the owner's memory of its children
(``controller.children.ChildMemory``) and is a request for the owner's reconcile, which is a
no-op when nothing differs from what it last applied:

* Deleted child: it is forgotten as applied, so the reconcile re-creates it.
* Deployment/StatefulSet: its body is kept (the status is observed from it, without a
  read). A new ``metadata.generation`` written by someone other than the operator is a
  spec change: the child is re-applied. A status change refreshes the owner's status.
* ConfigMap/Secret/Service, and the proxy pods' ServiceAccount, Role and RoleBinding: they
  have no status, every change by someone else is a content change: the child is re-applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from weather_operator.api import constants
from weather_operator.controller import children, runtime
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


def _owner(controller: runtime.Controller, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The owning WeatherProxy (from the index), unless it is gone: then the children go with it."""
    name = owner_name(body)
    if name is None:
        return None
    owner = controller.indexes.fleet(body["metadata"]["namespace"], name)
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


def _forget(controller: runtime.Controller, body: Mapping[str, Any], *, workload: bool = False) -> None:
    """The child changed or went away behind the operator's back: its owner's next reconcile writes it.

    Whatever the owner's uid: a fleet of the same name may come back.
    """
    name = owner_name(body)
    record = controller.memory.fleets.get((body["metadata"]["namespace"], name)) if name else None
    if record is None:
        return
    child = children.ident(body)
    record.children.forget(child)
    if workload:
        record.children.workloads.pop(child, None)


def on_workload_event(
    controller: runtime.Controller, event: Mapping[str, Any], body: Mapping[str, Any]
) -> None:
    if event.get("type") == "DELETED":
        _forget(controller, body, workload=True)
    owner = _owner(controller, body)
    if owner is None:
        return
    namespace, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
    if event.get("type") == "DELETED":
        controller.requests.fleet(namespace, name, f"{_describe(body)} was deleted")
        return
    memory = controller.memory.fleet(namespace, name).children
    child = children.ident(body)
    seen = memory.workloads.get(child)
    memory.workloads[child] = children.workload_view(body)
    generation = body["metadata"].get("generation")
    if (
        seen is not None
        and seen["metadata"].get("generation") != generation
        and not changed_by_operator(body)
    ):
        memory.forget(child)
        controller.requests.fleet(namespace, name, f"{_describe(body)} was changed")
    elif seen is None or seen.get("status") != body.get("status"):
        controller.requests.fleet(namespace, name, f"status of {_describe(body)}")


def on_config_event(
    controller: runtime.Controller, event: Mapping[str, Any], body: Mapping[str, Any]
) -> None:
    if event.get("type") not in {"DELETED", "MODIFIED"}:
        return
    if event["type"] == "MODIFIED" and changed_by_operator(body):
        return
    _forget(controller, body)
    owner = _owner(controller, body)
    if owner is None:
        return
    namespace, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
    verb = "deleted" if event["type"] == "DELETED" else "changed"
    controller.requests.fleet(namespace, name, f"{_describe(body)} was {verb}")


# The API server filters these watches by label (handlers.startup.watch_only_managed): the fleets'
# children only. The ApiKeys' own Secrets (a plaintext key each, owned by their ApiKey) never reach
# the operator's watches: it reads one only when it reconciles its ApiKey.
_MANAGED_SELECTOR = ",".join(f"{key}={value}" for key, value in MANAGED.items())
CHILD_SELECTORS = {
    ("apps", "v1", "deployments"): _MANAGED_SELECTOR,
    ("apps", "v1", "statefulsets"): _MANAGED_SELECTOR,
    ("", "v1", "services"): _MANAGED_SELECTOR,
    ("", "v1", "configmaps"): _MANAGED_SELECTOR,
    ("", "v1", "secrets"): f"{_MANAGED_SELECTOR},app.kubernetes.io/component!={names.API_KEY}",
    ("", "v1", "serviceaccounts"): _MANAGED_SELECTOR,
    ("rbac.authorization.k8s.io", "v1", "roles"): _MANAGED_SELECTOR,
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): _MANAGED_SELECTOR,
    ("networking.k8s.io", "v1", "networkpolicies"): _MANAGED_SELECTOR,
}


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("apps", "v1", "statefulsets", labels=MANAGED)
async def workload_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    on_workload_event(runtime.of(memo), event, body)


@kopf.on.event("v1", "services", labels=MANAGED)
@kopf.on.event("v1", "configmaps", labels=MANAGED)
@kopf.on.event("v1", "secrets", labels=MANAGED)
@kopf.on.event("v1", "serviceaccounts", labels=MANAGED)
@kopf.on.event("rbac.authorization.k8s.io", "v1", "roles", labels=MANAGED)
@kopf.on.event("rbac.authorization.k8s.io", "v1", "rolebindings", labels=MANAGED)
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED)
async def config_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    on_config_event(runtime.of(memo), event, body)
