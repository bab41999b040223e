"""All child objects of one WeatherProxy, in apply order, and those that must not exist."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping
from typing import Any

from weather_operator import api
from weather_operator.render import (
    configmap,
    deployment,
    hpa,
    ingress,
    keys_secret,
    meta,
    names,
    networkpolicy,
    pdb,
    podlogs,
    postgres,
    prometheusrule,
    rbac,
    redis,
    service,
    servicemonitor,
    tls,
)
from weather_proxy import config


@dataclasses.dataclass(frozen=True)
class ProxyForm:
    """One proxy Deployment to render: a slot's (BlueGreen) or the single one (``slot`` None)."""

    slot: str | None
    replicas: int | None = None  # None: the spec's (or none, the HPA's); else exactly this many


@dataclasses.dataclass(frozen=True)
class Workloads:
    """Which proxy Deployments exist and what the Service, HPA and PDB follow (``controller.rollout``).

    The default is RollingUpdate's: the single Deployment ``<fleet>``, nothing else.
    """

    active: str | None = None  # the form the Service <fleet>, the HPA and the PDB follow
    rendered: tuple[ProxyForm, ...] = (ProxyForm(None),)
    # Forms left exactly as they are (a slot serving an older pod template): neither applied nor deleted.
    kept: frozenset[str | None] = frozenset()
    preview: str | None = None  # the slot behind <fleet>-preview (BlueGreen)
    blue_green: bool = False  # slots may exist: the forms neither rendered nor kept are deleted

    def forms(self) -> set[str | None]:
        return {form.slot for form in self.rendered} | set(self.kept)


@dataclasses.dataclass(frozen=True)
class FleetInputs:
    name: str
    namespace: str
    spec: api.effective.EffectiveSpec  # the spec with its preset applied (resolved once, by the caller)
    keys: config.KeysFile  # aggregated ApiKeys (hashes only)
    monitoring_available: bool  # ServiceMonitor + PrometheusRule CRDs installed
    cnpg_available: bool = False  # CloudNativePG's Cluster is served: a managed database is one
    key_shards: int = 1  # Secrets the keys are spread over (weather_operator.keyshards)
    previous_key_shards: int | None = None  # while a resharding rolls out: the count before
    # Per keys Secret name: (content digest, revision) last written; new content gets a higher revision.
    key_revisions: Mapping[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    now: datetime.datetime = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)  # revision of new content
    # spec.tls: the current certificates' fingerprints (pod templates), cert-manager's CRDs served.
    tls_fingerprints: tls.Fingerprints = dataclasses.field(default_factory=tls.Fingerprints)
    cert_manager_available: bool = False
    pod_logs_available: bool = False  # Grafana's PodLogs CRD (monitoring.grafana.com/v1alpha2) served
    workloads: Workloads = dataclasses.field(default_factory=Workloads)  # spec.strategy (BlueGreen)


ObjectRef = meta.ObjectRef


@dataclasses.dataclass(frozen=True)
class Fleet:
    objects: list[dict[str, Any]]  # desired children, in apply order, WITHOUT ownerReferences
    unwanted: list[ObjectRef]  # children that must not exist for this spec
    config_hash: str  # hash of the rendered config.yaml (pod template annotation)
    keys_secrets: list[keys_secret.KeysSecret] = dataclasses.field(default_factory=list)  # also in objects


def proxy_config_hash(inputs: FleetInputs) -> str:
    """The hash of the config.yaml these inputs render (the pod templates' config-hash annotation)."""
    text = configmap.config_yaml(
        configmap.proxy_config(inputs.name, inputs.spec, inputs.key_shards, inputs.cnpg_available)
    )
    return configmap.config_hash(text)


def pod_template_hash(inputs: FleetInputs) -> str:
    """The hash of the proxy pod template these inputs render (``deployment.TEMPLATE_HASH_ANNOTATION``)."""
    single = deployment.render(
        inputs.name,
        inputs.namespace,
        inputs.spec,
        proxy_config_hash(inputs),
        inputs.key_shards,
        inputs.tls_fingerprints.proxy,
    )
    return deployment.pod_template_hash(single["spec"]["template"])


def _proxy_objects(
    inputs: FleetInputs, text: str, config_hash: str
) -> tuple[list[dict[str, Any]], list[ObjectRef]]:
    """The proxy Deployments with their ConfigMaps, and those of the forms that must not exist."""
    name, namespace, spec, work = inputs.name, inputs.namespace, inputs.spec, inputs.workloads
    objects: list[dict[str, Any]] = []
    for form in work.rendered:
        config = configmap.render(name, namespace, text)
        config["metadata"]["name"] = names.slot_config_map_name(name, form.slot)
        objects.append(config)
    for form in work.rendered:
        objects.append(
            deployment.render(
                name,
                namespace,
                spec,
                config_hash,
                inputs.key_shards,
                inputs.tls_fingerprints.proxy,
                slot=form.slot,
                replicas=form.replicas,
            )
        )
    unwanted: list[ObjectRef] = []
    if work.blue_green:
        for slot in (None, *names.SLOTS):
            if slot not in work.forms():
                unwanted.append(ObjectRef("apps/v1", "Deployment", names.slot_deployment_name(name, slot)))
                unwanted.append(ObjectRef("v1", "ConfigMap", names.slot_config_map_name(name, slot)))
    return objects, unwanted


