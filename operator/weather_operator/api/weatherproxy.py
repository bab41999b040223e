"""The ``WeatherProxy`` custom resource: spec, status, and its effective (preset-applied) form."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, model_validator

from weather_operator.api import analytics as analytics_
from weather_operator.api import base, cel, effective
from weather_operator.api import conditions as conditions_
from weather_proxy import config
from weather_proxy.observability import metrics as proxy_metrics

IMAGE_PATTERN = (
    r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
INTERVAL_PATTERN = r"^[0-9]+(ms|s|m|h)$"
LABEL_VALUE_MAX = 63
# A latency objective is counted from the request-duration histogram's buckets: a threshold
# between two bounds would need interpolation, which makes the SLI an estimate.
LATENCY_BUCKET_BOUNDS: tuple[float, ...] = tuple(proxy_metrics.LATENCY_BUCKETS)
_BOUNDS_CEL = "[" + ", ".join(repr(float(b)) for b in LATENCY_BUCKET_BOUNDS) + "]"
_BOUNDS_TEXT = ", ".join(format(b, "g") for b in LATENCY_BUCKET_BOUNDS)


class Autoscaling(base.CrdModel):
    """A HorizontalPodAutoscaler on CPU; when enabled, spec.replicas is ignored."""

    cel_rules = (
        cel.Rule(
            "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas",
            lambda s: s.min_replicas is None or s.max_replicas is None or s.min_replicas <= s.max_replicas,
            ".minReplicas",
        ),
    )

    enabled: bool | None = Field(
        None, description="Run an HPA. Preset: off in dev, on in staging/production."
    )
    min_replicas: int | None = Field(None, ge=1, le=100, description="Lowest replica count of the HPA.")
    max_replicas: int | None = Field(None, ge=1, le=100, description="Highest replica count of the HPA.")
    target_cpu_utilization_percentage: int | None = Field(
        None,
        ge=1,
        le=100,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU utilization (percent of requests) the HPA aims for.",
    )


class Disruption(base.CrdModel):
    """A PodDisruptionBudget: exactly one of minAvailable or maxUnavailable."""

    cel_rules = (
        cel.Rule(
            "!(has(self.minAvailable) && has(self.maxUnavailable))",
            "spec.disruption must set only one of minAvailable or maxUnavailable",
            lambda s: s.min_available is None or s.max_unavailable is None,
        ),
        cel.Rule(
            "(has(self.enabled) && !self.enabled) || has(self.minAvailable) || has(self.maxUnavailable)",
            "spec.disruption must set exactly one of minAvailable or maxUnavailable",
            lambda s: s.enabled is False or s.min_available is not None or s.max_unavailable is not None,
        ),
    )

    enabled: bool | None = Field(
        None,
        description="Create a PodDisruptionBudget. Unset: true when spec.disruption is set, else the "
        "preset's (off in dev, on in staging/production).",
    )
    min_available: base.IntOrString | None = Field(
        None, description="Pods that must stay available (a number or a percentage like 50%)."
    )
    max_unavailable: base.IntOrString | None = Field(
        None, description="Pods that may be unavailable (a number or a percentage like 25%)."
    )

    @model_validator(mode="after")
    def _int_or_percent(self) -> Disruption:
        # Not in the CRD (an IntOrString has no pattern): a spec breaking it is reported as InvalidSpec.
        for field, value in (("minAvailable", self.min_available), ("maxUnavailable", self.max_unavailable)):
            if isinstance(value, int) and value < 0:
                raise ValueError(f"spec.disruption.{field} must be >= 0")
            if isinstance(value, str) and not _is_percent(value):
                raise ValueError(f"spec.disruption.{field} must be an integer or a percentage like 50%")
        return self


def _is_percent(value: str) -> bool:
    return value.endswith("%") and value[:-1].isdigit() and int(value[:-1]) <= 100


class Resources(base.CrdModel):
    """Compute resources of a container (Kubernetes ResourceRequirements, requests and limits)."""

    requests: dict[str, base.Quantity] | None = Field(
        None, description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}."
    )
    limits: dict[str, base.Quantity] | None = Field(
        None, description="Maximum resources, e.g. {memory: 256Mi}."
    )


class AuthSpec(base.CrdModel):
    required: bool | None = Field(
        None, description="Reject requests without a valid X-API-Key. Preset: true in every environment."
    )


class SecretKeyRef(base.CrdModel):
    """A key of a Secret in the WeatherProxy's namespace."""

    name: str = Field(
        ..., min_length=1, max_length=253, pattern=base.DNS_1123_SUBDOMAIN, description="Secret name."
    )
    key: str = Field(
        ..., min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in the Secret."
    )


