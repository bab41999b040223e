"""The environment's say over the config file (DESIGN §4, operator contract).

* ``WEATHER_PROXY_CONFIG``: path of config.yaml (read by ``__main__``);
* ``WEATHER_PROXY_REDIS_URL``: overrides ``redis.url``, and enables Redis when the file has none;
* ``REDIS_PASSWORD``: the Redis password (never in the file, never logged).
"""

from __future__ import annotations

from collections.abc import Mapping

from weather_proxy import config as config_mod

ENV_CONFIG = "WEATHER_PROXY_CONFIG"
ENV_REDIS_URL = "WEATHER_PROXY_REDIS_URL"
ENV_REDIS_PASSWORD = "REDIS_PASSWORD"  # noqa: S105  # nosec B105 - the variable's name, not a password


def with_env(cfg: config_mod.ProxyConfig, environ: Mapping[str, str]) -> config_mod.ProxyConfig:
    """The config with environment overrides applied (raises ConfigError on a bad URL)."""
    url = environ.get(ENV_REDIS_URL)
    if not url:
        return cfg
    try:
        redis = config_mod.Redis(url=url)
    except ValueError as exc:
        raise config_mod.ConfigError(f"{ENV_REDIS_URL}: {exc}") from exc
    return cfg.model_copy(update={"redis": redis})


def redis_password(environ: Mapping[str, str]) -> str | None:
    return environ.get(ENV_REDIS_PASSWORD) or None
