"""Preset resolution: a ``WeatherProxySpec`` and its environment's preset give the ``EffectiveSpec``.

A preset never overrides what the user wrote: each unset field takes the preset's value,
field by field. Renderers read only the result (``api.effective``).
"""

from __future__ import annotations

from typing import TypeVar

from weather_operator.api import analytics, constants, presets, weatherproxy
from weather_operator.api import effective as effective_
from weather_proxy import config


def _resources(
    spec: weatherproxy.Resources | None, preset: presets.Preset, *, redis: bool = False
) -> effective_.EffectiveResources:
    if spec is not None:
        return effective_.EffectiveResources(
            requests=dict(spec.requests or {}), limits=dict(spec.limits or {})
        )
    chosen = preset.redis_resources if redis else preset.resources
    return effective_.EffectiveResources(
        requests=dict(chosen.get("requests", {})), limits=dict(chosen.get("limits", {}))
    )


def _autoscaling(
    spec: weatherproxy.Autoscaling | None, preset: presets.Preset
) -> effective_.EffectiveAutoscaling:
    spec = spec or weatherproxy.Autoscaling()
    lo = spec.min_replicas if spec.min_replicas is not None else preset.min_replicas
    hi = spec.max_replicas if spec.max_replicas is not None else preset.max_replicas
    # A user-set bound wins over the preset's other bound.
    if lo > hi:
        if spec.min_replicas is not None:
            hi = lo
        else:
            lo = hi
    return effective_.EffectiveAutoscaling(
        enabled=spec.enabled if spec.enabled is not None else preset.autoscaling_enabled,
        min_replicas=lo,
        max_replicas=hi,
        target_cpu_utilization_percentage=(
            spec.target_cpu_utilization_percentage
            if spec.target_cpu_utilization_percentage is not None
            else preset.target_cpu_utilization_percentage
        ),
    )


def _disruption(
    spec: weatherproxy.Disruption | None, preset: presets.Preset
) -> effective_.EffectiveDisruption:
    if spec is None:
        return effective_.EffectiveDisruption(
            enabled=preset.disruption_enabled, min_available=preset.min_available, max_unavailable=None
        )
    enabled = spec.enabled if spec.enabled is not None else True
    if spec.min_available is None and spec.max_unavailable is None:
        return effective_.EffectiveDisruption(
            enabled=enabled, min_available=preset.min_available, max_unavailable=None
        )
    return effective_.EffectiveDisruption(
        enabled=enabled, min_available=spec.min_available, max_unavailable=spec.max_unavailable
    )


def _redis(spec: weatherproxy.RedisSpec | None, preset: presets.Preset) -> effective_.EffectiveRedis:
    spec = spec or weatherproxy.RedisSpec()
    managed = spec.managed or weatherproxy.ManagedRedis()
    persistence = managed.persistence or weatherproxy.Persistence()
    url_ref = None
    if spec.mode is weatherproxy.RedisMode.EXTERNAL and spec.external is not None:
        ref = spec.external.url_secret_ref
        url_ref = effective_.SecretKeySelector(name=ref.name, key=ref.key)
    return effective_.EffectiveRedis(
        managed=spec.mode is not weatherproxy.RedisMode.EXTERNAL,
        image=managed.image or constants.DEFAULT_REDIS_IMAGE,
        persistence_enabled=(
            persistence.enabled if persistence.enabled is not None else preset.redis_persistence_enabled
        ),
        persistence_size=persistence.size or presets.REDIS_PERSISTENCE_SIZE,
        storage_class_name=persistence.storage_class_name,
        resources=_resources(managed.resources, preset, redis=True),
        url_secret_ref=url_ref,
    )