class Persistence(base.CrdModel):
    enabled: bool | None = Field(
        None, description="Keep Redis data on a PersistentVolumeClaim. Preset: off in dev, on elsewhere."
    )
    size: str | None = Field(None, pattern=base.QUANTITY, description="Size of the volume, e.g. 1Gi.")
    storage_class_name: str | None = Field(
        None, max_length=253, description="StorageClass of the volume; the cluster default when unset."
    )


class ManagedRedis(base.CrdModel):
    image: str | None = Field(None, max_length=512, pattern=IMAGE_PATTERN, description="Redis image.")
    persistence: Persistence | None = Field(
        None,
        description="A PersistentVolumeClaim for Redis's data, so the cache survives a restart of its pod.",
    )
    resources: Resources | None = Field(None, description="Compute resources of the Redis container.")


class ExternalRedis(base.CrdModel):
    url_secret_ref: SecretKeyRef = Field(
        ..., description="Secret key holding the redis:// or rediss:// URL (with credentials)."
    )


class RedisMode(enum.StrEnum):
    MANAGED = "Managed"
    EXTERNAL = "External"


class RedisSpec(base.CrdModel):
    """Redis shared by the fleet's replicas: Managed (run by the operator) or External."""

    cel_rules = (
        cel.Rule(
            "!has(self.mode) || self.mode != 'External' || has(self.external)",
            "spec.redis.external.urlSecretRef is required when spec.redis.mode is External",
            lambda s: s.mode is not RedisMode.EXTERNAL or s.external is not None,
            ".external",
        ),
    )

    mode: RedisMode | None = Field(None, description="Managed (default) or External.")
    managed: ManagedRedis | None = Field(
        None, description="The Redis the operator runs (a one-replica StatefulSet) when mode is Managed."
    )
    external: ExternalRedis | None = Field(
        None, description="A Redis you run, its URL in a Secret; required when mode is External."
    )


class ServiceMonitorSpec(base.CrdModel):
    enabled: bool | None = Field(
        None, description="Create a ServiceMonitor (when the Prometheus Operator CRDs exist)."
    )
    interval: str | None = Field(None, pattern=INTERVAL_PATTERN, description="Scrape interval, e.g. 30s.")
    labels: dict[str, base.LabelValue] | None = Field(
        None, description="Extra labels, e.g. {release: kube-prometheus-stack} for Prometheus to select it."
    )


class PodLogsSpec(base.CrdModel):
    enabled: bool | None = Field(
        None,
        description="Create a Grafana PodLogs (monitoring.grafana.com/v1alpha2, read by Grafana "
        "Alloy's loki.source.podlogs) selecting the proxy pods, when its CRD is served. Off by default.",
    )
    labels: dict[str, base.LabelValue] | None = Field(
        None, description="Extra labels on the PodLogs, for the collector to select it."
    )


class LoggingSpec(base.CrdModel):
    pod_logs: PodLogsSpec | None = Field(
        None, description="A PodLogs object telling a Grafana Alloy collector to gather the proxies' logs."
    )


class AlertsSpec(base.CrdModel):
    enabled: bool | None = Field(
        None, description="Create a PrometheusRule with alerts. Preset: off in dev, on elsewhere."
    )
    error_rate_percent: float | None = Field(
        None, gt=0, le=100, description="Alert when this percentage of requests fail with 5xx."
    )
    p95_latency_seconds: float | None = Field(
        None, gt=0, le=300, description="Alert when the 95th percentile latency exceeds this."
    )
    availability_target: float | None = Field(
        None,
        ge=50,
        lt=100,
        description="Availability SLO in percent (default 99.9) for burn-rate alerts; "
        "slo.availabilityPercent is its newer name.",
    )
    runbook_base_url: str | None = Field(
        None, max_length=2048, pattern=r"^https?://", description="Base URL of the runbooks."
    )
    labels: dict[str, base.LabelValue] | None = Field(
        None, description="Extra labels on the PrometheusRule object."
    )