def render_fleet(inputs: FleetInputs) -> Fleet:
    """The desired children of a WeatherProxy; pure: the same inputs give the same fleet."""
    name, namespace, spec = inputs.name, inputs.namespace, inputs.spec
    shards, previous = inputs.key_shards, inputs.previous_key_shards
    cnpg = inputs.cnpg_available
    work = inputs.workloads
    text = configmap.config_yaml(configmap.proxy_config(name, spec, shards, cnpg))
    config_hash = configmap.config_hash(text)
    proxy_objects, proxy_unwanted = _proxy_objects(inputs, text, config_hash)
    keys_secrets = keys_secret.render_layout(
        name,
        namespace,
        inputs.keys,
        shards=shards,
        previous=previous,
        written=inputs.key_revisions,
        now=inputs.now,
    )

    objects: list[dict[str, Any]] = [
        *(obj for obj in proxy_objects if obj["kind"] == "ConfigMap"),
        *(item.secret for item in keys_secrets),
        # The pods' identity before the Deployment that names it (admission checks it exists).
        rbac.render_service_account(name, namespace),
        # While a resharding rolls out, pods of both layouts read their Secrets.
        rbac.render_role(name, namespace, max(shards, previous or 0)),
        rbac.render_role_binding(name, namespace),
    ]
    unwanted: list[ObjectRef] = list(proxy_unwanted)

    prints = inputs.tls_fingerprints
    redis_objects = [
        networkpolicy.render(name, namespace),
        redis.render_service(name, namespace),
        redis.render_statefulset(name, namespace, spec.redis, spec.tls.internal, prints.redis),
    ]
    if spec.redis.managed:
        objects += redis_objects
    else:
        unwanted += [_ref(obj) for obj in redis_objects]
        unwanted.append(ObjectRef("v1", "Secret", names.redis_secret_name(name)))

    # The history database before the pods that write to it.
    database = postgres.render_database(
        name, namespace, spec.analytics, cnpg, spec.tls.internal, prints.postgres
    )
    objects += database.objects
    unwanted += database.unwanted

    unwanted += tls.unwanted_secrets(
        name, spec.tls, spec.redis.managed, spec.analytics.enabled and spec.analytics.managed
    )
    objects += [obj for obj in proxy_objects if obj["kind"] == "Deployment"]
    objects.append(service.render(name, namespace, spec.tls.enabled, work.active))
    if work.preview is not None:
        objects.append(service.render(name, namespace, spec.tls.enabled, work.preview, preview=True))
    elif work.blue_green:
        unwanted.append(ObjectRef("v1", "Service", names.preview_service_name(name)))
    objects.append(networkpolicy.render_proxy(name, namespace, deployment.serving_port(spec)[1]))

    monitoring = spec.monitoring
    tls_secret = tls.proxy_secret_name(name, spec.tls) if spec.tls.enabled else None
    optional: list[tuple[bool, ObjectRef, Callable[[], dict[str, Any]]]] = [
        (
            spec.autoscaling.enabled,
            ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", names.hpa_name(name)),
            lambda: hpa.render(name, namespace, spec.autoscaling, work.active),
        ),
        (
            spec.disruption.enabled,
            ObjectRef("policy/v1", "PodDisruptionBudget", names.pdb_name(name)),
            lambda: pdb.render(name, namespace, spec.disruption, work.active),
        ),
        (
            spec.ingress.enabled,
            ObjectRef("networking.k8s.io/v1", "Ingress", names.ingress_name(name)),
            lambda: ingress.render(name, namespace, spec.ingress),
        ),
        (
            inputs.monitoring_available and monitoring.service_monitor.enabled,
            ObjectRef(servicemonitor.API_VERSION, servicemonitor.KIND, names.service_monitor_name(name)),
            lambda: servicemonitor.render(name, namespace, monitoring.service_monitor, tls_secret),
        ),
        (
            inputs.monitoring_available and monitoring.alerts.enabled,
            ObjectRef(prometheusrule.API_VERSION, prometheusrule.KIND, names.prometheus_rule_name(name)),
            lambda: prometheusrule.render(name, namespace, monitoring.alerts),
        ),
    ]
    for wanted, ref, build in optional:
        if wanted:
            objects.append(build())
        else:
            unwanted.append(ref)
    # Only where its CRD is served (nothing of the kind can exist elsewhere); without it
    # LogsConfigured says so (CRDNotInstalled).
    if inputs.pod_logs_available:
        if spec.pod_logs.enabled:
            objects.append(podlogs.render(name, namespace, spec.pod_logs))
        else:
            unwanted.append(ObjectRef(podlogs.API_VERSION, podlogs.KIND, names.pod_logs_name(name)))
    # Only where cert-manager's CRDs are served (nothing of the kind can exist elsewhere); without
    # them TLSReady says so (CertManagerMissing) and the rest of the fleet goes on.
    if inputs.cert_manager_available:
        if spec.tls.mode is api.effective.TlsMode.CERT_MANAGER:
            objects.append(tls.render_certificate(name, namespace, spec.tls))
        else:
            certificate = names.tls_secret_name(name)
            unwanted.append(ObjectRef(tls.CERT_MANAGER_API_VERSION, tls.CERTIFICATE_KIND, certificate))
    return Fleet(objects=objects, unwanted=unwanted, config_hash=config_hash, keys_secrets=keys_secrets)


def _ref(obj: dict[str, Any]) -> ObjectRef:
    return ObjectRef(api_version=obj["apiVersion"], kind=obj["kind"], name=obj["metadata"]["name"])
