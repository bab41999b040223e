"""WeatherProxy reconciliation, one way through: resolve the spec, render, apply, observe, status.

Every trigger is a request in the queue (``workqueue``): the WeatherProxy's own events
(a new generation), its ApiKeys' events, its children's watch events, a key expiring,
the drift repair. A reconcile starts from the latest indexed body, so requests that
pile up while one runs cost one more reconcile, not one each:

1. **resolve** the spec once (model + preset); a spec the models reject is written as
   ``Ready=False, reason InvalidSpec`` naming the field and the rule, and nothing else is
   done until the spec changes;
2. **render** every child, the keys Secrets included (``render.fleet``, pure);
3. **apply** what changed since it was last applied (server-side apply; a child changed or
   deleted by someone else is applied again from its watch event, and the drift repair
   applies everything); delete what must not exist;
4. **observe** the Deployment and Redis from their watch events (no reads);
5. **write the status** (``status.proxy_status``, validated by ``WeatherProxyStatus``) when
   it changed; an API refusal becomes ``Degraded, reason ReconcileFailed`` and a retry
   with backoff.

No finalizers: cleanup is the garbage collector's (owner references), so deleting a
WeatherProxy never waits for the operator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import kopf
import orjson

from weather_operator import apply, discovery, events, keys, status, workqueue
from weather_operator.api import constants, effective, weatherproxy
from weather_operator.api import resolve as resolve_
from weather_operator.handlers import keysync, runtime, specs
from weather_operator.render import fleet as fleet_
from weather_operator.render import names, postgres

WP = (constants.GROUP, constants.VERSION, constants.WEATHERPROXY_PLURAL)

logger = logging.getLogger(__name__)


def resolve(state: runtime.State, body: Mapping[str, Any]) -> effective.EffectiveSpec:
    """The spec with its preset applied; raises ``specs.InvalidSpec``."""
    spec = specs.parse(weatherproxy.WeatherProxySpec, body)
    try:
        return resolve_.effective(spec, default_image=state.settings.default_image)
    except ValueError as exc:
        raise specs.InvalidSpec(f"invalid spec: {exc}") from None


def ident(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def digest(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one reconcile did (for its Events, and for tests)."""

    changed: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    status_written: bool = False
    invalid: str | None = None


async def reconcile(state: runtime.State, request: workqueue.Request, reason: str) -> Outcome:
    """The queue's reconcile of one WeatherProxy (from its latest indexed body)."""
    namespace, name = request.namespace, request.name
    body = state.fleet(namespace, name)
    if body is None:
        return Outcome()  # deleted: its children go with it (owner references)
    try:
        spec = resolve(state, body)
    except specs.InvalidSpec as exc:
        written = await write_status(state, body, None, None, invalid=str(exc))
        return Outcome(status_written=written, invalid=str(exc))
    try:
        full = (namespace, name) in state.full_apply
        changed, deleted, config_hash = await converge(state, body, spec, full=full)
        state.full_apply.discard((namespace, name))
    except apply.ApiError as exc:
        await write_status(state, body, spec, None, reconcile_error=str(exc)[:1024])
        raise
    written = await write_status(state, body, spec, config_hash)
    if changed:
        events.info(body, reason="Applied", message=f"{reason}: applied {', '.join(changed)}")
    if deleted:
        events.info(body, reason="Deleted", message=f"{reason}: deleted {', '.join(deleted)}")
    return Outcome(changed=changed, deleted=deleted, status_written=written)


DRIFT = "drift repair"