class LatencySloSpec(base.CrdModel):
    """The latency objective: the share of requests answered within thresholdSeconds."""

    cel_rules = (
        cel.Rule(
            f"!has(self.thresholdSeconds) || self.thresholdSeconds in {_BOUNDS_CEL}",
            "spec.monitoring.slo.latency.thresholdSeconds must be one of the bucket bounds of the "
            f"proxy's request-duration histogram: {_BOUNDS_TEXT}",
            lambda s: s.threshold_seconds is None or s.threshold_seconds in LATENCY_BUCKET_BOUNDS,
            ".thresholdSeconds",
        ),
    )

    threshold_seconds: float | None = Field(
        None,
        gt=0,
        description="A request slower than this misses the latency objective (default 0.5). One of "
        f"the bucket bounds of weather_proxy_http_request_duration_seconds: {_BOUNDS_TEXT}.",
    )
    percent: float | None = Field(
        None,
        gt=0,
        lt=100,
        description="Share of requests, in percent, that must be answered within thresholdSeconds "
        "over 30 days (default 99).",
    )


class SloSpec(base.CrdModel):
    """Service level objectives: multi-window burn-rate alerts and error-budget recording rules."""

    availability_percent: float | None = Field(
        None,
        gt=0,
        lt=100,
        description="Share of requests, in percent, not answered with a 5xx over 30 days (default "
        "99.9). Health probes and metrics scrapes do not count. Replaces alerts.availabilityTarget; "
        "when both are set they must be equal.",
    )
    latency: LatencySloSpec | None = Field(
        None, description="The latency objective (default: 99% of requests within 0.5 s)."
    )
    min_requests_per_second: float | None = Field(
        None,
        ge=0,
        description="Burn-rate alerts stay silent while the request rate over their long window is "
        "below this (default 0.1): a handful of failed requests at night is not an outage. 0 turns "
        "the guard off.",
    )


class MonitoringSpec(base.CrdModel):
    cel_rules = (
        cel.Rule(
            "!has(self.slo) || !has(self.slo.availabilityPercent) || !has(self.alerts)"
            " || !has(self.alerts.availabilityTarget)"
            " || self.slo.availabilityPercent == self.alerts.availabilityTarget",
            "spec.monitoring.slo.availabilityPercent and spec.monitoring.alerts.availabilityTarget "
            "must be equal when both are set",
            lambda s: (
                s.slo is None
                or s.slo.availability_percent is None
                or s.alerts is None
                or s.alerts.availability_target is None
                or s.slo.availability_percent == s.alerts.availability_target
            ),
            ".slo.availabilityPercent",
        ),
    )

    service_monitor: ServiceMonitorSpec | None = Field(
        None, description="A Prometheus Operator ServiceMonitor scraping the proxies' /metrics."
    )
    alerts: AlertsSpec | None = Field(
        None,
        description="A PrometheusRule: error-rate, p95-latency and SLO burn-rate alerts, error budgets.",
    )
    slo: SloSpec | None = Field(
        None,
        description="Availability and latency objectives the PrometheusRule alerts on (with "
        "alerts.enabled) and records error budgets for.",
    )


class TracingSpec(base.CrdModel):
    enabled: bool | None = Field(None, description="Export spans; on when otlpEndpoint is set.")
    otlp_endpoint: str | None = Field(
        None, max_length=2048, pattern=r"^https?://", description="OTLP/HTTP endpoint of the collector."
    )
    sample_ratio: float | None = Field(None, ge=0, le=1, description="Fraction of requests traced.")


