"""Kopf adapters of the WeatherProxies: their index, and their events as reconcile requests.

The reconcile itself is ``controller.fleets``. An event whose ``metadata.generation`` did
not move (a status write, a metadata change) requests nothing: nothing to render differs,
unless it carries a rollout's promote or abort annotation (``controller.rollout``).
"""

from __future__ import annotations

from typing import Any

import kopf

from weather_operator.api import constants
from weather_operator.controller import indexes, rollout, runtime

WP = (constants.GROUP, constants.VERSION, constants.WEATHERPROXY_PLURAL)


@kopf.index(*WP)
async def weatherproxies_by_name(
    body: kopf.Body, namespace: str | None, name: str | None, memo: Any, **_: Any
) -> Any:
    """(namespace, name) -> a snapshot of the WeatherProxy: what the reconciles start from."""
    runtime.started(memo)
    if namespace is None or name is None:
        return {}
    return {(namespace, name): indexes.snapshot(body)}


@kopf.on.event(*WP)
async def weatherproxy_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A new generation (or the operator seeing the fleet for the first time) is a reconcile."""
    controller = runtime.of(memo)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if event.get("type") == "DELETED":
        gone = controller.memory.fleets.pop((namespace, name), None)
        if gone is not None:
            await gone.rollout.close()  # a blue/green analysis's smoke requests stop with it
        controller.requests.forget_fleet(namespace, name)
        _recheck_keys(controller, namespace, name, "its WeatherProxy was deleted")
        return
    record = controller.memory.fleet(namespace, name)
    generation = body["metadata"].get("generation")
    if record.seen and record.generation == generation:
        annotations = body["metadata"].get("annotations") or {}
        if any(annotations.get(key) == "true" for key in rollout.ANNOTATIONS):
            # A rollout's promote or abort annotation (removed once acted on): docs/rollouts.md.
            controller.requests.fleet(namespace, name, "a rollout annotation")
        return  # a status write or a metadata change: nothing to render differs
    first = not record.seen
    record.seen, record.generation = True, generation
    controller.requests.fleet(namespace, name, "created or resumed" if first else f"generation {generation}")
    if first:
        _recheck_keys(controller, namespace, name, "its WeatherProxy appeared")


def _recheck_keys(controller: runtime.Controller, namespace: str, proxy: str, reason: str) -> None:
    """The fleet appeared or went away: its ApiKeys' Ready condition says whether it exists."""
    for item in controller.indexes.keys_of(namespace, proxy):
        controller.requests.apikey(namespace, item.body["metadata"]["name"], reason)