async def converge(
    state: runtime.State, body: Mapping[str, Any], spec: effective.EffectiveSpec, *, full: bool = False
) -> tuple[list[str], list[str], str]:
    """Render and apply the fleet; (changed, deleted, config hash). ``full``: apply even what is unchanged."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    available = await state.monitoring.available()
    # Whether CloudNativePG's Cluster is served decides the managed database's form, and whether a
    # Cluster left from before (analytics turned off, or External) can exist to be deleted.
    cnpg = await state.cloudnativepg.available()
    records = keysync.records_of(state, namespace, name)
    now = state.clock()
    keys_file = keys.keys_file(records, now)
    shards, previous = await keysync.layout(state, namespace, name, keys_file)
    fleet = fleet_.render_fleet(
        fleet_.FleetInputs(
            name=name,
            namespace=namespace,
            spec=spec,
            keys=keys_file,
            monitoring_available=available,
            cnpg_available=cnpg,
            key_shards=shards,
            previous_key_shards=previous,
            key_revisions=keysync.revisions_of(state, namespace, name, max(shards, previous or 0)),
            now=now,
        )
    )
    changed: list[str] = []
    # Passwords are created once, never applied: an existing one is kept (the pods and the data use it).
    if spec.redis.managed and await create_once(state, body, _redis_password(name)):
        changed.append(f"Secret/{names.redis_secret_name(name)}")
    if spec.analytics.enabled and spec.analytics.managed:
        password = postgres.render_password_secret(name, namespace, postgres.new_password())
        if await create_once(state, body, password):
            changed.append(f"Secret/{names.postgres_secret_name(name)}")
    for obj in fleet.objects:
        child = ident(obj)
        wanted = apply.adopt(obj, body)
        fingerprint = digest(wanted)
        if not full and state.applied.get((namespace, child)) == fingerprint:
            continue
        applied = await _apply_or_recreate(state, wanted, body)
        if state.applied.get((namespace, child)) != fingerprint and _changed_by_apply(
            state, namespace, applied
        ):
            changed.append(child)
        state.applied[namespace, child] = fingerprint
        state.absent.discard((namespace, child))
        if obj["kind"] in WORKLOAD_KINDS:
            state.workloads.setdefault((namespace, child), runtime.workload_view(applied))
    keysync.written(state, namespace, fleet.keys_secrets)
    deleted = await _delete_unwanted(state, body, fleet, available)
    if previous is not None and _rolled_out(
        state.workloads.get((namespace, f"Deployment/{name}")), fleet.config_hash
    ):
        # Every pod runs the new key layout: the old one's copies and Secrets can go.
        for secret in keysync.finish_resharding(state, namespace, name):
            if await state.cluster.delete(apply.SECRET, namespace, secret):
                deleted.append(f"Secret/{secret}")
            state.key_revisions.pop((namespace, secret), None)
            state.applied.pop((namespace, f"Secret/{secret}"), None)
        state.request_fleet(namespace, name, "resharding rolled out")
    delay = keysync.next_transition(records, now)
    if delay is not None:
        state.request_fleet(namespace, name, "a key expires", delay=delay)
    return changed, deleted, fleet.config_hash


WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})


async def _delete_unwanted(
    state: runtime.State, body: Mapping[str, Any], fleet: fleet_.Fleet, available: bool
) -> list[str]:
    namespace = body["metadata"]["namespace"]
    deleted: list[str] = []
    for ref in fleet.unwanted:
        child = f"{ref.kind}/{ref.name}"
        if (namespace, child) in state.absent:
            continue
        kind = apply.kind_of(ref.api_version, ref.kind)
        if kind.api_version == discovery.MONITORING_API_VERSION and not available:
            continue  # the kind is not served: nothing of it can exist
        if kind.api_version == discovery.CNPG_API_VERSION and not await state.cloudnativepg.available():
            continue
        existing = await state.cluster.get(kind, namespace, ref.name)
        if existing is not None and _owned_by(existing, body):
            await state.cluster.delete(kind, namespace, ref.name)
            deleted.append(child)
        state.applied.pop((namespace, child), None)
        state.workloads.pop((namespace, child), None)
        state.absent.add((namespace, child))
    return deleted


def _owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])


def _redis_password(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": names.redis_secret_name(name),
            "labels": names.labels(name, names.REDIS),
        },
        "stringData": {names.REDIS_PASSWORD_KEY: secrets.token_urlsafe(32)},
    }


async def create_once(state: runtime.State, body: Mapping[str, Any], secret: Mapping[str, Any]) -> bool:
    """Create a generated Secret (a password) once; an existing one is kept. True when created."""
    namespace = body["metadata"]["namespace"]
    child = f"Secret/{secret['metadata']['name']}"
    if (namespace, child) in state.applied:
        return False
    created = await state.cluster.create(apply.adopt(secret, body)) is not None
    state.applied[namespace, child] = "created once"
    state.absent.discard((namespace, child))
    return created


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


def _changed_by_apply(state: runtime.State, namespace: str, applied: Mapping[str, Any]) -> bool:
    """Whether the apply changed the child (for the Applied event), not only re-stated it.

    Objects with a controller-written status get new resourceVersions without any apply;
    for them the API server's stamp on the operator's managedFields entry is used, which
    moves only when the operator's fields changed (to the second).
    """
    metadata = applied.get("metadata", {})
    if applied.get("kind") in STATUSLESS_KINDS:
        version = metadata.get("resourceVersion")
    else:
        version = _own_fields_time(applied)
    key = (namespace, f"version:{applied.get('kind')}/{metadata.get('name')}")
    before = state.applied.get(key)
    state.applied[key] = str(version)
    return before != str(version)


def _own_fields_time(obj: Mapping[str, Any]) -> str | None:
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == constants.FIELD_MANAGER and entry.get("operation") == "Apply":
            return str(entry.get("time"))
    return None


async def _apply_or_recreate(
    state: runtime.State, obj: Mapping[str, Any], owner: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply; an object whose immutable fields changed is deleted and created anew.

    A StatefulSet (e.g. Redis persistence switched on by a new environment: Redis is a
    cache, losing it is safe) and a Service (``clusterIP``, e.g. Redis's Service becoming
    headless) cannot be changed in place.
    """
    try:
        return await state.cluster.apply(obj)
    except apply.ApiError as exc:
        if not (exc.status == 422 and obj["kind"] in RECREATED_KINDS and _immutable(exc)):
            raise
    kind = apply.kind_of(obj["apiVersion"], obj["kind"])
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    await state.cluster.delete(kind, namespace, name)
    events.warn(
        owner, reason="Recreated", message=f"{obj['kind']} {name}: an immutable field changed; re-created"
    )
    return await state.cluster.apply(obj)