class ErrorTrackingSpec(base.CrdModel):
    """Error reports from the proxy pods in the Sentry protocol: unhandled errors and 5xx answers.

    Without personal data: no client address, API key, user agent or query as typed; the
    route, the place (a city, or coordinates to 0.1 degree) and the request id instead.
    """

    dsn_secret_ref: SecretKeyRef = Field(
        ...,
        description="Secret key holding the DSN the reports go to (https://KEY@HOST/PROJECT), the "
        "pods' SENTRY_DSN. The pods cannot start while the Secret or its key is missing: "
        "condition ErrorTrackingConfigured says so (SecretNotFound).",
    )
    environment: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The environment the reports are filed under; spec.environment when unset.",
    )
    traces_sample_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Sentry's trace sample rate, 0 (the default) to 1. The proxy starts no Sentry "
        "transaction (its traces are OpenTelemetry's: spec.tracing), so reports stay errors only.",
    )


class IngressSpec(base.CrdModel):
    cel_rules = (
        cel.Rule(
            "!has(self.enabled) || !self.enabled || has(self.host)",
            "spec.ingress.host is required when spec.ingress.enabled is true",
            lambda s: not s.enabled or s.host is not None,
            ".host",
        ),
    )

    enabled: bool | None = Field(None, description="Expose the fleet through an Ingress.")
    host: str | None = Field(
        None, max_length=253, pattern=base.DNS_1123_SUBDOMAIN, description="Host name of the Ingress rule."
    )
    path: str | None = Field(None, max_length=1024, pattern=r"^/", description="Path prefix (default /).")
    class_name: str | None = Field(None, max_length=253, description="IngressClass name.")
    tls_secret_name: str | None = Field(
        None, max_length=253, pattern=base.DNS_1123_SUBDOMAIN, description="Secret with the TLS certificate."
    )
    annotations: dict[str, base.AnnotationValue] | None = Field(
        None, description="Annotations of the Ingress object."
    )


class IssuerRef(base.CrdModel):
    """A cert-manager issuer of the proxies' certificate."""

    name: str = Field(
        ..., min_length=1, max_length=253, pattern=base.DNS_1123_SUBDOMAIN, description="Issuer name."
    )
    kind: effective.IssuerKind | None = Field(
        None,
        description="Issuer (in the WeatherProxy's namespace, the default) or ClusterIssuer.",
    )


DNS_NAME_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class TlsSpec(base.CrdModel):
    """TLS on every hop of the fleet: clients to the proxies, the proxies to Redis and PostgreSQL."""

    cel_rules = (
        cel.Rule(
            "!has(self.mode) || self.mode != 'CertManager' || has(self.issuerRef)",
            "spec.tls.issuerRef is required when spec.tls.mode is CertManager",
            lambda s: s.mode is not effective.TlsMode.CERT_MANAGER or s.issuer_ref is not None,
            ".issuerRef",
        ),
        cel.Rule(
            "!has(self.mode) || self.mode != 'Secret' || has(self.secretName)",
            "spec.tls.secretName is required when spec.tls.mode is Secret",
            lambda s: s.mode is not effective.TlsMode.SECRET or s.secret_name is not None,
            ".secretName",
        ),
    )

    mode: effective.TlsMode | None = Field(
        None,
        description="Off: plain HTTP. Managed: the operator keeps a CA per fleet (Secret "
        "<name>-tls-ca) and issues and renews the certificates itself. CertManager: a cert-manager "
        "Certificate from issuerRef serves the proxies (Redis and PostgreSQL keep the fleet's CA). "
        "Secret: your kubernetes.io/tls Secret secretName serves the proxies. Preset: Off in dev, "
        "Managed in staging/production.",
    )
    dns_names: (
        list[
            Annotated[
                str,
                Field(
                    max_length=253,
                    pattern=DNS_NAME_PATTERN,
                    description="A DNS name, e.g. weather.example.com or *.example.com.",
                ),
            ]
        ]
        | None
    ) = Field(
        None,
        max_length=32,
        description="Names the proxies' certificate covers besides <name>, <name>.<namespace>, "
        "<name>.<namespace>.svc and <name>.<namespace>.svc.cluster.local (Managed, CertManager).",
    )
    issuer_ref: IssuerRef | None = Field(
        None, description="The cert-manager issuer; required when mode is CertManager."
    )
    secret_name: str | None = Field(
        None,
        max_length=253,
        pattern=base.DNS_1123_SUBDOMAIN,
        description="Your kubernetes.io/tls Secret (tls.crt, tls.key, and ca.crt for the ServiceMonitor); "
        "required when mode is Secret.",
    )
    internal: bool | None = Field(
        None,
        description="Redis and PostgreSQL (when the operator runs them) serve TLS only, with "
        "certificates of the fleet's CA, and the proxies verify them. Default: true when mode is not Off.",
    )


