"""The proxy's environment variables, read in one place: ``ProxySettings``.

The operator sets most of them (``weather_proxy.contract``, docs/contracts.md, Configuration
files); each field below documents its variable. A variable set to nothing counts as unset.
A bad value stops the process with ``VARIABLE: rule`` (``config.ConfigError``). Secrets
(the passwords, the DSN) are ``SecretStr``: never in a repr, a log line or an error.

``ProxySettings.from_env(environ)`` reads a given mapping (tests, the operator's contract
checks) or, by default, the process environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
import pydantic_settings

from weather_proxy import config as config_mod
from weather_proxy import contract

ENV_CONFIG = contract.ENV_CONFIG
ENV_REDIS_URL = contract.ENV_REDIS_URL
ENV_REDIS_PASSWORD = contract.ENV_REDIS_PASSWORD
ENV_ANALYTICS_URL = contract.ENV_ANALYTICS_URL
ENV_ANALYTICS_PASSWORD = contract.ENV_ANALYTICS_PASSWORD
ENV_SENTRY_DSN = contract.ENV_SENTRY_DSN
ENV_SENTRY_ENVIRONMENT = contract.ENV_SENTRY_ENVIRONMENT
ENV_SENTRY_TRACES_SAMPLE_RATE = contract.ENV_SENTRY_TRACES_SAMPLE_RATE
ENV_WORKERS = contract.ENV_WORKERS
ENV_CPU_REQUEST = contract.ENV_CPU_REQUEST_MILLICORES
ENV_METRICS_DIR = contract.ENV_METRICS_DIR
ENV_BREAKER_SCOPE = contract.ENV_BREAKER_SCOPE
# Not the operator's: what ``weather-proxy --log-format`` hands the worker processes it spawns.
ENV_LOG_FORMAT = "WEATHER_PROXY_LOG_FORMAT"


def _stripped(value: Any) -> Any:
    """Blanks around a value are not part of it; only blanks is unset."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _whole_number(rule: str, minimum: int | None) -> pydantic.BeforeValidator:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        # int() would also take "1_000", " +3 " or "٣": a count is plain digits.
        number = int(text) if text.isascii() and text.lstrip("-").isdigit() else None
        if number is None or (minimum is not None and number < minimum):
            raise ValueError(f"{rule}, got {text[:20]!r}")
        return number

    return pydantic.BeforeValidator(parse)


def _sample_rate(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"must be a number from 0 to 1, got {text[:20]!r}")
    return rate


def _redis_url(value: str | None) -> str | None:
    if value is not None:
        try:
            config_mod.Redis(url=value)
        except pydantic.ValidationError as exc:
            raise ValueError(_first_message(exc)) from None
    return value


def _first_message(exc: pydantic.ValidationError) -> str:
    return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())


Stripped = Annotated[str | None, pydantic.BeforeValidator(_stripped)]
StrippedSecret = Annotated[pydantic.SecretStr | None, pydantic.BeforeValidator(_stripped)]


def _alias(variable: str) -> Any:
    return pydantic.Field(default=None, validation_alias=variable)