RECREATED_KINDS = frozenset({"StatefulSet", "Service"})


def _immutable(exc: apply.ApiError) -> bool:
    text = str(exc)
    return "Forbidden" in text or "immutable" in text or "may not change" in text


async def observe_redis(
    state: runtime.State, namespace: str, name: str, spec: effective.EffectiveSpec
) -> status.RedisObservation:
    if spec.redis.managed:
        sts = await _workload(state, apply.STATEFULSET, namespace, names.redis_name(name))
        return status.redis_from_statefulset(sts)
    ref = spec.redis.url_secret_ref
    if ref is None:
        return status.RedisObservation(managed=False, ready=False, detail="no Redis URL Secret configured")
    secret = await state.cluster.get(apply.SECRET, namespace, ref.name)
    return status.redis_from_external_secret(secret, ref.name, ref.key)


async def observe_analytics(
    state: runtime.State, namespace: str, name: str, spec: effective.EffectiveSpec
) -> status.Observed:
    """AnalyticsReady from the managed database as last seen (its StatefulSet, or CloudNativePG's Cluster)."""
    analytics = spec.analytics
    cnpg = analytics.enabled and analytics.managed and bool(state.cloudnativepg.last_answer)
    live: dict[str, Any] | None = None
    if analytics.enabled and analytics.managed:
        if cnpg:
            live = await state.cluster.get(apply.CNPG_CLUSTER, namespace, names.cnpg_cluster_name(name))
        else:
            live = await _workload(state, apply.STATEFULSET, namespace, names.postgres_name(name))
    found = postgres.readiness(name, analytics, cnpg, live)
    return status.Observed(status.ANALYTICS_READY, found.status, found.reason, found.message)


async def observe_error_tracking(
    state: runtime.State, namespace: str, spec: effective.EffectiveSpec
) -> status.Observed:
    """ErrorTrackingConfigured from the DSN's Secret (read only when error tracking is on)."""
    tracking = spec.error_tracking
    secret = None
    if tracking.enabled and tracking.dsn_secret_ref is not None:
        secret = await state.cluster.get(apply.SECRET, namespace, tracking.dsn_secret_ref.name)
    return status.error_tracking_from_secret(tracking, secret)


async def _workload(
    state: runtime.State, kind: apply.Kind, namespace: str, name: str
) -> dict[str, Any] | None:
    """The workload as its latest watch event showed it; read once when no event came yet."""
    child = (namespace, f"{kind.kind}/{name}")
    if child in state.workloads:
        return state.workloads[child]
    if child in state.absent:
        return None
    found = await state.cluster.get(kind, namespace, name)
    if found is None:
        return None
    state.workloads[child] = runtime.workload_view(found)
    return state.workloads[child]