class TopologySpread(base.CrdModel):
    """How the proxy pods spread over nodes and zones (Pod topologySpreadConstraints, maxSkew 1)."""

    mode: effective.SpreadMode | None = Field(
        None,
        description=(
            "Soft: prefer spreading the pods over nodes (kubernetes.io/hostname) and zones "
            "(topology.kubernetes.io/zone), yet schedule them when it cannot (whenUnsatisfiable: "
            "ScheduleAnyway). Hard: never put a pod where it would unbalance them by more than one "
            "(DoNotSchedule): pods stay Pending rather, and nodes without both labels are not used. "
            "Off: no constraint. Preset: Soft in every environment."
        ),
    )


# spec.strategy's defaults (docs/rollouts.md).
BLUE_GREEN_AUTO_PROMOTE = True
BLUE_GREEN_SCALE_DOWN_DELAY_SECONDS = 30
BLUE_GREEN_PROGRESS_DEADLINE_SECONDS = 600
ANALYSIS_DURATION_SECONDS = 60
ANALYSIS_MIN_REQUESTS = 50
ANALYSIS_MAX_ERROR_RATIO = 0.01
ANALYSIS_MAX_P95_SECONDS = 0.5
ANALYSIS_SMOKE_REQUESTS_PER_SECOND = 2.0

# What H2's analysis takes: the resolved analysis (every field set).
AnalysisSpec = effective.AnalysisSpec
StrategyType = effective.StrategyType


class RolloutAnalysis(base.CrdModel):
    """What a candidate slot must show, from its own pods' metrics, before it takes the traffic."""

    duration_seconds: int | None = Field(
        None,
        ge=1,
        le=86400,
        description=f"How long the candidate is analysed once Ready (default {ANALYSIS_DURATION_SECONDS}); "
        "must be shorter than progressDeadlineSeconds.",
    )
    min_requests: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Requests the candidate must have answered over the analysis, the operator's own "
        f"smoke requests included (default {ANALYSIS_MIN_REQUESTS}); fewer fail the analysis.",
    )
    max_error_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Highest share of 5xx answers, 0 to 1 (default "
        f"{ANALYSIS_MAX_ERROR_RATIO}); 4xx answers are the client's and do not count.",
    )
    max_p95_seconds: float | None = Field(
        None,
        gt=0,
        le=300,
        description="Highest 95th percentile of the request duration, in seconds (default "
        f"{ANALYSIS_MAX_P95_SECONDS}).",
    )
    smoke_requests_per_second: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Requests per second the operator sends to the candidate itself, with a key of "
        "its own that counts against no quota (default "
        f"{ANALYSIS_SMOKE_REQUESTS_PER_SECOND:g}); 0 analyses consumer traffic only.",
    )


def _duration(bg: BlueGreenStrategy) -> int:
    analysis = bg.analysis
    if analysis is not None and analysis.duration_seconds is not None:
        return analysis.duration_seconds
    return ANALYSIS_DURATION_SECONDS


def _deadline(bg: BlueGreenStrategy) -> int:
    if bg.progress_deadline_seconds is not None:
        return bg.progress_deadline_seconds
    return BLUE_GREEN_PROGRESS_DEADLINE_SECONDS


