"""The operator's own settings, read from ``WEATHER_OPERATOR_*`` environment variables.

Every field is documented where it is declared (the docstring is also its line in
``weather-operator --help``); the environment variable is the field name upper-cased with
the ``WEATHER_OPERATOR_`` prefix. A blank variable keeps the default. A bad value fails at
startup with an error naming the variable and the rule it broke.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import pydantic
import pydantic_settings

from weather_operator.api import constants

ENV_PREFIX = "WEATHER_OPERATOR_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Seconds = Annotated[float, pydantic.Field(gt=0)]


class SettingsError(ValueError):
    """An environment variable holds a value the operator cannot use."""


class _Environment(pydantic_settings.EnvSettingsSource):
    """``WEATHER_OPERATOR_*`` variables of the process environment or of a given mapping.

    Values are stripped and blank ones left out, so that a variable set to nothing (a
    Kubernetes ``value: ""``, an empty ConfigMap key) keeps the default.
    """

    def __init__(
        self, settings_cls: type[pydantic_settings.BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        self._environ = os.environ if environ is None else environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The hook through which pydantic-settings' own dotenv source supplies other variables.
        return {name.lower(): value.strip() for name, value in self._environ.items() if value.strip()}


class OperatorSettings(pydantic_settings.BaseSettings):
    """Typed settings of the operator process."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", use_attribute_docstrings=True
    )

    default_image: str = pydantic.Field(default=constants.DEFAULT_PROXY_IMAGE, min_length=1)
    """Proxy image for WeatherProxies that name none."""

    monitoring_recheck_seconds: Seconds = 60.0
    """How long the answer "are the Prometheus Operator CRDs installed?" is cached; a fleet
    whose monitoring state differs from the new answer is reconciled at once."""

    drift_interval_seconds: Seconds = 600.0
    """Period of the drift repair: every child of every fleet is re-applied (SSA, a no-op
    when nothing drifted), the fleets spread over the period. A deleted or edited child is
    repaired at once from its watch event; this catches anything missed."""

    key_recheck_seconds: Seconds = 300.0
    """Period of the ApiKey re-check of keys read from a user's Secret (a changed key is a
    rotation) and of keys with a problem (a missing Secret), spread over the period.
    Expiry and a WeatherProxy appearing or going away are handled when they happen."""

    not_ready_recheck_seconds: Seconds = 30.0
    """While a fleet's proxies, Redis or PostgreSQL are not ready, how often the fleet's status is
    computed again from their pods (read then, by the child's selector, never watched): a pod
    going from ``ContainerCreating`` to ``ImagePullBackOff`` changes no Deployment or StatefulSet."""

    retry_delay_seconds: Seconds = 1.0
    """Delay before a failed reconcile is retried; each further failure of the same object
    waits longer (about doubling, at most 60 s)."""

    reconcile_workers: int = pydantic.Field(default=16, ge=1, le=64)
    """Reconciles run at once (one object is never reconciled by two at a time)."""

    api_connections: int = pydantic.Field(default=32, ge=1, le=256)
    """Connections the operator's API client keeps open to the API server (its writes and reads)."""

    metrics_port: int = pydantic.Field(default=8081, ge=0, le=65535)
    """Port of the operator's Prometheus ``/metrics`` endpoint; 0 turns it off."""

    namespace: str | None = None
    """Namespace of the operator's own pod (downward API); reported as the Events' source
    instance. Unset outside a cluster."""

    watch_namespace: str | None = None
    """Watch only this namespace instead of all of them (``--namespace`` instead of ``-A``)."""

    peering_name: str = "weather-operator"
    """Name of the (Cluster)KopfPeering object used for active/passive HA."""

    peering_priority: int = 0
    """Peering priority of this replica; the highest priority replica is the active one, the
    others stand by. ``0`` (the default) derives it from the pod's name, so the replicas of
    one Deployment get distinct priorities: Kopf freezes replicas of EQUAL priority."""

    peering_lifetime_seconds: int = pydantic.Field(default=60, gt=0)
    """How long this replica's peering record stays valid without a refresh: a standby
    takes over this long after the active replica dies."""

    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"
    """Kopf's liveness endpoint, probed by the kubelet."""

    log_format: Literal["json", "full", "plain"] = "json"
    """Kopf log format: ``json``, ``full`` or ``plain``."""

    posting_level: str = "INFO"
    """Lowest log level also posted as a Kubernetes Event of the handled object."""

    watch_server_timeout_seconds: Seconds = 600.0
    """Server-side timeout of watch requests (the API server ends the stream cleanly)."""

    watch_client_timeout_seconds: Seconds = 660.0
    """Client-side timeout of watch requests; a little above the server-side one."""

    connect_timeout_seconds: Seconds = 30.0
    """TCP/TLS connect timeout of every API request."""

    request_timeout_seconds: Seconds = 60.0
    """Timeout of one non-watch API request."""

    inactivity_timeout_seconds: Seconds = 900.0
    """A watch stream silent for this long is restarted (guards against silently dead watches)."""

    sentry_dsn: pydantic.SecretStr | None = None
    """Where the operator sends reports of its own errors (the Sentry protocol): its ERROR log
    lines and reconciles that failed other than by the API server's answer. Unset: none, and
    the SDK is not loaded. Keep it in a Secret (the chart's errorTracking.dsnSecretRef)."""

    sentry_environment: str = pydantic.Field(default="production", min_length=1, max_length=64)
    """The environment the operator's error reports are filed under."""

    @pydantic.field_validator("sentry_dsn")
    @classmethod
    def _a_dsn(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        # Checked here so that a bad one stops the process before Kopf starts; never echoed.
        if value is None:
            return None
        try:
            url = urllib.parse.urlsplit(value.get_secret_value())
            valid = url.scheme in ("http", "https") and bool(url.username and url.hostname)
            valid = valid and url.port != 0 and url.path.rsplit("/", 1)[-1].isdigit()
        except ValueError:  # a port that is not a number
            valid = False
        if not valid:
            raise ValueError("must be a DSN such as https://KEY@HOST/PROJECT (a number)")
        return value

    @pydantic.field_validator("posting_level")
    @classmethod
    def _a_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError("must be a log level name such as INFO")
        return value

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from ``environ`` (default: the process environment); unset fields keep defaults."""
        try:
            if environ is None:
                return cls()
            return cls.model_validate(_Environment(cls, environ)())
        except pydantic.ValidationError as exc:
            raise SettingsError("; ".join(_describe(error) for error in exc.errors())) from None


def variable(field_name: str) -> str:
    """The environment variable of a setting: ``default_image`` -> ``WEATHER_OPERATOR_DEFAULT_IMAGE``."""
    return ENV_PREFIX + field_name.upper()


def variables() -> dict[str, str]:
    """Every setting's environment variable, by field name, in declaration order."""
    return {name: variable(name) for name in OperatorSettings.model_fields}


def describe_settings() -> str:
    """Every setting with its variable, default and documentation: the body of ``--help``."""
    lines = []
    for name, field in OperatorSettings.model_fields.items():
        lines.append(f"  {variable(name)}  (default: {_shown(field.default)})")
        for line in (field.description or "").splitlines():
            lines.append("      " + line.strip().replace("``", ""))
    return "\n".join(lines)


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _describe(error: Mapping[str, Any]) -> str:
    """``VARIABLE: rule`` for one validation error, in the words of the rule it broke."""
    name = str(error["loc"][0]) if error["loc"] else ""
    given = error.get("input")
    kind = error["type"]
    context: dict[str, Any] = dict(error.get("ctx") or {})
    if kind in {"float_parsing", "float_type"}:
        rule = f"must be a number of seconds, got {given!r}"
    elif kind in {"int_parsing", "int_type", "int_from_float"}:
        rule = f"must be an integer, got {given!r}"
    elif kind == "greater_than":
        rule = f"must be greater than {_shown(context['gt'])}"
    elif kind == "literal_error":
        choices = get_args(OperatorSettings.model_fields[name].annotation)
        rule = "must be one of " + ", ".join(str(choice) for choice in choices)
    elif kind == "string_too_short":
        rule = "must not be empty"
    elif kind == "extra_forbidden":
        rule = "is not a setting of the operator"
    elif kind == "value_error":
        rule = str(context["error"])
    else:
        rule = error["msg"]
    return f"{variable(name)}: {rule}"