class _Environment(pydantic_settings.EnvSettingsSource):
    """The variables of the process environment or of a given mapping; empty ones are unset."""

    def __init__(
        self, settings_cls: type[pydantic_settings.BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        self._environ = os.environ if environ is None else environ
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The hook through which pydantic-settings' own sources supply their variables.
        return {name: value for name, value in self._environ.items() if value}


class ProxySettings(pydantic_settings.BaseSettings):
    """Everything the proxy reads from its environment, typed and checked at start."""

    model_config = pydantic_settings.SettingsConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, use_attribute_docstrings=True
    )

    config_path: str | None = _alias(ENV_CONFIG)
    """WEATHER_PROXY_CONFIG: the config.yaml to load and hot-reload (``--config`` wins); unset,
    the built-in defaults."""

    redis_url: Annotated[str | None, pydantic.AfterValidator(_redis_url)] = _alias(ENV_REDIS_URL)
    """WEATHER_PROXY_REDIS_URL: overrides ``redis.url``, and enables Redis when the file has none."""

    redis_password: pydantic.SecretStr | None = _alias(ENV_REDIS_PASSWORD)
    """REDIS_PASSWORD: the Redis password (never in the file, never logged); also the secret that
    keys anonymous callers' ids, alike on every replica of a fleet."""

    analytics_database_url: str | None = _alias(ENV_ANALYTICS_URL)
    """WEATHER_PROXY_ANALYTICS_DATABASE_URL: overrides ``analytics.database.url`` when the file
    has an ``analytics`` section (an External database's URL kept in a Secret)."""

    analytics_database_password: pydantic.SecretStr | None = _alias(ENV_ANALYTICS_PASSWORD)
    """ANALYTICS_DATABASE_PASSWORD: the analytics database's password (never in the file, never logged)."""

    sentry_dsn: StrippedSecret = _alias(ENV_SENTRY_DSN)
    """SENTRY_DSN: where error reports go; unset, none are sent and the SDK is never imported."""

    sentry_environment: Stripped = _alias(ENV_SENTRY_ENVIRONMENT)
    """SENTRY_ENVIRONMENT: the environment reports are filed under (default: the config's
    ``environment``)."""

    sentry_traces_sample_rate: Annotated[float, pydantic.BeforeValidator(_sample_rate)] = pydantic.Field(
        default=0.0, validation_alias=ENV_SENTRY_TRACES_SAMPLE_RATE
    )
    """SENTRY_TRACES_SAMPLE_RATE: Sentry's trace sample rate, 0 to 1 (default 0)."""

    workers: Annotated[int | None, _whole_number("must be a whole number >= 1", 1)] = _alias(ENV_WORKERS)
    """WEATHER_PROXY_WORKERS: server processes behind the port (overrides config.yaml's
    ``workers``; ``--workers`` wins)."""

    cpu_request_millicores: Annotated[
        int | None, _whole_number("must be a whole number of millicores", None)
    ] = _alias(ENV_CPU_REQUEST)
    """WEATHER_PROXY_CPU_REQUEST_MILLICORES: the container's CPU request (the Downward API's
    ``requests.cpu`` with divisor 1m), the default of ``workers`` when it has no CPU limit."""

    breaker_scope: Annotated[str | None, pydantic.Field(pattern=r"^[A-Za-z0-9._-]{1,63}$")] = _alias(
        ENV_BREAKER_SCOPE
    )
    """WEATHER_PROXY_BREAKER_SCOPE: the replicas sharing this process's circuit breaker state in Redis
    (letters, digits, ``.``, ``_``, ``-``; unset: the whole fleet). The operator sets it on a blue/green
    slot's pods (their pod-template-hash): a candidate and the serving slot never share a breaker."""

    metrics_dir: Stripped = _alias(ENV_METRICS_DIR)
    """PROMETHEUS_MULTIPROC_DIR: where several workers' metric files go (prometheus-client's own
    name; default /tmp/weather-proxy-metrics)."""

    log_format: Literal["json", "text"] = pydantic.Field(default="json", validation_alias=ENV_LOG_FORMAT)
    """WEATHER_PROXY_LOG_FORMAT: the log line format a spawned worker uses (set by its supervisor
    from ``--log-format``)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[pydantic_settings.BaseSettings],
        init_settings: pydantic_settings.PydanticBaseSettingsSource,
        env_settings: pydantic_settings.PydanticBaseSettingsSource,
        dotenv_settings: pydantic_settings.PydanticBaseSettingsSource,
        file_secret_settings: pydantic_settings.PydanticBaseSettingsSource,
    ) -> tuple[pydantic_settings.PydanticBaseSettingsSource, ...]:
        # Arguments first, then the variables; no .env file and no secrets directory.
        return init_settings, _Environment(settings_cls)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxySettings:
        """The settings of ``environ`` (default: the process environment); raises ConfigError."""
        try:
            if environ is None:
                return cls()
            return cls.model_validate(_Environment(cls, environ)())
        except pydantic.ValidationError as exc:
            raise config_mod.ConfigError("; ".join(_describe(error) for error in exc.errors())) from None

    def apply(self, cfg: config_mod.ProxyConfig) -> config_mod.ProxyConfig:
        """The config with this environment's overrides (raises ConfigError on a bad analytics URL)."""
        if self.redis_url is not None:
            # The file's CA still verifies a rediss:// URL given here; a plaintext URL has no use for it.
            keep_tls = cfg.redis is not None and self.redis_url.startswith("rediss://")
            tls = cfg.redis.tls if cfg.redis is not None and keep_tls else None
            cfg = cfg.model_copy(update={"redis": config_mod.Redis(url=self.redis_url, tls=tls)})
        if self.analytics_database_url is not None and cfg.analytics is not None:
            try:
                database = cfg.analytics.database.model_copy(update={"url": self.analytics_database_url})
                database = config_mod.AnalyticsDatabase.model_validate(database.model_dump())
            except pydantic.ValidationError as exc:
                raise config_mod.ConfigError(f"{ENV_ANALYTICS_URL}: {_first_message(exc)}") from None
            analytics = cfg.analytics.model_copy(update={"database": database})
            cfg = cfg.model_copy(update={"analytics": analytics})
        return cfg

    def error_tracking(self, cfg: config_mod.ProxyConfig) -> ErrorTracking | None:
        """Where error reports go; None (no reports, the SDK never imported) without a DSN."""
        if self.sentry_dsn is None:
            return None
        return ErrorTracking(
            dsn=self.sentry_dsn.get_secret_value(),
            environment=self.sentry_environment or cfg.environment.value,
            traces_sample_rate=self.sentry_traces_sample_rate,
        )

    def secret(self, name: Literal["redis_password", "analytics_database_password"]) -> str | None:
        """A password's plain value, for the client that sends it; None when unset."""
        value: pydantic.SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else None


@dataclasses.dataclass(frozen=True)
class ErrorTracking:
    """Where error reports go and how they are filed (``observability.errortracking``)."""

    dsn: str = dataclasses.field(repr=False)  # holds the project's key: never logged
    environment: str
    traces_sample_rate: float


def describe() -> str:
    """Every variable with its documentation: the environment part of ``weather-proxy --help``."""
    lines = []
    for field in ProxySettings.model_fields.values():
        variable, _, text = (field.description or "").partition(": ")
        lines.append(f"  {variable}")
        lines.extend("      " + line.strip().replace("``", "") for line in text.splitlines())
    return "\n".join(lines)


def _describe(error: Mapping[str, Any]) -> str:
    """``VARIABLE: rule`` for one validation error (the value is never shown: it may be a secret)."""
    variable = str(error["loc"][0]) if error["loc"] else "environment"
    context: dict[str, Any] = dict(error.get("ctx") or {})
    if error["type"] == "value_error":
        rule = str(context["error"])
    elif error["type"] == "literal_error":
        rule = f"must be one of {context['expected']}"
    else:
        rule = str(error["msg"])
    return f"{variable}: {rule}"


# The operator's contract tests read a rendered pod's environment as the proxy does.
def with_env(cfg: config_mod.ProxyConfig, environ: Mapping[str, str]) -> config_mod.ProxyConfig:
    """``cfg`` with the overrides of ``environ``."""
    return ProxySettings.from_env(environ).apply(cfg)


def redis_password(environ: Mapping[str, str]) -> str | None:
    """The Redis password ``environ`` holds."""
    return ProxySettings.from_env(environ).secret("redis_password")


def error_tracking(environ: Mapping[str, str], cfg: config_mod.ProxyConfig) -> ErrorTracking | None:
    """The error-tracking settings ``environ`` holds, for ``cfg``."""
    return ProxySettings.from_env(environ).error_tracking(cfg)