class BlueGreenStrategy(base.CrdModel):
    """Blue/green: a new pod template starts the idle slot at full size; it is analysed, then promoted."""

    cel_rules = (
        cel.Rule(
            "(has(self.analysis) && has(self.analysis.durationSeconds) ? self.analysis.durationSeconds"
            f" : {ANALYSIS_DURATION_SECONDS}) < (has(self.progressDeadlineSeconds) ? "
            f"self.progressDeadlineSeconds : {BLUE_GREEN_PROGRESS_DEADLINE_SECONDS})",
            "spec.strategy.blueGreen.analysis.durationSeconds must be shorter than "
            f"spec.strategy.blueGreen.progressDeadlineSeconds (defaults {ANALYSIS_DURATION_SECONDS} "
            f"and {BLUE_GREEN_PROGRESS_DEADLINE_SECONDS})",
            lambda s: _duration(s) < _deadline(s),
            ".analysis.durationSeconds",
        ),
    )

    auto_promote: bool | None = Field(
        None,
        description="Promote a candidate that passed its analysis at once (default true); false waits "
        'for the annotation weatherproxy.dev/promote: "true".',
    )
    scale_down_delay_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="Seconds the previous slot keeps its pods after a promotion, for connections "
        f"still open to it (default {BLUE_GREEN_SCALE_DOWN_DELAY_SECONDS}).",
    )
    progress_deadline_seconds: int | None = Field(
        None,
        ge=1,
        le=86400,
        description="A rollout whose candidate is not Ready and analysed within this many seconds of its "
        f"start is aborted (default {BLUE_GREEN_PROGRESS_DEADLINE_SECONDS}).",
    )
    analysis: RolloutAnalysis | None = Field(
        None, description="The analysis of the candidate before promotion."
    )


class Strategy(base.CrdModel):
    """How a new pod template reaches the pods (docs/rollouts.md)."""

    type: StrategyType | None = Field(
        None,
        description="RollingUpdate (default): pods replaced in place, one more at a time. BlueGreen: two "
        "slots; a new pod template starts the idle one at full size behind <name>-preview, analysed "
        "from its own metrics, then the Service switches to it (twice the pods meanwhile).",
    )
    blue_green: BlueGreenStrategy | None = Field(
        None, description="Settings of type BlueGreen (kept, unused, under RollingUpdate)."
    )


class WeatherProxySpec(base.CrdModel):
    """A fleet of weather proxies; unset fields take the values of the environment's preset."""

    environment: config.Environment = Field(
        config.Environment.PRODUCTION,
        description="dev, staging or production: the preset that fills unset fields.",
        json_schema_extra={"x-weatherproxy-keep-default": True},
    )
    image: str | None = Field(
        None,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description="Proxy image; the operator's default when unset.",
    )
    replicas: int | None = Field(
        None, ge=0, le=100, description="Replica count when autoscaling is off (scale subresource)."
    )
    autoscaling: Autoscaling | None = None
    disruption: Disruption | None = None
    resources: Resources | None = Field(None, description="Compute resources of the proxy container.")
    upstream: config.Upstream | None = Field(
        None, description="Open-Meteo client settings (config.yaml upstream)."
    )
    cache: config.Cache | None = Field(None, description="Cache settings (config.yaml cache).")
    rate_limit: config.RateLimit | None = Field(None, description="Per-key and anonymous rate limits.")
    auth: AuthSpec | None = Field(None, description="API key authentication (X-API-Key header).")
    http: config.Http | None = Field(None, description="HTTP server settings (config.yaml http).")
    log_level: str | None = Field(
        None,
        pattern="^(debug|info|warning|error|critical)$",
        description="Log level; debug in dev, info elsewhere.",
    )
    server: config.Server | None = Field(
        None,
        description="The proxy's HTTP server (config.yaml server): uvicorn (when unset) or granian. "
        "A change restarts the pods.",
    )
    redis: RedisSpec | None = None
    monitoring: MonitoringSpec | None = Field(
        None,
        description="Prometheus Operator objects: ServiceMonitor, alerts, SLOs. Without the "
        "monitoring.coreos.com CRDs they are skipped (MonitoringConfigured False, CRDsNotInstalled).",
    )
    tracing: TracingSpec | None = Field(
        None, description="OpenTelemetry traces of the proxies, exported over OTLP/HTTP."
    )
    logging: LoggingSpec | None = Field(
        None,
        description="Log collection objects: a Grafana PodLogs. Without the monitoring.grafana.com "
        "PodLogs CRD it is skipped (LogsConfigured False, CRDNotInstalled).",
    )
    error_tracking: ErrorTrackingSpec | None = Field(
        None, description="Error reports from the proxies to a Sentry-protocol service; none when unset."
    )
    ingress: IngressSpec | None = Field(
        None, description="An Ingress in front of the fleet's Service; none when unset."
    )
    topology_spread: TopologySpread | None = None
    analytics: analytics_.AnalyticsSpec | None = None
    tls: TlsSpec | None = Field(
        None,
        description="HTTPS for the proxies and TLS to their Redis and PostgreSQL (condition TLSReady).",
    )
    strategy: Strategy | None = Field(
        None,
        description="RollingUpdate (default) or BlueGreen with an analysis before promotion "
        "(status.rollout, conditions RolloutProgressing and RolloutAborted).",
    )


