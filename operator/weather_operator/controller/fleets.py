"""WeatherProxy reconciliation, one way through: plan, apply, observe, status, write the status.

Every trigger is a request in the queue (``workqueue``): the WeatherProxy's own events
(a new generation), its ApiKeys' events, its children's watch events, a key expiring,
the drift repair. A reconcile starts from the latest indexed body, so requests that
pile up while one runs cost one more reconcile, not one each:

1. **plan**: resolve the spec (model + preset; a spec the models reject is written as
   ``Ready=False, reason InvalidSpec`` naming the field and the rule, and nothing else is
   done until the spec changes), gather the render's inputs (discovery, the keys and their
   layout) and render every child, the keys Secrets included (``render.fleet``, pure);
2. **apply** what changed since it was last applied (``children``; a child changed or
   deleted by someone else is applied again from its watch event, and the drift repair
   applies everything), create the generated passwords once, delete what must not exist;
3. **observe** the Deployment and Redis from their watch events (no reads), the database,
   the Secrets the spec names, and the pods of a child that is not ready (``pods``: read by
   the child's selector then, and again after a while until it is ready);
4. **status** (``status.proxy_status``, pure, validated by ``WeatherProxyStatus``);
5. **write** it when it differs from the one last written; an API refusal in 1-2 becomes
   ``Degraded, reason ReconcileFailed`` and a retry with backoff.

No finalizers: cleanup is the garbage collector's (owner references), so deleting a
WeatherProxy never waits for the operator.
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from weather_operator import apply, events, keys, podstate, settings, status
from weather_operator.api import effective
from weather_operator.controller import (
    certificates,
    children,
    connection,
    indexes,
    keysync,
    memory,
    pods,
    requests,
    rollout,
    specs,
    workqueue,
)
from weather_operator.render import fleet as fleet_
from weather_operator.render import names, postgres, redis
from weather_proxy import config

DRIFT = "drift repair"


def new_password() -> str:
    """A password for a generated Secret (only ever created once: see ``Children.create_once``)."""
    return secrets.token_urlsafe(32)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one reconcile did (for its Events, and for tests)."""

    changed: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    status_written: bool = False
    invalid: str | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """The rendered fleet and what it was rendered from."""

    fleet: fleet_.Fleet
    key_records: list[keys.KeyRecord]
    monitoring_available: bool
    resharding: bool  # a previous keys layout is still being read by pods
    now: datetime.datetime
    tls: certificates.TlsState
    rollout: rollout.Step | None = None  # spec.strategy BlueGreen, or a switch away from it


