"""Kopf adapters of the ApiKeys: their index (hashes, never a plaintext), their events as requests.

The reconcile itself is ``controller.apikeys``. An event requests the ApiKey's reconcile
for a new generation (the operator's own annotation and status writes do not move it),
and its fleet's when the ApiKey's index record (hash, limits, expiry, fleet) changed.
"""

from __future__ import annotations

from typing import Any

import kopf

from weather_operator import keys
from weather_operator.api import constants
from weather_operator.controller import indexes, runtime

AK = (constants.GROUP, constants.VERSION, constants.APIKEY_PLURAL)


@kopf.index(*AK)
async def apikeys_by_proxy(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> Any:
    """(namespace, proxy) -> hashes, limits, expiry and a snapshot of the ApiKey; never a plaintext."""
    runtime.started(memo)
    record = keys.record_from_body(body)
    if record is None or namespace is None:
        return {}
    return {(namespace, record.proxy): indexes.IndexedKey(record=record, body=indexes.snapshot(body))}


@kopf.on.event(*AK)
async def apikey_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    """Requests: the ApiKey's reconcile for a new generation; its fleet's when its index record changed."""
    controller = runtime.of(memo)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if event.get("type") == "DELETED":
        gone = controller.memory.apikeys.pop((namespace, name), None)
        controller.requests.forget_apikey(namespace, name)
        if gone is not None and gone.owner is not None:
            proxy = gone.owner[0]
            controller.requests.fleet(namespace, proxy, f"ApiKey {name} was deleted")
            controller.tasks.spawn(
                controller.apikeys.erase_history(namespace, name, body["metadata"]["uid"], proxy),
                f"history erasure of ApiKey {name}",
            )
        return
    record = controller.memory.apikey(namespace, name)
    before = record.owner
    index_record = keys.record_from_body(body)
    proxy = ((body.get("spec") or {}).get("proxyRef") or {}).get("name") or ""
    record.owner = (proxy, index_record)
    if index_record is None or controller.indexes.api_key(namespace, proxy, name) is None:
        record.unindexed = indexes.snapshot(body)  # the index cannot (or does not yet) hold it
    else:
        record.unindexed = None
    if before != record.owner:
        for fleet in sorted({p for p in (proxy, before[0] if before else None) if p}):
            controller.requests.fleet(namespace, fleet, f"ApiKey {name} changed")
    generation = body["metadata"].get("generation")
    if not record.seen or record.generation != generation:
        record.seen, record.generation = True, generation
        controller.requests.apikey(
            namespace, name, "created or resumed" if before is None else f"generation {generation}"
        )
