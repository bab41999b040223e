"""The managed Redis of a fleet: a one-replica StatefulSet, its Service and its password Secret.

The password Secret (``<proxy>-redis-auth``) is rendered by :func:`render_password_secret`
from a password the fleet's reconciler generates and creates once (never applies: the
running Redis and the pods keep theirs); the renderers never make one up.
"""

from __future__ import annotations

import base64
from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names

REDIS_USER = 999  # the uid of the official redis images
DATA_DIR = "/data"


def _args(persistence: bool) -> list[str]:
    args = ["--port", str(names.REDIS_PORT), "--dir", DATA_DIR, "--requirepass", "$(REDIS_PASSWORD)"]
    if persistence:
        return [*args, "--appendonly", "yes", "--save", "900 1", "--save", "300 10"]
    # A pure cache: nothing written to disk.
    return [*args, "--appendonly", "no", "--save", ""]


def _password(proxy: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": names.redis_secret_name(proxy), "key": names.REDIS_PASSWORD_KEY}}


def _container(proxy: str, redis: effective.EffectiveRedis) -> dict[str, Any]:
    return {
        "name": "redis",
        "image": redis.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server"],
        "args": _args(redis.persistence_enabled),
        "env": [
            {"name": "REDIS_PASSWORD", "valueFrom": _password(proxy)},
            # redis-cli reads the password from here, so the probe never puts it on a command line.
            {"name": "REDISCLI_AUTH", "valueFrom": _password(proxy)},
        ],
        "ports": [{"name": names.REDIS_PORT_NAME, "containerPort": names.REDIS_PORT, "protocol": "TCP"}],
        "resources": redis.resources.to_dict(),
        "livenessProbe": {
            "tcpSocket": {"port": names.REDIS_PORT_NAME},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", "redis-cli ping | grep -q PONG"]},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "securityContext": meta.restricted_container_security_context(REDIS_USER),
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
    }


def render_statefulset(proxy: str, namespace: str, redis: effective.EffectiveRedis) -> dict[str, Any]:
    """The Redis StatefulSet: a PVC template when persistence is on, an emptyDir otherwise."""
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": meta.restricted_pod_security_context(REDIS_USER),
        "terminationGracePeriodSeconds": 30,
        "containers": [_container(proxy, redis)],
    }
    spec: dict[str, Any] = {
        "replicas": 1,
        "serviceName": names.redis_service_name(proxy),
        "selector": {"matchLabels": names.selector_labels(proxy, names.REDIS)},
        "template": {"metadata": {"labels": names.labels(proxy, names.REDIS)}, "spec": pod_spec},
    }
    if redis.persistence_enabled:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": redis.persistence_size}},
        }
        if redis.storage_class_name is not None:
            claim_spec["storageClassName"] = redis.storage_class_name
        spec["volumeClaimTemplates"] = [
            {"metadata": {"name": "data", "labels": names.labels(proxy, names.REDIS)}, "spec": claim_spec}
        ]
        spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    else:
        pod_spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta.metadata(names.redis_name(proxy), namespace, proxy, names.REDIS),
        "spec": spec,
    }


def render_service(proxy: str, namespace: str) -> dict[str, Any]:
    """The Redis Service the proxies connect to (``redis://<proxy>-redis:6379/0``).

    Headless, as a StatefulSet's governing Service is: the name resolves to the ready Redis
    pod itself, with no virtual IP between. ``clusterIP`` cannot change on a live Service, so
    a Service rendered before it was headless is replaced, not patched (``apply``).
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(names.redis_service_name(proxy), namespace, proxy, names.REDIS),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "selector": names.selector_labels(proxy, names.REDIS),
            "ports": [
                {
                    "name": names.REDIS_PORT_NAME,
                    "port": names.REDIS_PORT,
                    "targetPort": names.REDIS_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def render_password_secret(proxy: str, namespace: str, password: str) -> dict[str, Any]:
    """The Secret of Redis's ``password``: create it, never apply it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta.metadata(names.redis_secret_name(proxy), namespace, proxy, names.REDIS),
        "data": {names.REDIS_PASSWORD_KEY: base64.b64encode(password.encode("utf-8")).decode("ascii")},
    }