class RolloutPhase(enum.StrEnum):
    """Where a blue/green rollout stands (``status.rollout.phase``)."""

    STABLE = "Stable"
    PROGRESSING = "Progressing"
    ANALYZING = "Analyzing"
    PROMOTING = "Promoting"
    ABORTED = "Aborted"


class Slot(enum.StrEnum):
    BLUE = "blue"
    GREEN = "green"


class RolloutAnalysisStatus(base.CrdModel):
    """The candidate's figures, as of the analysis's latest step."""

    requests: int | None = Field(None, ge=0, description="Requests the candidate answered since the start.")
    error_ratio: float | None = Field(None, ge=0, le=1, description="Share of them answered with a 5xx.")
    p95_seconds: float | None = Field(None, ge=0, description="95th percentile of their duration.")
    passed: bool | None = Field(None, description="The verdict; unset while the analysis runs.")


class RolloutStatus(base.CrdModel):
    """A blue/green rollout, as the operator left it: what it resumes from after a restart."""

    strategy: StrategyType | None = Field(None, description="The strategy in force.")
    active_slot: Slot | None = Field(
        None, description="The slot the Service <name> sends traffic to (unset: the single Deployment)."
    )
    preview_slot: Slot | None = Field(
        None, description="The candidate slot (behind <name>-preview) while a rollout is in progress."
    )
    phase: RolloutPhase | None = Field(
        None, description="Stable, Progressing, Analyzing, Promoting, Aborted."
    )
    analysis: RolloutAnalysisStatus | None = Field(None, description="The candidate's analysis.")
    message: str | None = Field(
        None, max_length=1024, description="What the rollout is doing, or why it stopped."
    )
    template: str | None = Field(
        None, max_length=64, description="Hash of the pod template being rolled out (or served, when Stable)."
    )
    aborted_template: str | None = Field(
        None,
        max_length=64,
        description="Hash of the pod template of the last aborted rollout: it is not tried again; a new "
        "template is.",
    )
    started_at: str | None = Field(
        None, description="When the phase's clock started (the progress deadline counts from it)."
    )
    scale_down_at: str | None = Field(
        None, description="When the previous slot is scaled to 0 (phase Promoting)."
    )
    reason: str | None = Field(
        None,
        max_length=64,
        description="Why the last rollout was aborted: AnalysisFailed, ProgressDeadlineExceeded or "
        "AbortRequested.",
    )


class WeatherProxyStatus(base.CrdModel):
    """What the operator observed; written to the status subresource only."""

    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation last reconciled."
    )
    replicas: int | None = Field(None, ge=0, description="Proxy pods (for the scale subresource).")
    ready_replicas: int | None = Field(None, ge=0, description="Proxy pods that are ready.")
    selector: str | None = Field(
        None, description="Label selector of the proxy pods (for the scale subresource)."
    )
    api_keys: int | None = Field(None, ge=0, description="ApiKeys served by this fleet.")
    endpoint: str | None = Field(None, description="In-cluster URL of the fleet's Service.")
    config_hash: str | None = Field(None, description="Hash of the config.yaml the pods run with.")
    conditions: list[conditions_.Condition] | None = Field(
        None,
        description="Ready and the conditions that explain it.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    rollout: RolloutStatus | None = Field(
        None, description="The blue/green rollout (spec.strategy.type BlueGreen; docs/rollouts.md)."
    )
