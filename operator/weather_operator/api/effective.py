"""The fully-resolved WeatherProxy spec: every preset applied, nothing left to guess.

Renderers read only these models, so a renderer never knows about presets and a
preset never knows about a renderer.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict

from weather_proxy import config


class Resolved(BaseModel):
    """Base of the resolved models: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EffectiveAutoscaling(Resolved):
    enabled: bool
    min_replicas: int
    max_replicas: int
    target_cpu_utilization_percentage: int


class EffectiveDisruption(Resolved):
    enabled: bool
    # Exactly one of the two is set when enabled.
    min_available: int | str | None
    max_unavailable: int | str | None


class EffectiveResources(Resolved):
    requests: dict[str, int | str]
    limits: dict[str, int | str]

    def to_dict(self) -> dict[str, dict[str, int | str]]:
        """The Kubernetes ``resources`` block (empty sections left out)."""
        out: dict[str, dict[str, int | str]] = {}
        if self.requests:
            out["requests"] = dict(self.requests)
        if self.limits:
            out["limits"] = dict(self.limits)
        return out


class SecretKeySelector(Resolved):
    name: str
    key: str


class EffectiveRedis(Resolved):
    managed: bool
    image: str
    persistence_enabled: bool
    persistence_size: str
    storage_class_name: str | None
    resources: EffectiveResources
    # Set when not managed: where the proxy reads its redis URL from.
    url_secret_ref: SecretKeySelector | None


class EffectiveServiceMonitor(Resolved):
    enabled: bool
    interval: str
    labels: dict[str, str]


class EffectiveSlo(Resolved):
    """``spec.monitoring.slo`` with its defaults applied."""

    availability_percent: float
    latency_threshold_seconds: float
    latency_percent: float
    min_requests_per_second: float


class EffectiveAlerts(Resolved):
    enabled: bool
    error_rate_percent: float
    p95_latency_seconds: float
    # In the alerts rather than beside them: the PrometheusRule, rendered from these, is the only
    # reader of the objectives.
    slo: EffectiveSlo
    runbook_base_url: str
    labels: dict[str, str]

    @property
    def availability_target_percent(self) -> float:
        """``slo.availability_percent`` under its older name."""
        return self.slo.availability_percent


class EffectiveMonitoring(Resolved):
    service_monitor: EffectiveServiceMonitor
    alerts: EffectiveAlerts


class EffectivePodLogs(Resolved):
    """``spec.logging.podLogs``: a Grafana PodLogs for the proxy pods, where its CRD is served."""

    enabled: bool
    labels: dict[str, str]


class EffectiveIngress(Resolved):
    enabled: bool
    host: str | None
    path: str
    class_name: str | None
    tls_secret_name: str | None
    annotations: dict[str, str]


class SpreadMode(enum.StrEnum):
    """How hard the proxy pods are spread over nodes and zones (``spec.topologySpread.mode``)."""

    SOFT = "Soft"
    HARD = "Hard"
    OFF = "Off"


class EffectiveAnalytics(Resolved):
    """``spec.analytics`` with its preset applied."""

    enabled: bool
    managed: bool
    # Managed: the image for the StatefulSet (always set) and for a CloudNativePG Cluster (None: CNPG's).
    image: str
    cnpg_image: str | None
    instances: int
    storage_size: str
    storage_class_name: str | None
    resources: EffectiveResources
    # External: where the proxy reads the URL and (optionally) the password from.
    url_secret_ref: SecretKeySelector | None
    password_secret_ref: SecretKeySelector | None
    retention_days: int
    erase_on_key_delete: bool


class TlsMode(enum.StrEnum):
    """Who makes the proxies' serving certificate (``spec.tls.mode``)."""

    OFF = "Off"
    MANAGED = "Managed"
    CERT_MANAGER = "CertManager"
    SECRET = "Secret"  # noqa: S105  # nosec B105 - a mode's name


class IssuerKind(enum.StrEnum):
    """The kind of a cert-manager issuer (``spec.tls.issuerRef.kind``)."""

    ISSUER = "Issuer"
    CLUSTER_ISSUER = "ClusterIssuer"


class EffectiveTls(Resolved):
    """``spec.tls`` with its preset applied."""

    mode: TlsMode
    dns_names: tuple[str, ...]
    # CertManager: the issuer of the proxies' Certificate.
    issuer_name: str | None
    issuer_kind: IssuerKind
    # Secret: the user's kubernetes.io/tls Secret.
    secret_name: str | None
    # Redis and PostgreSQL serve TLS only, with leaves of the fleet's CA (always False when mode is Off).
    internal: bool

    @property
    def enabled(self) -> bool:
        return self.mode is not TlsMode.OFF


class EffectiveErrorTracking(Resolved):
    """``spec.errorTracking`` resolved: off unless set."""

    enabled: bool
    # Set when enabled: where the proxy reads its SENTRY_DSN from.
    dsn_secret_ref: SecretKeySelector | None
    environment: str
    traces_sample_rate: float


class StrategyType(enum.StrEnum):
    """How a new pod template reaches the pods (``spec.strategy.type``)."""

    ROLLING_UPDATE = "RollingUpdate"
    BLUE_GREEN = "BlueGreen"


class AnalysisSpec(Resolved):
    """``spec.strategy.blueGreen.analysis`` resolved: what a candidate slot must show to be promoted."""

    duration_seconds: int
    min_requests: int
    max_error_ratio: float
    max_p95_seconds: float
    smoke_requests_per_second: float


class EffectiveBlueGreen(Resolved):
    """``spec.strategy.blueGreen`` resolved (docs/rollouts.md)."""

    auto_promote: bool
    scale_down_delay_seconds: int
    progress_deadline_seconds: int
    analysis: AnalysisSpec


class EffectiveStrategy(Resolved):
    type: StrategyType
    blue_green: EffectiveBlueGreen

    @property
    def blue_green_enabled(self) -> bool:
        return self.type is StrategyType.BLUE_GREEN


class EffectiveSpec(Resolved):
    """What a WeatherProxy means once its environment preset is applied."""

    environment: config.Environment
    image: str
    replicas: int
    autoscaling: EffectiveAutoscaling
    disruption: EffectiveDisruption
    resources: EffectiveResources
    upstream: config.Upstream
    cache: config.Cache
    rate_limit: config.RateLimit
    auth_required: bool
    http: config.Http
    log_level: str
    server: config.Server
    tracing: config.Tracing
    redis: EffectiveRedis
    monitoring: EffectiveMonitoring
    pod_logs: EffectivePodLogs
    ingress: EffectiveIngress
    topology_spread: SpreadMode
    analytics: EffectiveAnalytics
    error_tracking: EffectiveErrorTracking
    tls: EffectiveTls
    strategy: EffectiveStrategy