def _slo(spec: weatherproxy.SloSpec | None, alerts: weatherproxy.AlertsSpec) -> effective_.EffectiveSlo:
    spec = spec or weatherproxy.SloSpec()
    latency = spec.latency or weatherproxy.LatencySloSpec()
    # The schema refuses the two availability fields when they differ: either may be the one set.
    availability = next(
        (v for v in (spec.availability_percent, alerts.availability_target) if v is not None),
        presets.AVAILABILITY_TARGET_PERCENT,
    )
    return effective_.EffectiveSlo(
        availability_percent=availability,
        latency_threshold_seconds=(
            latency.threshold_seconds
            if latency.threshold_seconds is not None
            else presets.SLO_LATENCY_THRESHOLD_SECONDS
        ),
        latency_percent=latency.percent if latency.percent is not None else presets.SLO_LATENCY_PERCENT,
        min_requests_per_second=(
            spec.min_requests_per_second
            if spec.min_requests_per_second is not None
            else presets.SLO_MIN_REQUESTS_PER_SECOND
        ),
    )


def _monitoring(
    spec: weatherproxy.MonitoringSpec | None, preset: presets.Preset
) -> effective_.EffectiveMonitoring:
    spec = spec or weatherproxy.MonitoringSpec()
    sm = spec.service_monitor or weatherproxy.ServiceMonitorSpec()
    alerts = spec.alerts or weatherproxy.AlertsSpec()
    return effective_.EffectiveMonitoring(
        service_monitor=effective_.EffectiveServiceMonitor(
            enabled=sm.enabled if sm.enabled is not None else preset.service_monitor_enabled,
            interval=sm.interval or presets.SERVICE_MONITOR_INTERVAL,
            labels=dict(sm.labels or {}),
        ),
        alerts=effective_.EffectiveAlerts(
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
            slo=_slo(spec.slo, alerts),
            runbook_base_url=alerts.runbook_base_url or presets.RUNBOOK_BASE_URL,
            labels=dict(alerts.labels or {}),
        ),
    )


def _pod_logs(spec: weatherproxy.LoggingSpec | None) -> effective_.EffectivePodLogs:
    pod_logs = (spec.pod_logs if spec is not None else None) or weatherproxy.PodLogsSpec()
    return effective_.EffectivePodLogs(enabled=bool(pod_logs.enabled), labels=dict(pod_logs.labels or {}))


def _tracing(spec: weatherproxy.TracingSpec | None) -> config.Tracing:
    spec = spec or weatherproxy.TracingSpec()
    enabled = spec.enabled if spec.enabled is not None else spec.otlp_endpoint is not None
    return config.Tracing(
        enabled=enabled,
        otlp_endpoint=spec.otlp_endpoint,
        sample_ratio=spec.sample_ratio if spec.sample_ratio is not None else presets.TRACING_SAMPLE_RATIO,
    )


def _error_tracking(
    spec: weatherproxy.ErrorTrackingSpec | None, environment: config.Environment
) -> effective_.EffectiveErrorTracking:
    if spec is None:
        return effective_.EffectiveErrorTracking(
            enabled=False,
            dsn_secret_ref=None,
            environment=environment.value,
            traces_sample_rate=presets.ERROR_TRACKING_TRACES_SAMPLE_RATE,
        )
    ref = spec.dsn_secret_ref
    return effective_.EffectiveErrorTracking(
        enabled=True,
        dsn_secret_ref=effective_.SecretKeySelector(name=ref.name, key=ref.key),
        environment=spec.environment or environment.value,
        traces_sample_rate=(
            spec.traces_sample_rate
            if spec.traces_sample_rate is not None
            else presets.ERROR_TRACKING_TRACES_SAMPLE_RATE
        ),
    )


def _ingress(spec: weatherproxy.IngressSpec | None) -> effective_.EffectiveIngress:
    spec = spec or weatherproxy.IngressSpec()
    return effective_.EffectiveIngress(
        enabled=bool(spec.enabled),
        host=spec.host,
        path=spec.path or presets.INGRESS_PATH,
        class_name=spec.class_name,
        tls_secret_name=spec.tls_secret_name,
        annotations=dict(spec.annotations or {}),
    )


