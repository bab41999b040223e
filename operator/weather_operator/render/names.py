"""Names and labels of a fleet's child objects: deterministic, derived from the WeatherProxy name."""

from __future__ import annotations

import hashlib

from weather_proxy import contract

PART_OF = "weather-proxy-fleet"
MANAGED_BY = "weather-operator"
APP_NAME = "weather-proxy"

PROXY = "proxy"
REDIS = "redis"
MONITORING = "monitoring"
API_KEY = "api-key"

HTTP_PORT = contract.HTTP_PORT
HTTP_PORT_NAME = "http"
# With spec.tls on: the pods serve HTTPS on 8443, the Service on 443.
HTTPS_PORT = 8443
HTTPS_PORT_NAME = "https"
SERVICE_HTTPS_PORT = 443
REDIS_PORT = 6379
REDIS_PORT_NAME = "redis"

# The ConfigMap's and the keys Secrets' data keys are the file names the proxy reads.
CONFIG_KEY = contract.CONFIG_FILE
KEYS_KEY = contract.KEYS_FILE
REDIS_PASSWORD_KEY = "password"  # noqa: S105  # nosec B105 - a Secret key name
APIKEY_SECRET_KEY = contract.APIKEY_SECRET_KEY

CONFIG_DIR = contract.CONFIG_DIR
CONFIG_PATH = contract.CONFIG_PATH
KEYS_DIR = contract.KEYS_DIR
KEYS_PATH = contract.KEYS_PATH


def deployment_name(proxy: str) -> str:
    return proxy


def service_name(proxy: str) -> str:
    return proxy


def hpa_name(proxy: str) -> str:
    return proxy


def pdb_name(proxy: str) -> str:
    return proxy


def ingress_name(proxy: str) -> str:
    return proxy


def service_monitor_name(proxy: str) -> str:
    return proxy


def pod_logs_name(proxy: str) -> str:
    return proxy


def prometheus_rule_name(proxy: str) -> str:
    return proxy


def config_map_name(proxy: str) -> str:
    """ConfigMap holding ``config.yaml``."""
    return f"{proxy}-config"


def keys_secret_name(proxy: str) -> str:
    """Secret holding ``keys.yaml`` (hashes only)."""
    return f"{proxy}-keys"


def keys_secret_names(proxy: str, shards: int = 1) -> list[str]:
    """Every Secret holding the fleet's keys (``weather_operator.keyshards``), in the proxy's merge order."""
    return [keys_secret_name(proxy), *(f"{proxy}-keys-{i}" for i in range(1, shards))]


def keys_file_path(shard: int) -> str:
    """Where a pod mounts shard ``shard`` of the keys: ``keys.yaml``, then ``keys-1.yaml``, ..."""
    return KEYS_PATH if shard == 0 else f"{KEYS_DIR}/keys-{shard}.yaml"


def service_account_name(proxy: str) -> str:
    """The proxy pods' ServiceAccount: it may read the fleet's keys Secrets and nothing else."""
    return f"{proxy}-proxy"


def keys_reader_name(proxy: str) -> str:
    """Role and RoleBinding letting the proxy pods get, list and watch their keys Secrets."""
    return f"{proxy}-keys-reader"


def redis_name(proxy: str) -> str:
    """StatefulSet and Service of the managed Redis."""
    return f"{proxy}-redis"


def redis_service_name(proxy: str) -> str:
    return redis_name(proxy)


def redis_secret_name(proxy: str) -> str:
    """Secret with the managed Redis password (key ``password``); created once by the fleet's reconciler."""
    return f"{proxy}-redis-auth"


def redis_network_policy_name(proxy: str) -> str:
    return f"{proxy}-redis"


def redis_url(proxy: str, tls: bool = False) -> str:
    """URL of the managed Redis, database 0, through its Service (``rediss://`` over TLS)."""
    scheme = "rediss" if tls else "redis"
    return f"{scheme}://{redis_service_name(proxy)}:{REDIS_PORT}/0"


def apikey_secret_name(apikey: str) -> str:
    """Default Secret of a generated key (key ``apiKey``) when the ApiKey names none."""
    return f"{apikey}-apikey"


def endpoint(proxy: str, namespace: str, tls: bool = False) -> str:
    """In-cluster URL of the fleet's Service (https on 443 with spec.tls on)."""
    if tls:
        return f"https://{service_name(proxy)}.{namespace}.svc"
    return f"http://{service_name(proxy)}.{namespace}.svc:{HTTP_PORT}"


def network_policy_name(proxy: str) -> str:
    """The proxy pods' own NetworkPolicy."""
    return proxy


