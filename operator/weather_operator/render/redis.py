"""The managed Redis of a fleet: a one-replica StatefulSet, its Service and its password Secret.

The password Secret (``<proxy>-redis-auth``) is rendered by :func:`render_password_secret`
from a password the fleet's reconciler generates and creates once (never applies: the
running Redis and the pods keep theirs); the renderers never make one up.
"""

from __future__ import annotations

from typing import Any

from weather_operator.api import constants, effective
from weather_operator.render import meta, names, tls

REDIS_USER = 999  # the uid of the official redis images
DATA_DIR = "/data"
TLS_DIR = "/tls"  # its leaf of the fleet's CA (spec.tls.internal): tls.crt, tls.key, ca.crt


def _listener(tls_on: bool) -> list[str]:
    """Plain TCP on 6379, or TLS only on 6379 (password auth stays; clients need no certificate)."""
    if not tls_on:
        return ["--port", str(names.REDIS_PORT)]
    return [
        "--port",
        "0",
        "--tls-port",
        str(names.REDIS_PORT),
        "--tls-cert-file",
        f"{TLS_DIR}/{names.TLS_CERT_KEY}",
        "--tls-key-file",
        f"{TLS_DIR}/{names.TLS_KEY_KEY}",
        "--tls-ca-cert-file",
        f"{TLS_DIR}/{names.CA_CERT_KEY}",
        "--tls-auth-clients",
        "no",
    ]


def _args(persistence: bool, tls_on: bool = False) -> list[str]:
    args = [*_listener(tls_on), "--dir", DATA_DIR, "--requirepass", "$(REDIS_PASSWORD)"]
    if persistence:
        return [*args, "--appendonly", "yes", "--save", "900 1", "--save", "300 10"]
    # A pure cache: nothing written to disk.
    return [*args, "--appendonly", "no", "--save", ""]


def _password(proxy: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": names.redis_secret_name(proxy), "key": names.REDIS_PASSWORD_KEY}}


def _ping(tls_on: bool) -> str:
    if not tls_on:
        return "redis-cli ping | grep -q PONG"
    return f"redis-cli --tls --cacert {TLS_DIR}/{names.CA_CERT_KEY} ping | grep -q PONG"


def _alive(tls_on: bool) -> dict[str, Any]:
    """Liveness: the port answers. With TLS a bare TCP connect would make Redis log an unfinished
    handshake at every probe, so it is a TLS PING whose any answer counts (LOADING included:
    redis-cli exits 0 on an error reply; a failed connection or handshake exits 1)."""
    if not tls_on:
        return {"tcpSocket": {"port": names.REDIS_PORT_NAME}}
    return {"exec": {"command": ["redis-cli", "--tls", "--cacert", f"{TLS_DIR}/{names.CA_CERT_KEY}", "ping"]}}


def _container(proxy: str, redis: effective.EffectiveRedis, tls_on: bool) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": "data", "mountPath": DATA_DIR}]
    if tls_on:
        mounts.append({"name": tls.TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True})
    return {
        "name": "redis",
        "image": redis.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server"],
        "args": _args(redis.persistence_enabled, tls_on),
        "env": [
            {"name": "REDIS_PASSWORD", "valueFrom": _password(proxy)},
            # redis-cli reads the password from here, so the probe never puts it on a command line.
            {"name": "REDISCLI_AUTH", "valueFrom": _password(proxy)},
        ],
        "ports": [{"name": names.REDIS_PORT_NAME, "containerPort": names.REDIS_PORT, "protocol": "TCP"}],
        "resources": redis.resources.to_dict(),
        "livenessProbe": {
            **_alive(tls_on),
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", _ping(tls_on)]},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "securityContext": meta.restricted_container_security_context(REDIS_USER),
        "volumeMounts": mounts,
    }


def render_statefulset(
    proxy: str,
    namespace: str,
    redis: effective.EffectiveRedis,
    tls_on: bool = False,
    tls_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The Redis StatefulSet: a PVC template when persistence is on, an emptyDir otherwise.

    ``tls_on`` (spec.tls.internal): Redis serves TLS only, from ``<proxy>-redis-tls``. It reads
    its certificate at start, so the certificate's ``tls_fingerprint`` on the pod template
    restarts it when the certificate is renewed.
    """
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": meta.restricted_pod_security_context(REDIS_USER),
        "terminationGracePeriodSeconds": 30,
        "containers": [_container(proxy, redis, tls_on)],
    }
    template: dict[str, Any] = {"labels": names.labels(proxy, names.REDIS)}
    if tls_on and tls_fingerprint is not None:
        template["annotations"] = {constants.TLS_FINGERPRINT_ANNOTATION: tls_fingerprint}
    spec: dict[str, Any] = {
        "replicas": 1,
        "serviceName": names.redis_service_name(proxy),
        "selector": {"matchLabels": names.selector_labels(proxy, names.REDIS)},
        "template": {"metadata": template, "spec": pod_spec},
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
    if tls_on:
        volume = tls.secret_volume(tls.TLS_VOLUME, names.redis_tls_secret_name(proxy))
        pod_spec["volumes"] = [*pod_spec.get("volumes", []), volume]
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
    return meta.secret(
        names.redis_secret_name(proxy), namespace, proxy, names.REDIS, {names.REDIS_PASSWORD_KEY: password}
    )