def _topology_spread(
    spec: weatherproxy.TopologySpread | None, preset: presets.Preset
) -> effective_.SpreadMode:
    if spec is None or spec.mode is None:
        return preset.topology_spread
    return spec.mode


def _tls(spec: weatherproxy.TlsSpec | None, preset: presets.Preset) -> effective_.EffectiveTls:
    spec = spec or weatherproxy.TlsSpec()
    mode = spec.mode if spec.mode is not None else preset.tls_mode
    issuer = spec.issuer_ref
    kind = issuer.kind if issuer is not None else None
    internal = spec.internal if spec.internal is not None else True
    return effective_.EffectiveTls(
        mode=mode,
        dns_names=tuple(spec.dns_names or ()),
        issuer_name=issuer.name if issuer is not None else None,
        issuer_kind=kind or effective_.IssuerKind.ISSUER,
        secret_name=spec.secret_name,
        internal=mode is not effective_.TlsMode.OFF and internal,
    )


_T = TypeVar("_T")


def _pick(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _strategy(spec: weatherproxy.Strategy | None) -> effective_.EffectiveStrategy:
    spec = spec or weatherproxy.Strategy()
    bg = spec.blue_green or weatherproxy.BlueGreenStrategy()
    analysis = bg.analysis or weatherproxy.RolloutAnalysis()

    return effective_.EffectiveStrategy(
        type=_pick(spec.type, effective_.StrategyType.ROLLING_UPDATE),
        blue_green=effective_.EffectiveBlueGreen(
            auto_promote=_pick(bg.auto_promote, weatherproxy.BLUE_GREEN_AUTO_PROMOTE),
            scale_down_delay_seconds=_pick(
                bg.scale_down_delay_seconds, weatherproxy.BLUE_GREEN_SCALE_DOWN_DELAY_SECONDS
            ),
            progress_deadline_seconds=_pick(
                bg.progress_deadline_seconds, weatherproxy.BLUE_GREEN_PROGRESS_DEADLINE_SECONDS
            ),
            analysis=effective_.AnalysisSpec(
                duration_seconds=_pick(analysis.duration_seconds, weatherproxy.ANALYSIS_DURATION_SECONDS),
                min_requests=_pick(analysis.min_requests, weatherproxy.ANALYSIS_MIN_REQUESTS),
                max_error_ratio=_pick(analysis.max_error_ratio, weatherproxy.ANALYSIS_MAX_ERROR_RATIO),
                max_p95_seconds=_pick(analysis.max_p95_seconds, weatherproxy.ANALYSIS_MAX_P95_SECONDS),
                smoke_requests_per_second=_pick(
                    analysis.smoke_requests_per_second, weatherproxy.ANALYSIS_SMOKE_REQUESTS_PER_SECOND
                ),
            ),
        ),
    )


def effective(
    spec: weatherproxy.WeatherProxySpec, default_image: str = constants.DEFAULT_PROXY_IMAGE
) -> effective_.EffectiveSpec:
    """``spec`` with its environment preset applied to every unset field; ``default_image`` when no image."""
    preset = presets.for_environment(spec.environment)
    auth = spec.auth or weatherproxy.AuthSpec()
    return effective_.EffectiveSpec(
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
        server=spec.server or config.Server.UVICORN,
        tracing=_tracing(spec.tracing),
        redis=_redis(spec.redis, preset),
        monitoring=_monitoring(spec.monitoring, preset),
        pod_logs=_pod_logs(spec.logging),
        ingress=_ingress(spec.ingress),
        topology_spread=_topology_spread(spec.topology_spread, preset),
        analytics=analytics.resolve(spec.analytics, spec.environment),
        error_tracking=_error_tracking(spec.error_tracking, spec.environment),
        tls=_tls(spec.tls, preset),
        strategy=_strategy(spec.strategy),
    )