# spec.tls: the fleet's CA and the leaves it signs (weather_operator.certificates).
TLS_DIR = f"{CONFIG_DIR}/tls"  # the proxies' serving certificate (tls.crt, tls.key, ca.crt)
INTERNAL_CA_DIR = f"{CONFIG_DIR}/internal-ca"  # ca.crt of the fleet's CA, for Redis and PostgreSQL
TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"
CA_CERT_KEY = "ca.crt"
CA_KEY_KEY = "ca.key"


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names a Service is reached by in the cluster, shortest first."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def tls_ca_secret_name(proxy: str) -> str:
    """Secret of the fleet's CA (``ca.crt``, ``ca.key``); never mounted whole into a pod."""
    return f"{proxy}-tls-ca"


def tls_secret_name(proxy: str) -> str:
    """kubernetes.io/tls Secret the proxies serve (Managed and CertManager)."""
    return f"{proxy}-tls"


def redis_tls_secret_name(proxy: str) -> str:
    return f"{proxy}-redis-tls"


def postgres_tls_secret_name(proxy: str) -> str:
    return f"{proxy}-postgres-tls"


def selector_labels(proxy: str, component: str) -> dict[str, str]:
    """Labels that select a component's pods; never change them (selectors are immutable)."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": proxy,
        "app.kubernetes.io/component": component,
    }


def labels(proxy: str, component: str) -> dict[str, str]:
    """The standard labels of every child object."""
    return {
        **selector_labels(proxy, component),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_string(proxy: str, component: str = PROXY, slot: str | None = None) -> str:
    """The proxy pods' selector as a string, for WeatherProxy ``status.selector`` (of one slot's pods)."""
    return ",".join(f"{k}={v}" for k, v in slot_selector_labels(proxy, slot, component).items())


# spec.strategy BlueGreen (docs/rollouts.md): two slots of proxy pods, each its own Deployment and
# ConfigMap; the Service <fleet> selects the active one, <fleet>-preview the other.
SLOT_LABEL = "weatherproxy.dev/slot"
BLUE = "blue"
GREEN = "green"
SLOTS = (BLUE, GREEN)


def other_slot(slot: str) -> str:
    return GREEN if slot == BLUE else BLUE


def slot_deployment_name(proxy: str, slot: str | None) -> str:
    """A slot's Deployment ``<fleet>-blue``/``<fleet>-green``; ``None``: the single one (RollingUpdate)."""
    return deployment_name(proxy) if slot is None else f"{proxy}-{slot}"


def slot_config_map_name(proxy: str, slot: str | None) -> str:
    """A slot's ConfigMap (the proxy hot-reloads config.yaml: a shared one would reach the active slot)."""
    return config_map_name(proxy) if slot is None else f"{config_map_name(proxy)}-{slot}"


def preview_service_name(proxy: str) -> str:
    """The Service in front of the preview slot (BlueGreen only)."""
    return f"{proxy}-preview"


def slot_selector_labels(proxy: str, slot: str | None, component: str = PROXY) -> dict[str, str]:
    """The selector of one slot's pods (``None``: every proxy pod, as under RollingUpdate)."""
    labels_ = selector_labels(proxy, component)
    if slot is not None:
        labels_[SLOT_LABEL] = slot
    return labels_


def smoke_key_secret_name(proxy: str) -> str:
    """Secret of the operator's own API key for the analysis's smoke requests (key ``api-key``)."""
    return f"{proxy}-smoke-key"


# Usage history (spec.analytics): the managed PostgreSQL and the erasure Jobs.
POSTGRES = "postgres"
HISTORY_ERASER = "history-eraser"
POSTGRES_PORT = 5432
POSTGRES_PORT_NAME = "postgres"
POSTGRES_USER = "weather"
POSTGRES_DATABASE = "weather"
POSTGRES_USERNAME_KEY = "username"
POSTGRES_PASSWORD_KEY = "password"  # noqa: S105  # nosec B105 - a Secret key name


def postgres_name(proxy: str) -> str:
    """StatefulSet, headless Service and NetworkPolicy of the managed PostgreSQL (no CloudNativePG)."""
    return f"{proxy}-postgres"


def postgres_secret_name(proxy: str) -> str:
    """basic-auth Secret of the history database's owner; created once, read by CloudNativePG too."""
    return f"{proxy}-postgres-auth"


def cnpg_cluster_name(proxy: str) -> str:
    """The CloudNativePG Cluster; CloudNativePG names its Services ``<cluster>-rw``, ``-ro``, ``-r``."""
    return f"{proxy}-analytics"


def cnpg_rw_service_name(proxy: str) -> str:
    """CloudNativePG's Service of the primary."""
    return f"{cnpg_cluster_name(proxy)}-rw"


def cnpg_network_policy_name(proxy: str) -> str:
    return cnpg_cluster_name(proxy)


def erase_job_name(proxy: str, key_id: str, key_uid: str) -> str:
    """The Job erasing one deleted ApiKey's history, at most 63 characters.

    One per fleet and ApiKey object (its uid): an ApiKey re-created under the same name and
    deleted again gets a Job of its own while the first one's is still kept.
    """
    digest = hashlib.sha256(f"{key_id}/{key_uid}".encode()).hexdigest()[:12]
    return f"{proxy[:44].rstrip('-')}-erase-{digest}"
