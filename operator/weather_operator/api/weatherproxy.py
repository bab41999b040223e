"""The ``WeatherProxy`` custom resource: spec, status, and its effective (preset-applied) form."""

from __future__ import annotations

import enum

from pydantic import Field, model_validator

from weather_operator.api import base, cel, constants, effective, presets
from weather_operator.api import conditions as conditions_
from weather_proxy import config

IMAGE_PATTERN = (
    r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
INTERVAL_PATTERN = r"^[0-9]+(ms|s|m|h)$"
LABEL_VALUE_MAX = 63


class Autoscaling(base.CrdModel):
    """A HorizontalPodAutoscaler on CPU; when enabled, spec.replicas is ignored."""

    model_config = base.crd_config(
        json_schema_extra=cel.schema_extra(
            cel.rule(
                "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas",
                ".minReplicas",
            )
        )
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

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError("spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas")
        return self


class Disruption(base.CrdModel):
    """A PodDisruptionBudget: exactly one of minAvailable or maxUnavailable."""

    model_config = base.crd_config(
        json_schema_extra=cel.schema_extra(
            cel.rule(
                "!(has(self.minAvailable) && has(self.maxUnavailable))",
                "spec.disruption must set only one of minAvailable or maxUnavailable",
            ),
            cel.rule(
                "(has(self.enabled) && !self.enabled) || has(self.minAvailable) || has(self.maxUnavailable)",
                "spec.disruption must set exactly one of minAvailable or maxUnavailable",
            ),
        )
    )

    enabled: bool | None = Field(
        None, description="Create a PodDisruptionBudget. Preset: off in dev, on in staging/production."
    )
    min_available: base.IntOrString | None = Field(
        None, description="Pods that must stay available (a number or a percentage like 50%)."
    )
    max_unavailable: base.IntOrString | None = Field(
        None, description="Pods that may be unavailable (a number or a percentage like 25%)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Disruption:
        both = self.min_available is not None and self.max_unavailable is not None
        if both:
            raise ValueError("spec.disruption must set only one of minAvailable or maxUnavailable")
        neither = self.min_available is None and self.max_unavailable is None
        if neither and self.enabled is not False:
            raise ValueError("spec.disruption must set exactly one of minAvailable or maxUnavailable")
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

    requests: dict[str, base.IntOrString] | None = Field(
        None, description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}."
    )
    limits: dict[str, base.IntOrString] | None = Field(
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
    persistence: Persistence | None = None
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

    model_config = base.crd_config(
        json_schema_extra=cel.schema_extra(
            cel.rule(
                "!has(self.mode) || self.mode != 'External' || has(self.external)",
                "spec.redis.external.urlSecretRef is required when spec.redis.mode is External",
                ".external",
            )
        )
    )

    mode: RedisMode | None = Field(None, description="Managed (default) or External.")
    managed: ManagedRedis | None = None
    external: ExternalRedis | None = None

    @model_validator(mode="after")
    def _external_has_url(self) -> RedisSpec:
        if self.mode is RedisMode.EXTERNAL and self.external is None:
            raise ValueError("spec.redis.external.urlSecretRef is required when spec.redis.mode is External")
        return self


class ServiceMonitorSpec(base.CrdModel):
    enabled: bool | None = Field(
        None, description="Create a ServiceMonitor (when the Prometheus Operator CRDs exist)."
    )
    interval: str | None = Field(None, pattern=INTERVAL_PATTERN, description="Scrape interval, e.g. 30s.")
    labels: dict[str, str] | None = Field(
        None, description="Extra labels, e.g. {release: kube-prometheus-stack} for Prometheus to select it."
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
        None, ge=50, lt=100, description="Availability SLO in percent (default 99.9) for burn-rate alerts."
    )
    runbook_base_url: str | None = Field(
        None, max_length=2048, pattern=r"^https?://", description="Base URL of the runbooks."
    )
    labels: dict[str, str] | None = Field(None, description="Extra labels on the PrometheusRule object.")


class MonitoringSpec(base.CrdModel):
    service_monitor: ServiceMonitorSpec | None = None
    alerts: AlertsSpec | None = None


class TracingSpec(base.CrdModel):
    enabled: bool | None = Field(None, description="Export spans; on when otlpEndpoint is set.")
    otlp_endpoint: str | None = Field(
        None, max_length=2048, pattern=r"^https?://", description="OTLP/HTTP endpoint of the collector."
    )
    sample_ratio: float | None = Field(None, ge=0, le=1, description="Fraction of requests traced.")


class IngressSpec(base.CrdModel):
    model_config = base.crd_config(
        json_schema_extra=cel.schema_extra(
            cel.rule(
                "!has(self.enabled) || !self.enabled || has(self.host)",
                "spec.ingress.host is required when spec.ingress.enabled is true",
                ".host",
            )
        )
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
    annotations: dict[str, str] | None = Field(None, description="Annotations of the Ingress object.")

    @model_validator(mode="after")
    def _host_when_enabled(self) -> IngressSpec:
        if self.enabled and self.host is None:
            raise ValueError("spec.ingress.host is required when spec.ingress.enabled is true")
        return self


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
    auth: AuthSpec | None = None
    http: config.Http | None = Field(None, description="HTTP server settings (config.yaml http).")
    log_level: str | None = Field(
        None,
        pattern="^(debug|info|warning|error|critical)$",
        description="Log level; debug in dev, info elsewhere.",
    )
    redis: RedisSpec | None = None
    monitoring: MonitoringSpec | None = None
    tracing: TracingSpec | None = None
    ingress: IngressSpec | None = None

    def effective(self, default_image: str = constants.DEFAULT_PROXY_IMAGE) -> effective.EffectiveSpec:
        """This spec with its environment preset applied to every unset field."""
        return _resolve(self, default_image)


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


def _resources(
    spec: Resources | None, preset: presets.Preset, *, redis: bool = False
) -> effective.EffectiveResources:
    if spec is not None:
        return effective.EffectiveResources(
            requests=dict(spec.requests or {}), limits=dict(spec.limits or {})
        )
    chosen = preset.redis_resources if redis else preset.resources
    return effective.EffectiveResources(
        requests=dict(chosen.get("requests", {})), limits=dict(chosen.get("limits", {}))
    )


def _autoscaling(spec: Autoscaling | None, preset: presets.Preset) -> effective.EffectiveAutoscaling:
    spec = spec or Autoscaling()
    lo = spec.min_replicas if spec.min_replicas is not None else preset.min_replicas
    hi = spec.max_replicas if spec.max_replicas is not None else preset.max_replicas
    # A user-set bound wins over the preset's other bound.
    if lo > hi:
        if spec.min_replicas is not None:
            hi = lo
        else:
            lo = hi
    return effective.EffectiveAutoscaling(
        enabled=spec.enabled if spec.enabled is not None else preset.autoscaling_enabled,
        min_replicas=lo,
        max_replicas=hi,
        target_cpu_utilization_percentage=(
            spec.target_cpu_utilization_percentage
            if spec.target_cpu_utilization_percentage is not None
            else preset.target_cpu_utilization_percentage
        ),
    )


def _disruption(spec: Disruption | None, preset: presets.Preset) -> effective.EffectiveDisruption:
    if spec is None:
        return effective.EffectiveDisruption(
            enabled=preset.disruption_enabled, min_available=preset.min_available, max_unavailable=None
        )
    enabled = spec.enabled if spec.enabled is not None else True
    if spec.min_available is None and spec.max_unavailable is None:
        return effective.EffectiveDisruption(
            enabled=enabled, min_available=preset.min_available, max_unavailable=None
        )
    return effective.EffectiveDisruption(
        enabled=enabled, min_available=spec.min_available, max_unavailable=spec.max_unavailable
    )


def _redis(spec: RedisSpec | None, preset: presets.Preset) -> effective.EffectiveRedis:
    spec = spec or RedisSpec()
    managed = spec.managed or ManagedRedis()
    persistence = managed.persistence or Persistence()
    url_ref = None
    if spec.mode is RedisMode.EXTERNAL and spec.external is not None:
        ref = spec.external.url_secret_ref
        url_ref = effective.SecretKeySelector(name=ref.name, key=ref.key)
    return effective.EffectiveRedis(
        managed=spec.mode is not RedisMode.EXTERNAL,
        image=managed.image or constants.DEFAULT_REDIS_IMAGE,
        persistence_enabled=(
            persistence.enabled if persistence.enabled is not None else preset.redis_persistence_enabled
        ),
        persistence_size=persistence.size or presets.REDIS_PERSISTENCE_SIZE,
        storage_class_name=persistence.storage_class_name,
        resources=_resources(managed.resources, preset, redis=True),
        url_secret_ref=url_ref,
    )


def _monitoring(spec: MonitoringSpec | None, preset: presets.Preset) -> effective.EffectiveMonitoring:
    spec = spec or MonitoringSpec()
    sm = spec.service_monitor or ServiceMonitorSpec()
    alerts = spec.alerts or AlertsSpec()
    return effective.EffectiveMonitoring(
        service_monitor=effective.EffectiveServiceMonitor(
            enabled=sm.enabled if sm.enabled is not None else preset.service_monitor_enabled,
            interval=sm.interval or presets.SERVICE_MONITOR_INTERVAL,
            labels=dict(sm.labels or {}),
        ),
        alerts=effective.EffectiveAlerts(
            enabled=alerts.enabled if alerts.enabled is not None else preset.alerts_enabled,
            error_rate_percent=(
                alerts.error_rate_percent
                if alerts.error_rate_percent is not None
                else presets.ERROR_RATE_PERCENT
            ),
            p95_latency_seconds=(
                alerts.p95_latency_seconds
                if alerts.p95_latency_seconds is not None
                else presets.P95_LATENCY_SECONDS
            ),
            availability_target_percent=(
                alerts.availability_target
                if alerts.availability_target is not None
                else presets.AVAILABILITY_TARGET_PERCENT
            ),
            runbook_base_url=alerts.runbook_base_url or presets.RUNBOOK_BASE_URL,
            labels=dict(alerts.labels or {}),
        ),
    )


def _tracing(spec: TracingSpec | None) -> config.Tracing:
    spec = spec or TracingSpec()
    enabled = spec.enabled if spec.enabled is not None else spec.otlp_endpoint is not None
    return config.Tracing(
        enabled=enabled,
        otlp_endpoint=spec.otlp_endpoint,
        sample_ratio=spec.sample_ratio if spec.sample_ratio is not None else presets.TRACING_SAMPLE_RATIO,
    )


def _ingress(spec: IngressSpec | None) -> effective.EffectiveIngress:
    spec = spec or IngressSpec()
    return effective.EffectiveIngress(
        enabled=bool(spec.enabled),
        host=spec.host,
        path=spec.path or presets.INGRESS_PATH,
        class_name=spec.class_name,
        tls_secret_name=spec.tls_secret_name,
        annotations=dict(spec.annotations or {}),
    )


def _resolve(spec: WeatherProxySpec, default_image: str) -> effective.EffectiveSpec:
    preset = presets.for_environment(spec.environment)
    auth = spec.auth or AuthSpec()
    return effective.EffectiveSpec(
        environment=spec.environment,
        image=spec.image or default_image,
        replicas=spec.replicas if spec.replicas is not None else preset.replicas,
        autoscaling=_autoscaling(spec.autoscaling, preset),
        disruption=_disruption(spec.disruption, preset),
        resources=_resources(spec.resources, preset),
        upstream=spec.upstream or config.Upstream(),
        cache=spec.cache or config.Cache(),
        rate_limit=spec.rate_limit or config.RateLimit(),
        auth_required=auth.required if auth.required is not None else preset.auth_required,
        http=spec.http or config.Http(),
        log_level=spec.log_level or preset.log_level,
        tracing=_tracing(spec.tracing),
        redis=_redis(spec.redis, preset),
        monitoring=_monitoring(spec.monitoring, preset),
        ingress=_ingress(spec.ingress),
    )
