"""``spec.tls`` objects and pod parts: the certificate Secrets, cert-manager's Certificate, the volumes.

Pure: the certificates themselves are made by the fleet's reconciler
(``controller.certificates``, with ``weather_operator.certificates``), which renders their
Secrets here; a rendered fleet never holds key material.

Which Secret holds what:

* ``<proxy>-tls-ca``: the fleet's CA (``ca.crt``, ``ca.key``). Only ``ca.crt`` is ever mounted.
* ``<proxy>-tls``: the proxies' serving leaf (``Managed``: the operator's; ``CertManager``:
  cert-manager's). ``Secret`` mode serves the user's Secret instead.
* ``<proxy>-redis-tls``, ``<proxy>-postgres-tls``: the internal servers' leaves (``internal``).
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names

CERT_MANAGER_API_VERSION = "cert-manager.io/v1"
CERTIFICATE_KIND = "Certificate"
# Secret volumes readable by the pod's group (fsGroup) only; PostgreSQL refuses a key file
# readable by others.
SECRET_FILE_MODE = 0o440
TLS_VOLUME = "tls"
INTERNAL_CA_VOLUME = "internal-ca"
# CloudNativePG reloads a user-provided certificate Secret carrying this label when it changes.
CNPG_RELOAD_LABEL = "cnpg.io/reload"
# cert-manager: 90 days, renewed 30 days before the end (two thirds of its life, as Managed).
CERTIFICATE_DURATION = "2160h"
CERTIFICATE_RENEW_BEFORE = "720h"
# The internal servers' leaves also name the loopback, where their own probes connect.
LOOPBACK_DNS = "localhost"
LOOPBACK_IP = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Fingerprints:
    """sha256 of each server's current certificate (``certificates.fingerprint``): on the pod
    templates of servers that read theirs only at start, so a renewal restarts them."""

    proxy: str | None = None
    redis: str | None = None
    postgres: str | None = None


def proxy_dns_names(proxy: str, namespace: str, tls: effective.EffectiveTls) -> list[str]:
    """What the proxies' certificate covers: the Service's names, then ``spec.tls.dnsNames``."""
    return list(
        dict.fromkeys([*names.service_dns_names(names.service_name(proxy), namespace), *tls.dns_names])
    )


def redis_dns_names(proxy: str, namespace: str) -> list[str]:
    return [*names.service_dns_names(names.redis_service_name(proxy), namespace), LOOPBACK_DNS]


def postgres_dns_names(proxy: str, namespace: str) -> list[str]:
    """Both managed forms: the StatefulSet's Service, and CloudNativePG's Services (``-rw``, the
    primary the proxies use; ``-r`` and ``-ro`` for other clients: CloudNativePG's own
    connections check the CA only)."""
    cluster = names.cnpg_cluster_name(proxy)
    return [
        *names.service_dns_names(names.postgres_name(proxy), namespace),
        *(
            name
            for suffix in ("rw", "r", "ro")
            for name in names.service_dns_names(f"{cluster}-{suffix}", namespace)
        ),
        LOOPBACK_DNS,
    ]


def proxy_secret_name(proxy: str, tls: effective.EffectiveTls) -> str:
    """The Secret the proxies serve: the user's in ``Secret`` mode, else ``<proxy>-tls``."""
    if tls.mode is effective.TlsMode.SECRET and tls.secret_name is not None:
        return tls.secret_name
    return names.tls_secret_name(proxy)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def render_ca_secret(proxy: str, namespace: str, cert_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    """The fleet's CA: written by the reconciler when missing or unusable, else kept."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta.metadata(names.tls_ca_secret_name(proxy), namespace, proxy, names.PROXY),
        "data": {names.CA_CERT_KEY: _b64(cert_pem), names.CA_KEY_KEY: _b64(key_pem)},
    }


def render_leaf_secret(
    name: str,
    proxy: str,
    namespace: str,
    component: str,
    cert_pem: bytes,
    key_pem: bytes,
    ca_pem: bytes,
) -> dict[str, Any]:
    """A ``kubernetes.io/tls`` Secret with ``ca.crt`` (the chain's root, for clients and scrapers)."""
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta.metadata(name, namespace, proxy, component),
        "data": {
            names.TLS_CERT_KEY: _b64(cert_pem),
            names.TLS_KEY_KEY: _b64(key_pem),
            names.CA_CERT_KEY: _b64(ca_pem),
        },
    }
    if component == names.POSTGRES:
        obj["metadata"]["labels"][CNPG_RELOAD_LABEL] = ""
    return obj


def render_certificate(proxy: str, namespace: str, tls: effective.EffectiveTls) -> dict[str, Any]:
    """cert-manager's Certificate of the proxies' leaf (``CertManager`` mode), into ``<proxy>-tls``."""
    assert tls.issuer_name is not None  # guaranteed by TlsSpec validation
    return {
        "apiVersion": CERT_MANAGER_API_VERSION,
        "kind": CERTIFICATE_KIND,
        "metadata": meta.metadata(names.tls_secret_name(proxy), namespace, proxy, names.PROXY),
        "spec": {
            "secretName": names.tls_secret_name(proxy),
            "commonName": names.service_dns_names(names.service_name(proxy), namespace)[2],
            "dnsNames": proxy_dns_names(proxy, namespace, tls),
            "issuerRef": {"name": tls.issuer_name, "kind": tls.issuer_kind.value, "group": "cert-manager.io"},
            "duration": CERTIFICATE_DURATION,
            "renewBefore": CERTIFICATE_RENEW_BEFORE,
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["server auth", "digital signature"],
        },
    }


def secret_volume(volume: str, secret: str, *, only_ca: bool = False) -> dict[str, Any]:
    """A Secret as a read-only directory (never subPath: a renewed Secret reaches the pod)."""
    source: dict[str, Any] = {"secretName": secret, "defaultMode": SECRET_FILE_MODE}
    if only_ca:
        source["items"] = [{"key": names.CA_CERT_KEY, "path": names.CA_CERT_KEY}]
    return {"name": volume, "secret": source}


def proxy_volumes(proxy: str, tls: effective.EffectiveTls) -> list[dict[str, Any]]:
    """The proxies' serving certificate, and the CA certificate of the internal servers."""
    if not tls.enabled:
        return []
    volumes = [secret_volume(TLS_VOLUME, proxy_secret_name(proxy, tls))]
    if tls.internal:
        volumes.append(secret_volume(INTERNAL_CA_VOLUME, names.tls_ca_secret_name(proxy), only_ca=True))
    return volumes


def internal_ca_volume(proxy: str) -> dict[str, Any]:
    return secret_volume(INTERNAL_CA_VOLUME, names.tls_ca_secret_name(proxy), only_ca=True)


def internal_ca_mount() -> dict[str, Any]:
    return {"name": INTERNAL_CA_VOLUME, "mountPath": names.INTERNAL_CA_DIR, "readOnly": True}


def proxy_mounts(tls: effective.EffectiveTls) -> list[dict[str, Any]]:
    if not tls.enabled:
        return []
    mounts = [{"name": TLS_VOLUME, "mountPath": names.TLS_DIR, "readOnly": True}]
    if tls.internal:
        mounts.append(internal_ca_mount())
    return mounts


def internal_ca_file() -> str:
    return f"{names.INTERNAL_CA_DIR}/{names.CA_CERT_KEY}"


def unwanted_secrets(
    proxy: str, tls: effective.EffectiveTls, redis_managed: bool, database_managed: bool
) -> list[meta.ObjectRef]:
    """The operator's certificate Secrets this spec does not use (deleted only when owned)."""
    wanted: set[str] = set()
    if tls.mode is effective.TlsMode.MANAGED:
        wanted.add(names.tls_secret_name(proxy))
    if tls.internal and redis_managed:
        wanted.add(names.redis_tls_secret_name(proxy))
    if tls.internal and database_managed:
        wanted.add(names.postgres_tls_secret_name(proxy))
    if tls.mode is effective.TlsMode.MANAGED or wanted:
        wanted.add(names.tls_ca_secret_name(proxy))
    every = [
        names.tls_ca_secret_name(proxy),
        names.tls_secret_name(proxy),
        names.redis_tls_secret_name(proxy),
        names.postgres_tls_secret_name(proxy),
    ]
    # cert-manager's Secret is cert-manager's (not owned by the fleet): delete_unwanted leaves it.
    return [meta.ObjectRef("v1", "Secret", name) for name in every if name not in wanted]
