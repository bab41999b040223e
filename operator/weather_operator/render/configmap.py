"""The proxy's ``config.yaml`` (built from the effective spec) and the ConfigMap holding it."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from weather_operator.api import effective
from weather_operator.render import meta, names, postgres
from weather_proxy import config

# Where an External Redis URL really comes from: env WEATHER_PROXY_REDIS_URL (a secretKeyRef)
# overrides this placeholder, so no credentials ever land in the ConfigMap. `.invalid` never resolves.
EXTERNAL_REDIS_PLACEHOLDER_URL = "redis://external-redis-url-from-env.invalid:6379/0"


def proxy_config(
    proxy: str, spec: effective.EffectiveSpec, key_shards: int = 1, cnpg: bool = False
) -> config.ProxyConfig:
    """The ProxyConfig the fleet's pods run with (their keys over ``key_shards`` Secrets).

    ``cnpg``: a managed history database is a CloudNativePG Cluster (its primary's Service).
    """
    redis_url = names.redis_url(proxy) if spec.redis.managed else EXTERNAL_REDIS_PLACEHOLDER_URL
    return config.ProxyConfig(
        environment=spec.environment,
        listen=config.Listen(host="0.0.0.0", port=names.HTTP_PORT),  # noqa: S104  # nosec B104 - pod network
        upstream=spec.upstream,
        cache=spec.cache,
        redis=config.Redis(url=redis_url),
        # The mounted keys file is the fallback; the watch of the Secrets is what revokes within seconds.
        # No namespace: each pod reads its own from its ServiceAccount mount.
        auth=config.Auth(
            required=spec.auth_required,
            keys_file=names.keys_file_path(0),
            keys_files=[names.keys_file_path(i) for i in range(1, key_shards)],
            kubernetes=config.KubernetesKeys(
                secret_names=names.keys_secret_names(proxy, key_shards), key=names.KEYS_KEY
            ),
        ),
        rate_limit=spec.rate_limit,
        http=spec.http,
        observability=config.Observability(log_level=spec.log_level, tracing=spec.tracing),
        analytics=postgres.analytics_config(proxy, spec.analytics, cnpg),
        server=spec.server,
    )


def config_yaml(cfg: config.ProxyConfig) -> str:
    """``config.yaml`` text, deterministic (model field order)."""
    return yaml.safe_dump(cfg.to_camel_dict(), sort_keys=False, default_flow_style=False)


def config_hash(text: str) -> str:
    """Short hash of ``config.yaml``: the pod template annotation that restarts pods on change."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def render(proxy: str, namespace: str, text: str) -> dict[str, Any]:
    """The ConfigMap with ``config.yaml``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.metadata(names.config_map_name(proxy), namespace, proxy, names.PROXY),
        "data": {names.CONFIG_KEY: text},
    }
