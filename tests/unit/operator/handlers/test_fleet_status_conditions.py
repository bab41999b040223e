"""WeatherProxy and ApiKey status from observations: every condition reason, no clock inside."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from weather_operator import status
from weather_operator.api import resolve, weatherproxy

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
READY_REDIS = status.RedisObservation(managed=True, ready=True, detail="Redis is ready")


def _spec(**spec: Any) -> Any:
    return resolve.effective(
        weatherproxy.WeatherProxySpec.model_validate({"environment": "dev", **spec}), default_image="img"
    )


def _deployment(
    replicas: int = 1,
    ready: int = 1,
    updated: int = 1,
    generation: int = 1,
    observed: int = 1,
    **conditions: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "observedGeneration": observed,
            "conditions": [{"type": t, **c} for t, c in conditions.items()],
        },
    }


def _conditions(
    deployment: dict[str, Any] | None,
    redis: status.RedisObservation = READY_REDIS,
    monitoring: status.MonitoringObservation | None = None,
    reconcile_error: str | None = None,
    **spec: Any,
) -> dict[str, tuple[str, str]]:
    obs = status.ProxyObservation(
        name="paris",
        namespace="weather",
        generation=2,
        spec=_spec(**spec),
        deployment=deployment,
        redis=redis,
        monitoring=monitoring or status.MonitoringObservation(wanted=False, available=False),
        api_keys=0,
        config_hash="h",
        selector="s",
        reconcile_error=reconcile_error,
    )
    return {c.type: (c.status, c.reason) for c in status.proxy_conditions(obs)}


def test_a_fleet_without_deployment_is_not_ready_and_rolling_out() -> None:
    got = _conditions(None)
    assert got["Ready"] == ("False", "DeploymentNotFound")
    assert got["Progressing"] == ("True", "RollingOut")


def test_a_fully_rolled_out_fleet_is_ready_and_not_degraded() -> None:
    got = _conditions(_deployment())
    assert got["Ready"] == ("True", "AllReplicasReady")
    assert got["Progressing"] == ("False", "RolloutComplete")
    assert got["Degraded"] == ("False", "AsExpected")
    assert got["RedisReady"] == ("True", "StatefulSetReady")
    assert got["MonitoringConfigured"] == ("False", "Disabled")


def test_missing_replicas_after_a_rollout_degrade_the_fleet() -> None:
    got = _conditions(_deployment(replicas=3, ready=1, updated=3), replicas=3)
    assert got["Ready"] == ("False", "ReplicasNotReady")
    assert got["Degraded"] == ("True", "ReplicasUnavailable")


def test_a_stuck_rollout_and_a_replica_failure() -> None:
    stuck = _deployment(Progressing={"status": "False", "reason": "ProgressDeadlineExceeded", "message": "m"})
    got = _conditions(stuck)
    assert got["Progressing"] == ("False", "ProgressDeadlineExceeded")
    assert got["Degraded"] == ("True", "ProgressDeadlineExceeded")
    failing = _deployment(ReplicaFailure={"status": "True", "message": "quota"})
    assert _conditions(failing)["Degraded"] == ("True", "ReplicaFailure")
    assert _conditions(_deployment(generation=2, observed=1))["Progressing"] == ("True", "RollingOut")


def test_a_refused_apply_degrades_the_fleet_until_a_reconcile_succeeds() -> None:
    refused = _conditions(_deployment(), reconcile_error="403 Forbidden: exceeded quota")
    assert refused["Degraded"] == ("True", "ReconcileFailed")
    assert refused["Ready"] == ("True", "AllReplicasReady"), "the running replicas still serve"
    assert _conditions(_deployment())["Degraded"] == ("False", "AsExpected")


def test_redis_and_monitoring_conditions() -> None:
    down = status.redis_from_statefulset({"status": {"readyReplicas": 0}})
    got = _conditions(_deployment(), redis=down)
    assert got["Degraded"] == ("True", "RedisUnavailable")
    assert got["RedisReady"] == ("False", "StatefulSetNotReady")
    assert status.redis_from_statefulset(None).ready is False
    assert not status.redis_from_external_secret(None, "r", "url").ready
    assert not status.redis_from_external_secret({"data": {"other": "x"}}, "r", "url").ready
    external = status.redis_from_external_secret({"data": {"url": "eA=="}}, "r", "url")
    assert _conditions(_deployment(), redis=external)["RedisReady"] == ("True", "ExternalSecretFound")
    wanted = status.MonitoringObservation(wanted=True, available=False)
    assert _conditions(_deployment(), monitoring=wanted)["MonitoringConfigured"] == (
        "False",
        "CRDsNotInstalled",
    )
    there = status.MonitoringObservation(wanted=True, available=True)
    assert _conditions(_deployment(), monitoring=there)["MonitoringConfigured"] == ("True", "Configured")


def test_autoscaled_fleets_want_the_hpa_choice() -> None:
    spec = _spec(autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 4})
    assert status.desired_replicas(spec, None) == 2
    assert status.desired_replicas(spec, {"spec": {"replicas": 3}}) == 3


def _key(**changes: Any) -> status.KeyObservation:
    values: dict[str, Any] = {
        "generation": 1,
        "secret_name": "s",
        "key_prefix": "wpk_abcd",
        "expires_at": None,
        "disabled": False,
        "proxy_found": True,
    }
    return status.KeyObservation(**{**values, **changes})


@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        (_key(), "KeyIssued"),
        (_key(problem=("SecretNotFound", "m")), "SecretNotFound"),
        (_key(expires_at=NOW), "Expired"),
        (_key(disabled=True), "Disabled"),
        (_key(proxy_found=False), "ProxyNotFound"),
    ],
)
def test_apikey_ready_reasons(observation: status.KeyObservation, reason: str) -> None:
    written = status.apikey_status(observation, None, NOW)
    assert written["conditions"][0]["reason"] == reason
    assert written["conditions"][0]["status"] == ("True" if reason == "KeyIssued" else "False")
    assert written["expired"] is (reason == "Expired")


def test_apikey_status_keeps_the_rotation_time_until_the_next_rotation() -> None:
    first = status.apikey_status(_key(rotated_at=NOW, previous_key_expires_at=NOW), None, NOW)
    assert first["rotatedAt"] == "2026-01-01T00:00:00Z"
    assert first["previousKeyExpiresAt"] == "2026-01-01T00:00:00Z"
    later = status.apikey_status(_key(), first, NOW + datetime.timedelta(hours=1))
    assert later["rotatedAt"] == first["rotatedAt"]
    assert not status.changed(first, {"rotatedAt": first["rotatedAt"]})