async def write_status(
    state: runtime.State,
    body: Mapping[str, Any],
    spec: effective.EffectiveSpec | None,
    config_hash: str | None,
    *,
    reconcile_error: str | None = None,
    invalid: str | None = None,
) -> bool:
    """Observe the children, compute the status, and patch it only when it changed."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    previous = state.previous_status(constants.WEATHERPROXY_KIND, body)
    now = state.clock()
    if spec is None:
        desired = status.invalid_proxy_status(
            body["metadata"].get("generation"), invalid or "invalid spec", previous, now
        )
    else:
        monitoring_wanted = spec.monitoring.service_monitor.enabled or spec.monitoring.alerts.enabled
        available = state.monitoring.last_answer
        observation = status.ProxyObservation(
            name=name,
            namespace=namespace,
            generation=body["metadata"].get("generation"),
            spec=spec,
            deployment=await _workload(state, apply.DEPLOYMENT, namespace, names.deployment_name(name)),
            redis=await observe_redis(state, namespace, name, spec),
            monitoring=status.MonitoringObservation(wanted=monitoring_wanted, available=bool(available)),
            api_keys=len(state.keys_of(namespace, name)),
            config_hash=config_hash if config_hash is not None else previous.get("configHash"),
            selector=names.selector_string(name),
            reconcile_error=reconcile_error,
            analytics=await observe_analytics(state, namespace, name, spec),
            error_tracking=await observe_error_tracking(state, namespace, spec),
        )
        desired = status.proxy_status(observation, previous, now)
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
        elif condition["type"] == status.READY and condition["reason"] == specs.REASON:
            events.warn(body, reason=specs.REASON, message=condition["message"])
        elif condition["type"] == status.DEGRADED and condition["status"] == status.TRUE:
            events.warn(body, reason=condition["reason"], message=condition["message"])
        elif condition["type"] == status.REDIS_READY and condition["reason"] == "ExternalSecretNotFound":
            events.warn(body, reason="RedisSecretNotFound", message=condition["message"])
        elif (
            condition["type"] == status.ERROR_TRACKING_CONFIGURED and condition["reason"] == "SecretNotFound"
        ):
            events.warn(body, reason="ErrorTrackingSecretNotFound", message=condition["message"])
        elif condition["type"] == status.ANALYTICS_READY and condition["reason"] == "DatabaseReady":
            events.info(body, reason="AnalyticsReady", message=condition["message"])
        elif (
            condition["type"] == status.ANALYTICS_READY
            and before is not None
            and condition["status"] == status.FALSE
        ):
            events.warn(body, reason="AnalyticsNotReady", message=condition["message"])


def monitoring_outdated(current: Mapping[str, Any], available: bool) -> bool:
    """Whether a fleet status's MonitoringConfigured condition contradicts the CRDs' presence now."""
    condition = status.find(current.get("conditions"), status.MONITORING_CONFIGURED)
    reason = condition.get("reason") if condition else None
    return (available and reason == "CRDsNotInstalled") or (not available and reason == "Configured")


def _rolled_out(deployment: Mapping[str, Any] | None, config_hash: str) -> bool:
    """Whether every replica of the Deployment runs the pod template of ``config_hash`` and is available."""
    if deployment is None:
        return False
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


# --- Kopf handlers: they only enqueue -------------------------------------------------------------------


@kopf.index(*WP)
async def weatherproxies_by_name(
    body: kopf.Body, namespace: str | None, name: str | None, memo: Any, **_: Any
) -> Any:
    """(namespace, name) -> a snapshot of the WeatherProxy: what the reconciles start from."""
    runtime.started_state(memo)
    if namespace is None or name is None:
        return {}
    return {(namespace, name): runtime.snapshot(body)}


@kopf.on.event(*WP)
async def weatherproxy_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    """A new generation (or the operator seeing the fleet for the first time) is a reconcile."""
    state = runtime.state_of(memo)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if event.get("type") == "DELETED":
        state.forget_fleet(namespace, name)
        _recheck_keys(state, namespace, name, "its WeatherProxy was deleted")
        return
    key = (runtime.WEATHERPROXY, namespace, name)
    generation = body["metadata"].get("generation")
    if key in state.generations and state.generations[key] == generation:
        return  # a status write or a metadata change: nothing to render differs
    first = key not in state.generations
    state.generations[key] = generation
    state.request_fleet(namespace, name, "created or resumed" if first else f"generation {generation}")
    if first:
        _recheck_keys(state, namespace, name, "its WeatherProxy appeared")


def _recheck_keys(state: runtime.State, namespace: str, proxy: str, reason: str) -> None:
    """The fleet appeared or went away: its ApiKeys' Ready condition says whether it exists."""
    for item in state.keys_of(namespace, proxy):
        state.request_key(namespace, item.body["metadata"]["name"], reason)
