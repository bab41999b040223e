"""The proxy Deployment: restricted pods, probes, config and keys mounted as directories.

The pods run as the fleet's ServiceAccount (``render.rbac``), whose token is mounted by an
explicit projected volume where in-cluster clients look for it; the automatic mount stays
off, so nothing else in the pod gets a token.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from weather_operator.api import constants, effective
from weather_operator.render import meta, names, postgres, tls
from weather_proxy import config, contract

TERMINATION_GRACE_PERIOD_SECONDS = 30
# Lets endpoints controllers and load balancers drop the pod before it stops accepting.
PRE_STOP_SLEEP_SECONDS = 5
CONTAINER_NAME = "proxy"
REDIS_URL_ENV = contract.ENV_REDIS_URL
REDIS_PASSWORD_ENV = contract.ENV_REDIS_PASSWORD
# The kubelet rotates the projected token well before it expires (at 80% of its lifetime).
TOKEN_EXPIRATION_SECONDS = 3600
API_ACCESS_VOLUME = "kube-api-access"
# Spread over nodes first, then zones (the well-known labels the kubelet and cloud providers set).
SPREAD_TOPOLOGY_KEYS = ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
# Servers that cannot reload a renewed serving certificate in process: their pods are rolled by
# the certificate's fingerprint on the pod template (docs/operations.md, Certificates).
SERVERS_WITHOUT_TLS_RELOAD: frozenset[config.Server] = frozenset({config.Server.GRANIAN})
# BlueGreen: the hash of the pod template a slot runs (``pod_template_hash``), on its pod template.
TEMPLATE_HASH_ANNOTATION = f"{constants.GROUP}/template-hash"
_WHEN_UNSATISFIABLE = {
    effective.SpreadMode.SOFT: "ScheduleAnyway",
    effective.SpreadMode.HARD: "DoNotSchedule",
}


def _env(proxy: str, spec: effective.EffectiveSpec) -> list[dict[str, Any]]:
    """What the proxy reads from env: its CPU request (its server workers' default: one per CPU of
    the container's limit, else of this request), Redis's password (or URL), the history database's,
    where its error reports go."""
    cpu_request = {
        "name": contract.ENV_CPU_REQUEST_MILLICORES,
        "valueFrom": {
            "resourceFieldRef": {"containerName": CONTAINER_NAME, "resource": "requests.cpu", "divisor": "1m"}
        },
    }
    return [
        cpu_request,
        *_redis_env(proxy, spec),
        *postgres.proxy_env(proxy, spec.analytics),
        *_error_tracking_env(spec.error_tracking),
    ]


def _error_tracking_env(tracking: effective.EffectiveErrorTracking) -> list[dict[str, Any]]:
    """The DSN from the user's Secret, as the Redis URL is: not optional, so a pod never runs
    without the reports it was asked for; a missing Secret shows in ErrorTrackingConfigured."""
    if not tracking.enabled or tracking.dsn_secret_ref is None:
        return []
    ref = {"name": tracking.dsn_secret_ref.name, "key": tracking.dsn_secret_ref.key}
    return [
        {"name": contract.ENV_SENTRY_DSN, "valueFrom": {"secretKeyRef": ref}},
        {"name": contract.ENV_SENTRY_ENVIRONMENT, "value": tracking.environment},
        {"name": contract.ENV_SENTRY_TRACES_SAMPLE_RATE, "value": format(tracking.traces_sample_rate, "g")},
    ]


def _redis_env(proxy: str, spec: effective.EffectiveSpec) -> list[dict[str, Any]]:
    if spec.redis.managed:
        ref = {"name": names.redis_secret_name(proxy), "key": names.REDIS_PASSWORD_KEY}
        return [{"name": REDIS_PASSWORD_ENV, "valueFrom": {"secretKeyRef": ref}}]
    assert spec.redis.url_secret_ref is not None  # guaranteed by RedisSpec validation
    ref = {"name": spec.redis.url_secret_ref.name, "key": spec.redis.url_secret_ref.key}
    return [{"name": REDIS_URL_ENV, "valueFrom": {"secretKeyRef": ref}}]


def serving_port(spec: effective.EffectiveSpec) -> tuple[str, int]:
    """The pods' one listener (API, probes, metrics): ``https`` 8443 with spec.tls on, else ``http`` 8080."""
    if spec.tls.enabled:
        return names.HTTPS_PORT_NAME, names.HTTPS_PORT
    return names.HTTP_PORT_NAME, names.HTTP_PORT


def _probe(path: str, spec: effective.EffectiveSpec) -> dict[str, Any]:
    # The kubelet does not verify the certificate of an HTTPS probe.
    get: dict[str, Any] = {"path": path, "port": serving_port(spec)[0]}
    if spec.tls.enabled:
        get["scheme"] = "HTTPS"
    return {"httpGet": get}


# A slot's pods share their circuit breaker with their own ReplicaSet only: a candidate neither trips
# the serving slot's breaker nor inherits one (docs/rollouts.md). The label is the Deployment controller's.
BREAKER_SCOPE_ENV = {
    "name": contract.ENV_BREAKER_SCOPE,
    "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['pod-template-hash']"}},
}


