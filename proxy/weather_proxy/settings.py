"""The environment's say over the config file (DESIGN §4, operator contract).

* ``WEATHER_PROXY_CONFIG``: path of config.yaml (read by ``__main__``);
* ``WEATHER_PROXY_REDIS_URL``: overrides ``redis.url``, and enables Redis when the file has none;
* ``REDIS_PASSWORD``: the Redis password (never in the file, never logged);
* ``WEATHER_PROXY_ANALYTICS_DATABASE_URL``: overrides ``analytics.database.url`` when the file has
  an ``analytics`` section (an External database's URL kept in a Secret);
* ``ANALYTICS_DATABASE_PASSWORD``: the analytics database's password (never in the file, never logged).
"""

from __future__ import annotations

from collections.abc import Mapping

from weather_proxy import config as config_mod

ENV_CONFIG = "WEATHER_PROXY_CONFIG"
ENV_REDIS_URL = "WEATHER_PROXY_REDIS_URL"
ENV_REDIS_PASSWORD = "REDIS_PASSWORD"  # noqa: S105  # nosec B105 - the variable's name, not a password
ENV_ANALYTICS_URL = "WEATHER_PROXY_ANALYTICS_DATABASE_URL"
ENV_ANALYTICS_PASSWORD = config_mod.ANALYTICS_PASSWORD_ENV


def with_env(cfg: config_mod.ProxyConfig, environ: Mapping[str, str]) -> config_mod.ProxyConfig:
    """The config with environment overrides applied (raises ConfigError on a bad URL)."""
    url = environ.get(ENV_REDIS_URL)
    if url:
        try:
            redis = config_mod.Redis(url=url)
        except ValueError as exc:
            raise config_mod.ConfigError(f"{ENV_REDIS_URL}: {exc}") from exc
        cfg = cfg.model_copy(update={"redis": redis})
    analytics_url = environ.get(ENV_ANALYTICS_URL)
    if analytics_url and cfg.analytics is not None:
        try:
            database = cfg.analytics.database.model_copy(update={"url": analytics_url})
            database = config_mod.AnalyticsDatabase.model_validate(database.model_dump())
        except ValueError as exc:
            raise config_mod.ConfigError(f"{ENV_ANALYTICS_URL}: {exc}") from exc
        cfg = cfg.model_copy(update={"analytics": cfg.analytics.model_copy(update={"database": database})})
    return cfg


def redis_password(environ: Mapping[str, str]) -> str | None:
    return environ.get(ENV_REDIS_PASSWORD) or None


def analytics_password(environ: Mapping[str, str]) -> str | None:
    return environ.get(ENV_ANALYTICS_PASSWORD) or None