class FleetReconciler:
    """Reconciles one WeatherProxy per call (``reconcile``: the queue's entry point)."""

    def __init__(
        self,
        *,
        settings_: settings.OperatorSettings,
        connection_: connection.Connection,
        indexes_: indexes.Indexes,
        memory_: memory.Memory,
        requests_: requests.Requests,
        children_: children.Children,
        clock: Callable[[], datetime.datetime],
        analysis_factory: rollout.AnalysisFactory = rollout.default_analysis,
    ) -> None:
        self.settings = settings_
        self.connection = connection_
        self.indexes = indexes_
        self.memory = memory_
        self.requests = requests_
        self.children = children_
        self.clock = clock
        self.certificates = certificates.Certificates(connection_)
        self.rollouts = rollout.Rollouts(connection_, children_, analysis_factory)

    async def reconcile(self, request: workqueue.Request, reason: str) -> Outcome:
        """The queue's reconcile of one WeatherProxy (from its latest indexed body)."""
        namespace, name = request.namespace, request.name
        body = self.indexes.fleet(namespace, name)
        if body is None:
            return Outcome()  # deleted: its children go with it (owner references)
        record = self.memory.fleet(namespace, name)
        try:
            spec = specs.fleet_spec(body, self.settings.default_image)
        except specs.InvalidSpec as exc:
            previous = record.status.previous(body)
            desired = status.invalid_proxy_status(
                body["metadata"].get("generation"), str(exc), previous, self.clock()
            )
            written = await self._write_status(body, record, previous, desired)
            return Outcome(status_written=written, invalid=str(exc))
        try:
            plan = await self.plan(body, spec, record)
            changed, deleted = await self.apply(body, spec, plan, record)
        except apply.ApiError as exc:
            await self._observe_and_write(body, spec, record, None, reconcile_error=str(exc)[:1024])
            raise
        self._schedule(namespace, name, plan)
        written = await self._observe_and_write(
            body, spec, record, plan.fleet.config_hash, rollout_step=plan.rollout
        )
        if plan.rollout is not None:
            await self.rollouts.after(body, plan.rollout, reason)
        if changed:
            events.info(body, reason="Applied", message=f"{reason}: applied {', '.join(changed)}")
        if deleted:
            events.info(body, reason="Deleted", message=f"{reason}: deleted {', '.join(deleted)}")
        if plan.tls.issued:
            issued = ", ".join(plan.tls.issued)
            events.info(body, reason="CertificateIssued", message=f"{reason}: issued {issued}")
        return Outcome(changed=changed, deleted=deleted, status_written=written)

    # --- 1. plan --------------------------------------------------------------------------------------

    async def plan(
        self, body: Mapping[str, Any], spec: effective.EffectiveSpec, record: memory.FleetMemory
    ) -> Plan:
        """The render's inputs (discovery answers, the keys and their layout), then the render."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        available = await self.connection.monitoring.available()
        # Whether CloudNativePG's Cluster is served decides the managed database's form, and whether a
        # Cluster left from before (analytics turned off, or External) can exist to be deleted.
        cnpg = await self.connection.cloudnativepg.available()
        records = [item.record for item in self.indexes.keys_of(namespace, name)]
        now = self.clock()
        extra: tuple[config.KeyEntry, ...] = ()
        smoke: str | None = None
        if spec.strategy.blue_green_enabled:
            # The analysis's own key (docs/rollouts.md): its Secret created once, its hash in keys.yaml.
            smoke = await keysync.smoke_key(self.connection.api, body, record.keys)
            extra = (keys.smoke_entry(namespace, name, smoke),)
        keys_file = keys.keys_file(records, now, extra)
        shards, previous = await keysync.layout(self.connection.api, namespace, name, keys_file, record.keys)
        # The certificates before the render: the pod templates carry their fingerprints.
        tls_state = await self.certificates.ensure(
            body, spec, record.tls, record.children, now, full=record.full_apply
        )
        inputs = fleet_.FleetInputs(
            name=name,
            namespace=namespace,
            spec=spec,
            keys=keys_file,
            monitoring_available=available,
            cnpg_available=cnpg,
            key_shards=shards,
            previous_key_shards=previous,
            key_revisions=keysync.revisions_of(name, max(shards, previous or 0), record.keys),
            now=now,
            tls_fingerprints=tls_state.fingerprints,
            cert_manager_available=await self.connection.cert_manager.available(),
            pod_logs_available=await self.connection.pod_logs.available(),
        )
        step = await self.rollouts.step(
            body, spec, record.children, record.rollout, inputs, record.status.previous(body), now, smoke
        )
        if step is not None:
            inputs = dataclasses.replace(inputs, workloads=step.workloads)
        rendered = fleet_.render_fleet(inputs)
        return Plan(
            fleet=rendered,
            key_records=records,
            monitoring_available=available,
            resharding=previous is not None,
            now=now,
            tls=tls_state,
            rollout=step,
        )

    # --- 2. apply -------------------------------------------------------------------------------------

    async def apply(
        self,
        body: Mapping[str, Any],
        spec: effective.EffectiveSpec,
        plan: Plan,
        record: memory.FleetMemory,
    ) -> tuple[list[str], list[str]]:
        """Create the passwords once, apply the changed children, delete the unwanted: (changed, deleted)."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        changed: list[str] = []
        for secret in self._passwords(spec, name, namespace):
            if await self.children.create_once(body, secret, record.children):
                changed.append(children.ident(secret))
        if plan.rollout is not None:
            await self.rollouts.hand_over(namespace, name, plan.rollout)
        changed += await self.children.apply_changed(
            body, plan.fleet.objects, record.children, full=record.full_apply
        )
        keysync.written(plan.fleet.keys_secrets, record.keys)
        deleted = await self.children.delete_unwanted(
            body, plan.fleet.unwanted, record.children, monitoring_available=plan.monitoring_available
        )
        workloads = plan.rollout.workloads if plan.rollout is not None else fleet_.Workloads()
        active = names.slot_deployment_name(name, workloads.active)
        deployment = record.children.workloads.get(f"Deployment/{active}")
        # A slot kept at an older pod template may read the old layout still.
        settled = not workloads.kept
        if plan.resharding and settled and status.rolled_out(deployment, plan.fleet.config_hash):
            # Every pod runs the new key layout: the old one's copies and Secrets can go.
            for old in keysync.finish_resharding(name, record.keys):
                if await self.children.delete_secret(namespace, old, record.children):
                    deleted.append(f"Secret/{old}")
            self.requests.fleet(namespace, name, "resharding rolled out")
        record.full_apply = False
        return changed, deleted

    def _passwords(self, spec: effective.EffectiveSpec, name: str, namespace: str) -> list[dict[str, Any]]:
        """The generated Secrets the spec wants, each with a new password (kept if it exists)."""
        wanted: list[dict[str, Any]] = []
        if spec.redis.managed:
            wanted.append(redis.render_password_secret(name, namespace, new_password()))
        if spec.analytics.enabled and spec.analytics.managed:
            wanted.append(postgres.render_password_secret(name, namespace, new_password()))
        return wanted

    def _schedule(self, namespace: str, name: str, plan: Plan) -> None:
        """The next reconcile the fleet's keys.yaml needs by itself (a key expires, a grace ends)."""
        delay = keysync.next_transition(plan.key_records, plan.now)
        if delay is not None:
            self.requests.fleet(namespace, name, "a key expires", delay=delay)
        if plan.tls.recheck_after is not None:
            self.requests.fleet(namespace, name, "a certificate is due", delay=plan.tls.recheck_after)
        if plan.rollout is not None and plan.rollout.recheck is not None:
            phase = plan.rollout.state.phase.value if plan.rollout.state is not None else "done"
            self.requests.fleet(namespace, name, f"rollout {phase}", delay=plan.rollout.recheck)

    # --- 3. observe -----------------------------------------------------------------------------------

    async def observe(
        self,
        body: Mapping[str, Any],
        spec: effective.EffectiveSpec,
        record: memory.FleetMemory,
        config_hash: str | None,
        reconcile_error: str | None = None,
        rollout_step: rollout.Step | None = None,
    ) -> status.ProxyObservation:
        """Everything the status is computed from."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        monitoring_wanted = spec.monitoring.service_monitor.enabled or spec.monitoring.alerts.enabled
        available = self.connection.monitoring.last_answer
        rollout_status = rollout.observation(rollout_step, record.status.previous(body))
        slot = rollout.active_slot(rollout_step, record.status.previous(body))
        deployment = await self.children.workload(
            apply.DEPLOYMENT, namespace, names.slot_deployment_name(name, slot), record.children
        )
        wanted = status.desired_replicas(spec, deployment)
        proxy_pods = await self._pods(namespace, name, deployment, wanted, names.PROXY, slot)
        return status.ProxyObservation(
            name=name,
            namespace=namespace,
            generation=body["metadata"].get("generation"),
            spec=spec,
            deployment=deployment,
            redis=await self.observe_redis(namespace, name, spec, record),
            monitoring=status.MonitoringObservation(wanted=monitoring_wanted, available=bool(available)),
            api_keys=len(self.indexes.keys_of(namespace, name)),
            config_hash=config_hash
            if config_hash is not None
            else record.status.previous(body).get("configHash"),
            selector=names.selector_string(name, slot=slot),
            reconcile_error=reconcile_error,
            analytics=await self.observe_analytics(namespace, name, spec, record),
            error_tracking=await observe_error_tracking(self.connection.api, namespace, spec),
            tls=record.tls.ready if spec.tls.enabled else status.tls_ready(spec.tls, None, None),
            proxy_pods=proxy_pods,
            logs=status.logs_configured(spec.pod_logs, bool(self.connection.pod_logs.last_answer)),
            rollout=rollout_status,
        )

    async def _pods(
        self,
        namespace: str,
        name: str,
        workload: Mapping[str, Any] | None,
        wanted: int,
        component: str,
        slot: str | None = None,
    ) -> str | None:
        """Why the pods of a child that is not ready are not (``controller.pods``); a look again later."""
        if not podstate.needs_a_look(workload, wanted):
            return None
        self.requests.fleet(
            namespace, name, f"its {component} is not ready", delay=self.settings.not_ready_recheck_seconds
        )
        labels = names.slot_selector_labels(name, slot, component)
        return await pods.why_not_ready(self.connection.api, namespace, workload, wanted, labels)

    async def observe_redis(
        self, namespace: str, name: str, spec: effective.EffectiveSpec, record: memory.FleetMemory
    ) -> status.RedisObservation:
        if spec.redis.managed:
            sts = await self.children.workload(
                apply.STATEFULSET, namespace, names.redis_name(name), record.children
            )
            return status.redis_from_statefulset(sts, await self._pods(namespace, name, sts, 1, names.REDIS))
        ref = spec.redis.url_secret_ref
        if ref is None:
            return status.RedisObservation(
                managed=False, ready=False, detail="no Redis URL Secret configured"
            )
        secret = await self.connection.api.get(apply.SECRET, namespace, ref.name)
        return status.redis_from_external_secret(secret, ref.name, ref.key)

    async def observe_analytics(
        self, namespace: str, name: str, spec: effective.EffectiveSpec, record: memory.FleetMemory
    ) -> status.Observed:
        """AnalyticsReady from the managed database as last seen (its StatefulSet, or its Cluster)."""
        analytics = spec.analytics
        managed = analytics.enabled and analytics.managed
        cnpg = managed and bool(self.connection.cloudnativepg.last_answer)
        live: dict[str, Any] | None = None
        database_pods: str | None = None
        if cnpg:
            live = await self.connection.api.get(apply.CNPG_CLUSTER, namespace, names.cnpg_cluster_name(name))
        elif managed:
            live = await self.children.workload(
                apply.STATEFULSET, namespace, names.postgres_name(name), record.children
            )
            database_pods = await self._pods(namespace, name, live, 1, names.POSTGRES)
        return status.analytics_readiness(name, analytics, cnpg, live, database_pods)

    # --- 4. status, 5. write --------------------------------------------------------------------------

    async def _observe_and_write(
        self,
        body: Mapping[str, Any],
        spec: effective.EffectiveSpec,
        record: memory.FleetMemory,
        config_hash: str | None,
        *,
        reconcile_error: str | None = None,
        rollout_step: rollout.Step | None = None,
    ) -> bool:
        previous = record.status.previous(body)
        observation = await self.observe(body, spec, record, config_hash, reconcile_error, rollout_step)
        desired = status.proxy_status(observation, previous, self.clock())
        return await self._write_status(body, record, previous, desired)

    async def _write_status(
        self,
        body: Mapping[str, Any],
        record: memory.FleetMemory,
        previous: Mapping[str, Any],
        desired: Mapping[str, Any],
    ) -> bool:
        """Patch the status when it differs from the one last written; True when written."""
        if not status.changed(previous, desired):
            return False
        _announce_transitions(body, previous, desired)
        metadata = body["metadata"]
        await self.connection.api.patch_status(
            apply.WEATHERPROXY, metadata["namespace"], metadata["name"], desired
        )
        record.status.remember(body, desired)
        return True


async def observe_error_tracking(
    api: apply.Cluster, namespace: str, spec: effective.EffectiveSpec
) -> status.Observed:
    """ErrorTrackingConfigured from the DSN's Secret (read only when error tracking is on)."""
    tracking = spec.error_tracking
    secret = None
    if tracking.enabled and tracking.dsn_secret_ref is not None:
        secret = await api.get(apply.SECRET, namespace, tracking.dsn_secret_ref.name)
    return status.error_tracking_from_secret(tracking, secret)


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
        elif (
            condition["type"] == status.LOGS_CONFIGURED
            and condition["reason"] == status.POD_LOGS_CRD_NOT_INSTALLED
        ):
            events.warn(body, reason="PodLogsSkipped", message=condition["message"])
        elif condition["type"] == status.READY and condition["status"] == status.TRUE:
            events.info(body, reason="Ready", message=condition["message"])
        elif condition["type"] == status.READY and condition["reason"] == specs.REASON:
            events.warn(body, reason=specs.REASON, message=condition["message"])
        elif condition["type"] == status.DEGRADED and condition["status"] == status.TRUE:
            events.warn(body, reason=condition["reason"], message=condition["message"])
        elif condition["type"] == status.REDIS_READY and condition["reason"] == "ExternalSecretNotFound":
            events.warn(body, reason="RedisSecretNotFound", message=condition["message"])
        elif condition["type"] == status.TLS_READY and condition["reason"] not in {
            "Disabled",
            "CertificateReady",
        }:
            events.warn(body, reason=f"TLS{condition['reason']}", message=condition["message"])
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
