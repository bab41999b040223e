"""effective(): the environment preset fills every unset field; what the user wrote always wins."""

from __future__ import annotations

from typing import Any

import pytest

from weather_operator.api import constants, presets, resolve, weatherproxy
from weather_operator.api import effective as effective_
from weather_proxy import config


def effective(**spec: Any) -> Any:
    return resolve.effective(weatherproxy.WeatherProxySpec.model_validate(spec))


def test_dev_preset() -> None:
    eff = effective(environment="dev")
    assert eff.replicas == 1
    assert eff.autoscaling.enabled is False
    assert eff.disruption.enabled is False
    assert eff.monitoring.alerts.enabled is False
    assert eff.monitoring.service_monitor.enabled is True
    assert eff.redis.persistence_enabled is False
    assert eff.log_level == "debug"
    assert eff.auth_required is True


def test_staging_preset() -> None:
    eff = effective(environment="staging")
    assert eff.replicas == 2
    assert (eff.autoscaling.enabled, eff.autoscaling.min_replicas, eff.autoscaling.max_replicas) == (
        True,
        2,
        4,
    )
    assert (eff.disruption.enabled, eff.disruption.min_available, eff.disruption.max_unavailable) == (
        True,
        1,
        None,
    )
    assert eff.monitoring.alerts.enabled is True
    assert eff.redis.persistence_enabled is True
    assert eff.log_level == "info"


def test_production_preset() -> None:
    eff = effective(environment="production")
    assert eff.autoscaling.enabled is True
    assert eff.autoscaling.min_replicas == 2
    assert eff.autoscaling.max_replicas == 10
    assert eff.autoscaling.target_cpu_utilization_percentage == 70
    assert eff.disruption.min_available == 1
    assert eff.redis.persistence_enabled is True
    assert eff.monitoring.alerts.enabled is True
    assert eff.monitoring.alerts.availability_target_percent == 99.9


def test_production_has_larger_resources_than_dev() -> None:
    dev, prod = effective(environment="dev").resources, effective(environment="production").resources
    assert dev.requests["cpu"] == "50m"
    assert prod.requests["cpu"] == "250m"
    assert prod.limits["memory"] == "512Mi"


def test_environment_defaults_to_production() -> None:
    assert weatherproxy.WeatherProxySpec().environment is config.Environment.PRODUCTION
    assert effective() == effective(environment="production")


@pytest.mark.parametrize("environment", ["dev", "staging", "production"])
def test_user_set_fields_win_over_every_preset(environment: str) -> None:
    eff = effective(
        environment=environment,
        replicas=7,
        autoscaling={"enabled": False, "targetCPUUtilizationPercentage": 55},
        disruption={"maxUnavailable": "25%"},
        resources={"requests": {"cpu": "1"}},
        auth={"required": False},
        logLevel="warning",
        redis={"managed": {"persistence": {"enabled": False, "size": "5Gi", "storageClassName": "fast"}}},
        monitoring={
            "serviceMonitor": {"enabled": False},
            "alerts": {"enabled": False, "availabilityTarget": 99.5},
        },
    )
    assert eff.replicas == 7
    assert eff.autoscaling.enabled is False
    assert eff.autoscaling.target_cpu_utilization_percentage == 55
    assert eff.disruption.enabled is True
    assert (eff.disruption.min_available, eff.disruption.max_unavailable) == (None, "25%")
    assert eff.resources.requests == {"cpu": "1"}
    assert eff.resources.limits == {}
    assert eff.auth_required is False
    assert eff.log_level == "warning"
    assert eff.redis.persistence_enabled is False
    assert eff.redis.persistence_size == "5Gi"
    assert eff.redis.storage_class_name == "fast"
    assert eff.monitoring.service_monitor.enabled is False
    assert eff.monitoring.alerts.enabled is False
    assert eff.monitoring.alerts.availability_target_percent == 99.5


def test_dev_can_opt_into_autoscaling_and_a_pdb() -> None:
    eff = effective(environment="dev", autoscaling={"enabled": True}, disruption={"minAvailable": 1})
    assert eff.autoscaling.enabled is True
    assert (eff.autoscaling.min_replicas, eff.autoscaling.max_replicas) == (1, 2)
    assert eff.disruption.enabled is True


def test_disruption_enabled_alone_takes_the_preset_budget() -> None:
    eff = effective(environment="dev", disruption={"enabled": False})
    assert eff.disruption.enabled is False
    assert eff.disruption.min_available == presets.DEV.min_available