def _container(proxy: str, spec: effective.EffectiveSpec, slot: str | None = None) -> dict[str, Any]:
    port_name, port = serving_port(spec)
    return {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["weather-proxy", "--config", names.CONFIG_PATH],
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        "env": [*_env(proxy, spec), *([BREAKER_SCOPE_ENV] if slot is not None else [])],
        "resources": spec.resources.to_dict(),
        "startupProbe": {
            **_probe(contract.LIVENESS_PATH, spec),
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "livenessProbe": {
            **_probe(contract.LIVENESS_PATH, spec),
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            **_probe(contract.READINESS_PATH, spec),
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        "securityContext": meta.restricted_container_security_context(meta.PROXY_USER),
        # Directories, never subPath: the kubelet's symlink swap must reach the pod for hot reload.
        "volumeMounts": [
            {"name": "config", "mountPath": names.CONFIG_DIR, "readOnly": True},
            {"name": "keys", "mountPath": names.KEYS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108  # nosec B108 - an emptyDir, private to the pod
            {"name": API_ACCESS_VOLUME, "mountPath": contract.SERVICE_ACCOUNT_DIR, "readOnly": True},
            *tls.proxy_mounts(spec.tls),
        ],
    }


def _topology_spread(proxy: str, mode: effective.SpreadMode, slot: str | None = None) -> dict[str, Any]:
    """``topologySpreadConstraints`` of the pod spec (none when Off), among the slot's pods."""
    if mode is effective.SpreadMode.OFF:
        return {}
    constraints = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": _WHEN_UNSATISFIABLE[mode],
            "labelSelector": {"matchLabels": names.slot_selector_labels(proxy, slot)},
        }
        for key in SPREAD_TOPOLOGY_KEYS
    ]
    return {"topologySpreadConstraints": constraints}


def _api_access_volume() -> dict[str, Any]:
    """What the automatic token mount would give, explicitly: token, cluster CA, namespace."""
    return {
        "name": API_ACCESS_VOLUME,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ]
        },
    }


def _keys_volume(proxy: str, shards: int) -> dict[str, Any]:
    """The keys Secret as a directory; sharded, every shard in one projected directory."""
    if shards == 1:
        return {"name": "keys", "secret": {"secretName": names.keys_secret_name(proxy)}}
    sources = [
        {
            "secret": {
                "name": name,
                "items": [{"key": names.KEYS_KEY, "path": names.keys_file_path(i).rsplit("/", 1)[1]}],
            }
        }
        for i, name in enumerate(names.keys_secret_names(proxy, shards))
    ]
    return {"name": "keys", "projected": {"sources": sources}}


def _annotations(
    spec: effective.EffectiveSpec, config_hash: str, tls_fingerprint: str | None
) -> dict[str, str]:
    """The config hash, and the serving certificate's fingerprint for a server that cannot reload it."""
    out = {constants.CONFIG_HASH_ANNOTATION: config_hash}
    if spec.tls.enabled and tls_fingerprint is not None and spec.server in SERVERS_WITHOUT_TLS_RELOAD:
        out[constants.TLS_FINGERPRINT_ANNOTATION] = tls_fingerprint
    return out


def pod_template_hash(template: dict[str, Any]) -> str:
    """A short hash of a pod template (of the single Deployment's: the same for either slot)."""
    encoded = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def render(
    proxy: str,
    namespace: str,
    spec: effective.EffectiveSpec,
    config_hash: str,
    key_shards: int = 1,
    tls_fingerprint: str | None = None,
    *,
    slot: str | None = None,
    replicas: int | None = None,
) -> dict[str, Any]:
    """The Deployment; without ``spec.replicas`` when an HPA owns the replica count.

    ``tls_fingerprint``: sha256 of the certificate the pods serve (``spec.tls``), on the pod
    template only for a server that cannot reload a renewed certificate in process.
    ``slot`` (BlueGreen): the slot's Deployment ``<fleet>-<slot>``, its pods labelled with the
    slot, its own ConfigMap, and the hash of the single Deployment's pod template on its own.
    ``replicas``: this many, whatever the spec or the HPA (a preview at full size, an idle slot at 0).
    """
    deployment_spec: dict[str, Any] = {}
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    elif not spec.autoscaling.enabled:
        deployment_spec["replicas"] = spec.replicas
    template = _template(proxy, spec, config_hash, key_shards, tls_fingerprint, None)
    if slot is not None:
        digest = pod_template_hash(template)
        template = _template(proxy, spec, config_hash, key_shards, tls_fingerprint, slot)
        template["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] = digest
    deployment_spec |= {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": names.slot_selector_labels(proxy, slot)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": template,
    }
    metadata = meta.metadata(names.slot_deployment_name(proxy, slot), namespace, proxy, names.PROXY)
    if slot is not None:
        metadata["labels"][names.SLOT_LABEL] = slot
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": deployment_spec}


def _template(
    proxy: str,
    spec: effective.EffectiveSpec,
    config_hash: str,
    key_shards: int,
    tls_fingerprint: str | None,
    slot: str | None,
) -> dict[str, Any]:
    pod_labels = names.labels(proxy, names.PROXY)
    if slot is not None:
        pod_labels[names.SLOT_LABEL] = slot
    return {
        "metadata": {
            "labels": pod_labels,
            "annotations": _annotations(spec, config_hash, tls_fingerprint),
        },
        "spec": {
            "serviceAccountName": names.service_account_name(proxy),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": meta.restricted_pod_security_context(meta.PROXY_USER),
            "terminationGracePeriodSeconds": TERMINATION_GRACE_PERIOD_SECONDS,
            **_topology_spread(proxy, spec.topology_spread, slot),
            "containers": [_container(proxy, spec, slot)],
            "volumes": [
                {"name": "config", "configMap": {"name": names.slot_config_map_name(proxy, slot)}},
                _keys_volume(proxy, key_shards),
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                _api_access_volume(),
                *tls.proxy_volumes(proxy, spec.tls),
            ],
        },
    }
