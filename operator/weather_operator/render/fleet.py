"""All child objects of one WeatherProxy, in apply order, and those that must not exist."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from weather_operator import api, keyshards
from weather_operator.render import (
    configmap,
    deployment,
    hpa,
    ingress,
    keys_secret,
    names,
    networkpolicy,
    pdb,
    prometheusrule,
    rbac,
    redis,
    service,
    servicemonitor,
)
from weather_proxy import config


@dataclasses.dataclass(frozen=True)
class FleetInputs:
    name: str
    namespace: str
    spec: api.weatherproxy.WeatherProxySpec
    keys: config.KeysFile  # aggregated ApiKeys (hashes only)
    default_image: str  # from operator settings
    monitoring_available: bool  # ServiceMonitor + PrometheusRule CRDs installed
    key_shards: int = 1  # Secrets the keys are spread over (weather_operator.keyshards)
    previous_key_shards: int | None = None  # while a resharding rolls out: the count before


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str


@dataclasses.dataclass(frozen=True)
class Fleet:
    objects: list[dict[str, Any]]  # desired children, in apply order, WITHOUT ownerReferences
    unwanted: list[ObjectRef]  # children that must not exist for this spec
    config_hash: str  # hash of the rendered config.yaml (pod template annotation)
    # The spec with its preset applied, for status and events; not part of the contract above.
    effective: api.effective.EffectiveSpec | None = dataclasses.field(default=None, compare=False)


def render_fleet(inputs: FleetInputs) -> Fleet:
    """The desired children of a WeatherProxy; pure: the same inputs give the same fleet."""
    name, namespace = inputs.name, inputs.namespace
    spec = inputs.spec.effective(default_image=inputs.default_image)
    shards, previous = inputs.key_shards, inputs.previous_key_shards
    text = configmap.config_yaml(configmap.proxy_config(name, spec, shards))
    config_hash = configmap.config_hash(text)

    objects: list[dict[str, Any]] = [
        configmap.render(name, namespace, text),
        *(
            keys_secret.render(name, namespace, part, shard=i, shards=shards, previous=previous)
            for i, part in enumerate(keyshards.layout(inputs.keys, shards, previous))
        ),
        # The pods' identity before the Deployment that names it (admission checks it exists).
        rbac.render_service_account(name, namespace),
        # While a resharding rolls out, pods of both layouts read their Secrets.
        rbac.render_role(name, namespace, max(shards, previous or 0)),
        rbac.render_role_binding(name, namespace),
    ]
    unwanted: list[ObjectRef] = []

    redis_objects = [
        networkpolicy.render(name, namespace),
        redis.render_service(name, namespace),
        redis.render_statefulset(name, namespace, spec.redis),
    ]
    if spec.redis.managed:
        objects += redis_objects
    else:
        unwanted += [_ref(obj) for obj in redis_objects]
        unwanted.append(ObjectRef("v1", "Secret", names.redis_secret_name(name)))

    objects += [
        deployment.render(name, namespace, spec, config_hash, shards),
        service.render(name, namespace),
    ]

    monitoring = spec.monitoring
    optional: list[tuple[bool, ObjectRef, Callable[[], dict[str, Any]]]] = [
        (
            spec.autoscaling.enabled,
            ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", names.hpa_name(name)),
            lambda: hpa.render(name, namespace, spec.autoscaling),
        ),
        (
            spec.disruption.enabled,
            ObjectRef("policy/v1", "PodDisruptionBudget", names.pdb_name(name)),
            lambda: pdb.render(name, namespace, spec.disruption),
        ),
        (
            spec.ingress.enabled,
            ObjectRef("networking.k8s.io/v1", "Ingress", names.ingress_name(name)),
            lambda: ingress.render(name, namespace, spec.ingress),
        ),
        (
            inputs.monitoring_available and monitoring.service_monitor.enabled,
            ObjectRef(servicemonitor.API_VERSION, servicemonitor.KIND, names.service_monitor_name(name)),
            lambda: servicemonitor.render(name, namespace, monitoring.service_monitor),
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
    return Fleet(objects=objects, unwanted=unwanted, config_hash=config_hash, effective=spec)


def _ref(obj: dict[str, Any]) -> ObjectRef:
    return ObjectRef(api_version=obj["apiVersion"], kind=obj["kind"], name=obj["metadata"]["name"])
