"""The operator's own settings, read from ``WEATHER_OPERATOR_*`` environment variables.

Every field is documented where it is declared; the environment variable is the
field name upper-cased with the ``WEATHER_OPERATOR_`` prefix. A bad value fails
at startup with an error naming the variable and the rule it broke.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from weather_operator.api import constants

ENV_PREFIX = "WEATHER_OPERATOR_"


class SettingsError(ValueError):
    """An environment variable holds a value the operator cannot use."""


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    """Typed settings of the operator process."""

    default_image: str = constants.DEFAULT_PROXY_IMAGE
    """Proxy image for WeatherProxies that name none (``WEATHER_OPERATOR_DEFAULT_IMAGE``)."""

    monitoring_recheck_seconds: float = 60.0
    """How long the answer "are the Prometheus Operator CRDs installed?" is cached; a fleet
    whose monitoring state differs from the new answer is reconciled at once
    (``WEATHER_OPERATOR_MONITORING_RECHECK_SECONDS``)."""

    drift_interval_seconds: float = 60.0
    """Period of the drift repair: every child of every fleet is re-applied (SSA, a no-op
    when nothing drifted) (``WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS``). A deleted or edited
    child is repaired at once from its watch event; this catches anything missed."""

    key_recheck_seconds: float = 60.0
    """Period of the ApiKey re-check: user Secrets re-read (a changed key is a rotation),
    expiry reflected in status, missing references retried."""

    retry_delay_seconds: float = 10.0
    """Delay before a failed WeatherProxy reconcile is retried (``WEATHER_OPERATOR_RETRY_DELAY_SECONDS``)."""

    namespace: str | None = None
    """Namespace of the operator's own pod (``WEATHER_OPERATOR_NAMESPACE``, downward API);
    reported as the Events' source instance. Unset outside a cluster."""

    watch_namespace: str | None = None
    """Watch only this namespace instead of all of them (``--namespace`` instead of ``-A``)."""

    peering_name: str = "weather-operator"
    """Name of the (Cluster)KopfPeering object used for active/passive HA."""

    peering_priority: int = 0
    """Peering priority of this replica; the highest priority replica is the active one, the
    others stand by. ``0`` (the default) derives it from the pod's name, so the replicas of
    one Deployment get distinct priorities: Kopf freezes replicas of EQUAL priority."""

    peering_lifetime_seconds: int = 60
    """How long this replica's peering record stays valid without a refresh: a standby
    takes over this long after the active replica dies (``WEATHER_OPERATOR_PEERING_LIFETIME_SECONDS``)."""

    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"
    """Kopf's liveness endpoint, probed by the kubelet."""

    log_format: str = "json"
    """Kopf log format: ``json``, ``full`` or ``plain``."""

    posting_level: str = "INFO"
    """Lowest log level also posted as a Kubernetes Event of the handled object."""

    watch_server_timeout_seconds: float = 600.0
    """Server-side timeout of watch requests (the API server ends the stream cleanly)."""

    watch_client_timeout_seconds: float = 660.0
    """Client-side timeout of watch requests; a little above the server-side one."""

    connect_timeout_seconds: float = 30.0
    """TCP/TLS connect timeout of every API request."""

    request_timeout_seconds: float = 60.0
    """Timeout of one non-watch API request."""

    inactivity_timeout_seconds: float = 900.0
    """A watch stream silent for this long is restarted (guards against silently dead watches)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from ``environ`` (default: the process environment); unset fields keep defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            variable = ENV_PREFIX + field.name.upper()
            raw = environ.get(variable)
            if raw is None or raw.strip() == "":
                continue
            values[field.name] = _parse(variable, field.default, raw.strip())
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject values that cannot work, naming the variable."""
        for name in (
            "peering_lifetime_seconds",
            "monitoring_recheck_seconds",
            "drift_interval_seconds",
            "key_recheck_seconds",
            "retry_delay_seconds",
            "watch_server_timeout_seconds",
            "watch_client_timeout_seconds",
            "connect_timeout_seconds",
            "request_timeout_seconds",
            "inactivity_timeout_seconds",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be greater than 0")
        if self.log_format not in {"json", "full", "plain"}:
            raise SettingsError(f"{ENV_PREFIX}LOG_FORMAT: must be one of json, full, plain")
        if self.posting_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(f"{ENV_PREFIX}POSTING_LEVEL: must be a log level name such as INFO")
        if not self.default_image:
            raise SettingsError(f"{ENV_PREFIX}DEFAULT_IMAGE: must not be empty")


def _parse(variable: str, default: Any, raw: str) -> Any:
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{variable}: must be a number of seconds, got {raw!r}") from None
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{variable}: must be an integer, got {raw!r}") from None
    return raw
