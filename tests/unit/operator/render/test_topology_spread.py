"""Proxy pods spread over nodes and zones: soft by the presets, hard or off when the spec says so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.operator.render import cases
from weather_operator.api import resolve, weatherproxy
from weather_operator.render import deployment, names, redis

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def _pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    effective = resolve.effective(weatherproxy.WeatherProxySpec.model_validate(spec), cases.DEFAULT_IMAGE)
    rendered = deployment.render(cases.NAME, cases.NAMESPACE, effective, config_hash="0" * 64)
    return rendered["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _constraints(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (c["topologyKey"], c["whenUnsatisfiable"])
        for c in _pod_spec(spec).get("topologySpreadConstraints", [])
    ]


@pytest.mark.parametrize("environment", ["dev", "staging", "production"])
def test_every_preset_spreads_softly_over_nodes_and_zones(environment: str) -> None:
    assert _constraints({"environment": environment}) == [
        (HOSTNAME, "ScheduleAnyway"),
        (ZONE, "ScheduleAnyway"),
    ]


def test_hard_spread_refuses_to_schedule_an_unbalancing_pod() -> None:
    spec = {"environment": "production", "topologySpread": {"mode": "Hard"}}
    assert _constraints(spec) == [(HOSTNAME, "DoNotSchedule"), (ZONE, "DoNotSchedule")]


def test_off_renders_no_constraint() -> None:
    pod = _pod_spec({"environment": "production", "topologySpread": {"mode": "Off"}})
    assert "topologySpreadConstraints" not in pod


def test_constraints_count_only_this_fleets_proxy_pods() -> None:
    for constraint in _pod_spec({"environment": "production"})["topologySpreadConstraints"]:
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"] == {"matchLabels": names.selector_labels(cases.NAME, names.PROXY)}


def test_an_unset_mode_takes_the_preset() -> None:
    assert _constraints({"environment": "production", "topologySpread": {}}) == _constraints(
        {"environment": "production"}
    )


def test_the_redis_service_is_headless() -> None:
    service = redis.render_service(cases.NAME, cases.NAMESPACE)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == names.selector_labels(cases.NAME, names.REDIS)
