"""The environment's say over the config file (docs/contracts.md, Configuration files).

* ``WEATHER_PROXY_CONFIG``: path of config.yaml (read by ``__main__``);
* ``WEATHER_PROXY_REDIS_URL``: overrides ``redis.url``, and enables Redis when the file has none;
* ``REDIS_PASSWORD``: the Redis password (never in the file, never logged);
* ``WEATHER_PROXY_ANALYTICS_DATABASE_URL``: overrides ``analytics.database.url`` when the file has
  an ``analytics`` section (an External database's URL kept in a Secret);
* ``ANALYTICS_DATABASE_PASSWORD``: the analytics database's password (never in the file, never logged);
* ``SENTRY_DSN``: where error reports go (none without it); ``SENTRY_ENVIRONMENT``: the environment
  they are filed under (default: the config's ``environment``); ``SENTRY_TRACES_SAMPLE_RATE``:
  Sentry's trace sample rate, 0 to 1 (default 0).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from weather_proxy import config as config_mod
from weather_proxy import contract

# The operator sets them (``weather_proxy.contract``).
ENV_CONFIG = contract.ENV_CONFIG
ENV_REDIS_URL = contract.ENV_REDIS_URL
ENV_REDIS_PASSWORD = contract.ENV_REDIS_PASSWORD
ENV_ANALYTICS_URL = contract.ENV_ANALYTICS_URL
ENV_ANALYTICS_PASSWORD = contract.ENV_ANALYTICS_PASSWORD
ENV_SENTRY_DSN = contract.ENV_SENTRY_DSN
ENV_SENTRY_ENVIRONMENT = contract.ENV_SENTRY_ENVIRONMENT
ENV_SENTRY_TRACES_SAMPLE_RATE = contract.ENV_SENTRY_TRACES_SAMPLE_RATE


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


@dataclasses.dataclass(frozen=True)
class ErrorTracking:
    """Where error reports go and how they are filed (``observability.errortracking``)."""

    dsn: str = dataclasses.field(repr=False)  # holds the project's key: never logged
    environment: str
    traces_sample_rate: float


def error_tracking(environ: Mapping[str, str], cfg: config_mod.ProxyConfig) -> ErrorTracking | None:
    """The error-tracking settings; None (no reports, the SDK never imported) without a DSN."""
    dsn = environ.get(ENV_SENTRY_DSN, "").strip()
    if not dsn:
        return None
    raw = environ.get(ENV_SENTRY_TRACES_SAMPLE_RATE, "").strip() or "0"
    try:
        rate = float(raw)
    except ValueError:
        rate = math.nan
    if not 0.0 <= rate <= 1.0:
        raise config_mod.ConfigError(
            f"{ENV_SENTRY_TRACES_SAMPLE_RATE}: must be a number from 0 to 1, got {raw[:20]!r}"
        )
    environment = environ.get(ENV_SENTRY_ENVIRONMENT, "").strip() or cfg.environment.value
    return ErrorTracking(dsn=dsn, environment=environment, traces_sample_rate=rate)
