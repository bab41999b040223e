"""Watching the fleets' children: readiness into status, deleted children restored at once.

Only objects labelled ``app.kubernetes.io/managed-by: weather-operator`` and owned by a
WeatherProxy count. The operator's own writes do not trigger a reconcile here: a
modified child only refreshes the owner's status (written only when it changed); only
a deleted child triggers a full reconcile, which recreates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from weather_operator import apply
from weather_operator.api import constants
from weather_operator.handlers import fleet, runtime
from weather_operator.render import names

MANAGED = {"app.kubernetes.io/managed-by": names.MANAGED_BY}


def owner_name(body: Mapping[str, Any]) -> str | None:
    """The name of the WeatherProxy controlling ``body``, if any."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == constants.WEATHERPROXY_KIND and str(ref.get("apiVersion", "")).startswith(
            constants.GROUP + "/"
        ):
            return str(ref.get("name"))
    return None


async def _owner(state: runtime.State, body: Mapping[str, Any]) -> dict[str, Any] | None:
    name = owner_name(body)
    if name is None:
        return None
    owner = await state.cluster.get(apply.WEATHERPROXY, body["metadata"]["namespace"], name)
    if owner is None or owner["metadata"].get("deletionTimestamp"):
        return None  # the fleet is going away: its children go with it
    return owner


async def on_child_event(
    state: runtime.State, event: Mapping[str, Any], body: Mapping[str, Any], index: Any
) -> None:
    if event.get("type") not in {"DELETED", "MODIFIED"}:
        return
    owner = await _owner(state, body)
    if owner is None:
        return
    if event["type"] == "DELETED":
        outcome = await fleet.reconcile(state, owner, index)
        kind, name = body.get("kind", "object"), body["metadata"]["name"]
        fleet.report(owner, outcome, trigger=f"{kind} {name} was deleted")
        return
    async with state.fleet_locks[owner["metadata"]["namespace"], owner["metadata"]["name"]]:
        available = state.monitoring.last_answer
        if available is None:
            available = await state.monitoring.available()
        rendered = await fleet.render(state, owner, index, available)
        spec = rendered.effective or fleet.parse_spec(owner).effective(
            default_image=state.settings.default_image
        )
        await fleet.write_status(state, owner, spec, rendered.config_hash, index, available)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("apps", "v1", "statefulsets", labels=MANAGED)
async def workload_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    await on_child_event(runtime.state_of(memo), event, body, kwargs[fleet.INDEX])


@kopf.on.event("v1", "services", labels=MANAGED)
@kopf.on.event("v1", "configmaps", labels=MANAGED)
@kopf.on.event("v1", "secrets", labels=MANAGED)
async def config_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    if event.get("type") == "DELETED":
        await on_child_event(runtime.state_of(memo), event, body, kwargs[fleet.INDEX])
