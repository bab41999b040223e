"""WeatherProxy reconciliation: render the fleet, apply it, delete what must not exist, report status.

One ``reconcile`` serves every trigger: create/resume/update of the WeatherProxy, the
periodic drift repair and monitoring re-check (``handlers.periodic``), and the change or
deletion of a child (``handlers.children``). Server-side apply of an unchanged object is
a no-op on the API server (no new resourceVersion, no watch event), so re-applies do not
feed back into themselves.

No timers or daemons on WeatherProxy: Kopf would put a finalizer on every fleet for
them, and a finalizer blocks deletion while the operator is down. Nothing here needs
cleanup beyond owner references, so the WeatherProxy never gets a finalizer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Mapping
from typing import Any

import kopf

from weather_operator import apply, discovery, events, status
from weather_operator.api import constants, effective, weatherproxy
from weather_operator.handlers import apikeys, keysync, runtime, specs
from weather_operator.render import fleet as fleet_
from weather_operator.render import names

WP = (constants.GROUP, constants.VERSION, constants.WEATHERPROXY_PLURAL)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one reconcile did, for events."""

    changed: list[str]
    deleted: list[str]
    monitoring_available: bool


def _name(body: Mapping[str, Any]) -> tuple[str, str]:
    return body["metadata"]["namespace"], body["metadata"]["name"]


def parse_spec(body: Mapping[str, Any]) -> weatherproxy.WeatherProxySpec:
    """The spec model; an invalid spec is a permanent error (the user must fix it)."""
    return specs.parse(weatherproxy.WeatherProxySpec, body)


def render(state: runtime.State, body: Mapping[str, Any], available: bool) -> fleet_.Fleet:
    namespace, name = _name(body)
    shards, previous = state.key_layouts.get((namespace, name), (1, None))
    return fleet_.render_fleet(
        fleet_.FleetInputs(
            name=name,
            namespace=namespace,
            spec=parse_spec(body),
            keys=keysync.keys_file_of(state, namespace, name),
            default_image=state.settings.default_image,
            monitoring_available=available,
            key_shards=shards,
            previous_key_shards=previous,
        )
    )


def _owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])


async def ensure_redis_password(state: runtime.State, body: Mapping[str, Any]) -> bool:
    """Create the managed Redis password Secret once; an existing one is kept. True when created."""
    name = body["metadata"]["name"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": names.redis_secret_name(name),
            "labels": names.labels(name, names.REDIS),
        },
        "stringData": {names.REDIS_PASSWORD_KEY: secrets.token_urlsafe(32)},
    }
    return await state.cluster.create(apply.adopt(secret, body)) is not None


async def reconcile(state: runtime.State, body: Mapping[str, Any]) -> Outcome:
    """Bring the fleet of ``body`` to its desired state and write the status if it changed."""
    namespace, name = _name(body)
    async with state.fleet_locks[namespace, name]:
        parse_spec(body)  # an invalid spec stops here, before anything is written
        available = await state.monitoring.available()
        changed: list[str] = []
        # The keys Secrets first (their layout decides the config, Role and volumes rendered below),
        # written by keysync under its lock from the freshest index; always re-applied: repairs hand edits.
        state.applied_keys.pop((namespace, name), None)
        for applied_keys in await keysync.sync_keys(state, namespace, name, owner=body):
            _track(state, namespace, applied_keys, changed)
        fleet = render(state, body, available)
        spec = fleet.effective or parse_spec(body).effective(default_image=state.settings.default_image)
        if spec.redis.managed and await ensure_redis_password(state, body):
            changed.append(f"Secret/{names.redis_secret_name(name)}")
        shards, previous = state.key_layouts.get((namespace, name), (1, None))
        keys_names = set(names.keys_secret_names(name, max(shards, previous or 0)))
        for obj in fleet.objects:
            if obj["kind"] == "Secret" and obj["metadata"]["name"] in keys_names:
                continue  # written by keysync above
            applied = await _apply_or_recreate(state, apply.adopt(obj, body), body)
            _track(state, namespace, applied, changed)
            rolled_out = obj["kind"] == "Deployment" and _rolled_out(applied, fleet.config_hash)
            # Every pod runs the new key layout: the old one's copies and Secrets can go.
            if (
                rolled_out
                and previous is not None
                and await keysync.finish_resharding(state, namespace, name, body)
            ):
                request(state, namespace, name, "resharding rolled out")
        deleted: list[str] = []
        for ref in fleet.unwanted:
            kind = apply.kind_of(ref.api_version, ref.kind)
            if kind.api_version == discovery.MONITORING_API_VERSION and not available:
                continue  # the kind is not served: nothing of it can exist
            existing = await state.cluster.get(kind, namespace, ref.name)
            if existing is not None and _owned_by(existing, body):
                await state.cluster.delete(kind, namespace, ref.name)
                deleted.append(f"{ref.kind}/{ref.name}")
        await write_status(state, body, spec, fleet.config_hash, available)
        return Outcome(changed=changed, deleted=deleted, monitoring_available=available)