@pytest.mark.parametrize(
    ("autoscaling", "expected"),
    [
        ({"maxReplicas": 1}, (1, 1)),  # production min 2 yields to the user's max
        ({"minReplicas": 12}, (12, 12)),  # production max 10 yields to the user's min
        ({"minReplicas": 3, "maxReplicas": 5}, (3, 5)),
    ],
)
def test_a_user_bound_wins_over_the_other_preset_bound(
    autoscaling: dict[str, int], expected: tuple[int, int]
) -> None:
    eff = effective(environment="production", autoscaling=autoscaling)
    assert (eff.autoscaling.min_replicas, eff.autoscaling.max_replicas) == expected


def test_image_defaults_to_the_operator_setting() -> None:
    spec = weatherproxy.WeatherProxySpec()
    assert resolve.effective(spec).image == constants.DEFAULT_PROXY_IMAGE
    assert resolve.effective(spec, default_image="registry.local/proxy:9").image == "registry.local/proxy:9"
    assert resolve.effective(weatherproxy.WeatherProxySpec(image="mine:1"), "other:2").image == "mine:1"


def test_redis_managed_by_default_and_external_on_request() -> None:
    managed = effective().redis
    assert managed.managed is True
    assert managed.image == constants.DEFAULT_REDIS_IMAGE
    assert managed.url_secret_ref is None
    external = effective(
        redis={"mode": "External", "external": {"urlSecretRef": {"name": "r", "key": "url"}}}
    ).redis
    assert external.managed is False
    assert external.url_secret_ref is not None
    assert (external.url_secret_ref.name, external.url_secret_ref.key) == ("r", "url")


def test_tracing_is_on_when_an_endpoint_is_set_unless_disabled() -> None:
    assert effective().tracing.enabled is False
    on = effective(tracing={"otlpEndpoint": "http://otel:4318"}).tracing
    assert (on.enabled, on.otlp_endpoint, on.sample_ratio) == (True, "http://otel:4318", 0.1)
    off = effective(
        tracing={"otlpEndpoint": "http://otel:4318", "enabled": False, "sampleRatio": 0.5}
    ).tracing
    assert (off.enabled, off.sample_ratio) == (False, 0.5)


def test_config_sections_default_to_the_proxy_defaults() -> None:
    eff = effective()
    assert eff.upstream == config.Upstream()
    assert eff.cache == config.Cache()
    assert eff.rate_limit == config.RateLimit()
    assert eff.http == config.Http()


def test_ingress_defaults() -> None:
    ingress = effective().ingress
    assert ingress.enabled is False
    assert ingress.path == "/"
    assert ingress.annotations == {}


def test_every_environment_has_a_preset() -> None:
    assert set(presets.PRESETS) == set(config.Environment)


@pytest.mark.parametrize("environment", ["dev", "staging", "production"])
def test_topology_spread_is_soft_unless_the_spec_says_otherwise(environment: str) -> None:
    assert effective(environment=environment).topology_spread is effective_.SpreadMode.SOFT
    for mode in effective_.SpreadMode:
        eff = effective(environment=environment, topologySpread={"mode": mode.value})
        assert eff.topology_spread is mode


@pytest.mark.parametrize("environment", ["dev", "staging", "production"])
def test_slo_defaults(environment: str) -> None:
    slo = effective(environment=environment).monitoring.alerts.slo
    assert slo == effective_.EffectiveSlo(
        availability_percent=99.9,
        latency_threshold_seconds=0.5,
        latency_percent=99.0,
        min_requests_per_second=0.1,
    )
    # The default threshold is one the spec itself would accept.
    weatherproxy.LatencySloSpec(threshold_seconds=slo.latency_threshold_seconds)


@pytest.mark.parametrize(
    ("monitoring", "availability"),
    [
        ({"slo": {"availabilityPercent": 99.5}}, 99.5),
        ({"alerts": {"availabilityTarget": 99.5}}, 99.5),
        ({"alerts": {"availabilityTarget": 99.5}, "slo": {"availabilityPercent": 99.5}}, 99.5),
    ],
)
def test_slo_availability_takes_either_name(monitoring: dict[str, Any], availability: float) -> None:
    alerts = effective(monitoring=monitoring).monitoring.alerts
    assert alerts.slo.availability_percent == alerts.availability_target_percent == availability


def test_slo_fields_set_win() -> None:
    slo = effective(
        monitoring={"slo": {"latency": {"thresholdSeconds": 1, "percent": 95}, "minRequestsPerSecond": 0}}
    ).monitoring.alerts.slo
    assert (slo.latency_threshold_seconds, slo.latency_percent, slo.min_requests_per_second) == (
        1.0,
        95.0,
        0.0,
    )
    assert slo.availability_percent == presets.AVAILABILITY_TARGET_PERCENT
