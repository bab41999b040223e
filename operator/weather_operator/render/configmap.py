"""The proxy's ``config.yaml`` (built from the effective spec) and the ConfigMap holding it."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from weather_operator.api import effective
from weather_operator.render import meta, names, postgres, tls
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
    return config.ProxyConfig(
        environment=spec.environment,
        listen=_listen(spec.tls),
        upstream=spec.upstream,
        cache=spec.cache,
        redis=_redis(proxy, spec),
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
        analytics=postgres.analytics_config(proxy, spec.analytics, cnpg, internal_tls=spec.tls.internal),
        server=spec.server,
    )


def _listen(spec_tls: effective.EffectiveTls) -> config.Listen:
    """Plain HTTP on 8080, or HTTPS on 8443 from the mounted serving certificate (``spec.tls``)."""
    host = "0.0.0.0"  # noqa: S104  # nosec B104 - pod network
    if not spec_tls.enabled:
        return config.Listen(host=host, port=names.HTTP_PORT)
    files = {
        "certFile": f"{names.TLS_DIR}/{names.TLS_CERT_KEY}",
        "keyFile": f"{names.TLS_DIR}/{names.TLS_KEY_KEY}",
    }
    return config.Listen.model_validate({"host": host, "port": names.HTTPS_PORT, "tls": files})


def _redis(proxy: str, spec: effective.EffectiveSpec) -> config.Redis:
    """The managed Redis (over TLS against the fleet's CA with ``spec.tls.internal``), or the
    External placeholder."""
    if not spec.redis.managed:
        return config.Redis(url=EXTERNAL_REDIS_PLACEHOLDER_URL)
    if not spec.tls.internal:
        return config.Redis(url=names.redis_url(proxy))
    return config.Redis.model_validate(
        {"url": names.redis_url(proxy, tls=True), "tls": {"caFile": tls.internal_ca_file()}}
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