async def _apply_or_recreate(
    state: runtime.State, obj: Mapping[str, Any], owner: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply; a StatefulSet whose immutable fields changed (e.g. Redis persistence switched on
    by a new environment) is deleted and created anew. Redis is a cache: losing it is safe."""
    try:
        return await state.cluster.apply(obj)
    except apply.ApiError as exc:
        if not (exc.status == 422 and obj["kind"] == "StatefulSet" and "Forbidden" in str(exc)):
            raise
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    await state.cluster.delete(apply.STATEFULSET, namespace, name)
    events.warn(
        owner, reason="Recreated", message=f"StatefulSet {name}: an immutable field changed; re-created"
    )
    return await state.cluster.apply(obj)


async def refresh_status(
    state: runtime.State, body: Mapping[str, Any], reconcile_error: str | None = None
) -> bool:
    """Re-observe the children and write the status if it changed (no apply).

    ``reconcile_error``: the last reconcile failed with it; the status says so (Degraded,
    ReconcileFailed) until a reconcile succeeds.
    """
    async with state.fleet_locks[_name(body)]:
        available = state.monitoring.last_answer
        if available is None:
            available = await state.monitoring.available()
        fleet = render(state, body, available)
        spec = fleet.effective or parse_spec(body).effective(default_image=state.settings.default_image)
        return await write_status(state, body, spec, fleet.config_hash, available, reconcile_error)


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
    }
)


def _track(state: runtime.State, namespace: str, applied: Mapping[str, Any], changed: list[str]) -> None:
    """Note a child as changed when the apply changed it.

    Objects with a controller-written status get new resourceVersions without any apply;
    for them the API server's stamp on the operator's managedFields entry is used, which
    moves only when the operator's fields changed (to the second).
    """
    metadata = applied.get("metadata", {})
    ident = f"{applied.get('kind')}/{metadata.get('name')}"
    if applied.get("kind") in STATUSLESS_KINDS:
        version = metadata.get("resourceVersion")
    else:
        version = _own_fields_time(applied)
    key = (namespace, ident)
    if key not in state.child_versions or state.child_versions[key] != version:
        changed.append(ident)
        state.child_versions[namespace, ident] = version


def _own_fields_time(obj: Mapping[str, Any]) -> str | None:
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == constants.FIELD_MANAGER and entry.get("operation") == "Apply":
            return str(entry.get("time"))
    return None


async def observe_redis(
    state: runtime.State, namespace: str, name: str, spec: effective.EffectiveSpec
) -> status.RedisObservation:
    if spec.redis.managed:
        sts = await state.cluster.get(apply.STATEFULSET, namespace, names.redis_name(name))
        return status.redis_from_statefulset(sts)
    ref = spec.redis.url_secret_ref
    if ref is None:
        return status.RedisObservation(managed=False, ready=False, detail="no Redis URL Secret configured")
    secret = await state.cluster.get(apply.SECRET, namespace, ref.name)
    return status.redis_from_external_secret(secret, ref.name, ref.key)


async def write_status(
    state: runtime.State,
    body: Mapping[str, Any],
    spec: effective.EffectiveSpec,
    config_hash: str | None,
    available: bool,
    reconcile_error: str | None = None,
) -> bool:
    """Observe the children, compute the status, and patch it only when it changed."""
    namespace, name = _name(body)
    monitoring_wanted = spec.monitoring.service_monitor.enabled or spec.monitoring.alerts.enabled
    observation = status.ProxyObservation(
        name=name,
        namespace=namespace,
        generation=body["metadata"].get("generation"),
        spec=spec,
        deployment=await state.cluster.get(apply.DEPLOYMENT, namespace, names.deployment_name(name)),
        redis=await observe_redis(state, namespace, name, spec),
        monitoring=status.MonitoringObservation(wanted=monitoring_wanted, available=available),
        api_keys=len(state.keys_of(namespace, name)),
        config_hash=config_hash,
        selector=names.selector_string(name),
        reconcile_error=reconcile_error,
    )
    previous = state.previous_status(constants.WEATHERPROXY_KIND, body)
    desired = status.proxy_status(observation, previous, state.clock())
    if not status.changed(previous, desired):
        return False
    _announce_transitions(body, previous, desired)
    await state.cluster.patch_status(apply.WEATHERPROXY, namespace, name, desired)
    state.remember_status(constants.WEATHERPROXY_KIND, body, desired)
    return True


def _announce_transitions(
    body: Mapping[str, Any], previous: Mapping[str, Any], desired: Mapping[str, Any]
) -> None:
    """One Event per condition transition worth a human's attention (not one per reconcile)."""
    for condition in desired.get("conditions") or []:
        before = status.find(previous.get("conditions"), condition["type"])
        if before is not None and before.get("reason") == condition["reason"]:
            continue
        if condition["type"] == status.MONITORING_CONFIGURED and condition["reason"] == "CRDsNotInstalled":
            events.warn(body, reason="MonitoringSkipped", message=condition["message"])
        elif condition["type"] == status.READY and condition["status"] == status.TRUE:
            events.info(body, reason="Ready", message=condition["message"])
        elif condition["type"] == status.DEGRADED and condition["status"] == status.TRUE:
            events.warn(body, reason=condition["reason"], message=condition["message"])
        elif condition["type"] == status.REDIS_READY and condition["reason"] == "ExternalSecretNotFound":
            events.warn(body, reason="RedisSecretNotFound", message=condition["message"])


def report(body: Mapping[str, Any], outcome: Outcome, *, trigger: str) -> None:
    if outcome.changed:
        events.info(body, reason="Applied", message=f"{trigger}: applied {', '.join(outcome.changed)}")
    if outcome.deleted:
        events.info(body, reason="Deleted", message=f"{trigger}: deleted {', '.join(outcome.deleted)}")


def monitoring_outdated(current: Mapping[str, Any], available: bool) -> bool:
    """Whether a fleet status's MonitoringConfigured condition contradicts the CRDs' presence now."""
    condition = status.find(current.get("conditions"), status.MONITORING_CONFIGURED)
    reason = condition.get("reason") if condition else None
    return (available and reason == "CRDsNotInstalled") or (not available and reason == "Configured")


def _rolled_out(deployment: Mapping[str, Any], config_hash: str) -> bool:
    """Whether every replica of the Deployment runs the pod template of ``config_hash`` and is available."""
    template = deployment.get("spec", {}).get("template", {}).get("metadata", {})
    if (template.get("annotations") or {}).get(constants.CONFIG_HASH_ANNOTATION) != config_hash:
        return False
    st = deployment.get("status") or {}
    if int(st.get("observedGeneration") or 0) < int(deployment.get("metadata", {}).get("generation") or 0):
        return False
    updated = int(st.get("updatedReplicas") or 0)
    return (
        updated >= 1
        and int(st.get("replicas") or 0) == updated
        and int(st.get("availableReplicas") or 0) >= updated
    )


def key_layout_changed(state: runtime.State, namespace: str, name: str) -> None:
    """The fleet's keys need another number of Secrets: reconcile it, so its pods roll to the new layout."""
    request(state, namespace, name, "keys resharded")


def keys_changed(state: runtime.State, namespace: str, name: str) -> None:
    """The fleet's keys Secret was rewritten from an ApiKey event: refresh ``status.apiKeys``."""
    body = state.fleet(namespace, name)
    if body is not None:
        state.spawn(refresh_status(state, body), f"status of {namespace}/{name}")


# --- reconciles requested by watch events of children and by the periodic loop -------------------------


def request(state: runtime.State, namespace: str, name: str, trigger: str) -> None:
    """Reconcile the fleet soon, from its latest indexed body; requests made meanwhile coalesce."""
    key = (namespace, name)
    first = key not in state.requested
    state.requested.add(key)
    state.requested_triggers.setdefault(key, trigger)
    if first:
        state.spawn(_work_off(state, key), f"reconcile of {namespace}/{name}")


async def _work_off(state: runtime.State, key: tuple[str, str]) -> None:
    try:
        body = state.fleet(*key)
        trigger = state.requested_triggers.pop(key, "requested")
        state.requested.discard(key)
        if body is not None:
            report(body, await reconcile(state, body), trigger=trigger)
    finally:
        state.requested.discard(key)


# --- Kopf handlers -------------------------------------------------------------------------------------


@kopf.index(*WP)
async def weatherproxies_by_name(
    body: kopf.Body, namespace: str | None, name: str | None, memo: Any, **_: Any
) -> Any:
    """(namespace, name) -> a snapshot of the WeatherProxy: what the periodic loop and watchers use."""
    runtime.started_state(memo)
    if namespace is None or name is None:
        return {}
    return {(namespace, name): runtime.snapshot(body)}


@kopf.on.resume(*WP)
@kopf.on.create(*WP)
@kopf.on.update(*WP)
async def weatherproxy_changed(body: kopf.Body, memo: Any, reason: str, **_: Any) -> None:
    state = runtime.state_of(memo)
    try:
        outcome = await reconcile(state, body)
    except apply.ApiError as exc:
        with contextlib.suppress(apply.ApiError):  # the API server may refuse the status too
            await refresh_status(state, body, reconcile_error=str(exc)[:1024])
        # Kopf's default retry is a minute away; most refusals (conflicts, a namespace being set up,
        # an overloaded API server) pass sooner.
        raise kopf.TemporaryError(str(exc), delay=state.settings.retry_delay_seconds) from exc
    report(body, outcome, trigger=str(reason))
    if reason in {"create", "resume"}:
        namespace, name = _name(body)
        apikeys.recheck_fleet_keys(state, namespace, name)


@kopf.on.event(*WP)
def weatherproxy_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    if event.get("type") == "DELETED":
        state = runtime.state_of(memo)
        namespace, name = _name(body)
        state.forget(namespace, name)
        apikeys.recheck_fleet_keys(state, namespace, name)
