"""spec.strategy BlueGreen in the render: two slots, the Service/HPA/PDB on the active one, and
RollingUpdate's objects unchanged for a fleet that does not set spec.strategy."""

from __future__ import annotations

from typing import Any

from tests.unit.operator.render import cases
from weather_operator.render import deployment, fleet, names


def _by_id(result: fleet.Fleet) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in result.objects}


def _unwanted(result: fleet.Fleet) -> set[str]:
    return {f"{r.kind}/{r.name}" for r in result.unwanted}


def test_stable_renders_both_slots_and_points_everything_at_the_active_one() -> None:
    result = fleet.render_fleet(cases.inputs("production-blue-green"))
    objects = _by_id(result)
    blue, green = objects["Deployment/paris-blue"], objects["Deployment/paris-green"]
    assert "replicas" not in blue["spec"]  # the HPA's
    assert green["spec"]["replicas"] == 0  # idle
    for slot, obj in (("blue", blue), ("green", green)):
        assert obj["spec"]["selector"]["matchLabels"][names.SLOT_LABEL] == slot
        template = obj["spec"]["template"]
        assert template["metadata"]["labels"][names.SLOT_LABEL] == slot
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == f"paris-config-{slot}"
        assert f"ConfigMap/paris-config-{slot}" in objects
    assert objects["Service/paris"]["spec"]["selector"][names.SLOT_LABEL] == "blue"
    assert objects["Service/paris-preview"]["spec"]["selector"][names.SLOT_LABEL] == "green"
    assert objects["HorizontalPodAutoscaler/paris"]["spec"]["scaleTargetRef"]["name"] == "paris-blue"
    assert objects["PodDisruptionBudget/paris"]["spec"]["selector"]["matchLabels"][names.SLOT_LABEL] == "blue"
    assert {"Deployment/paris", "ConfigMap/paris-config"} <= _unwanted(result)


def test_both_slots_carry_the_same_template_hash_as_the_single_deployment_would() -> None:
    inputs = cases.inputs("production-blue-green")
    objects = _by_id(fleet.render_fleet(inputs))
    hashes = {
        objects[f"Deployment/paris-{slot}"]["spec"]["template"]["metadata"]["annotations"][
            deployment.TEMPLATE_HASH_ANNOTATION
        ]
        for slot in names.SLOTS
    }
    assert hashes == {fleet.pod_template_hash(inputs)}
    changed = cases.inputs("production-blue-green", image="registry.example.com/proxy:2")
    assert fleet.pod_template_hash(changed) not in hashes


def test_a_slot_s_pods_share_their_circuit_breaker_with_their_replica_set_only() -> None:
    objects = _by_id(fleet.render_fleet(cases.inputs("production-blue-green")))
    for slot in names.SLOTS:
        env = objects[f"Deployment/paris-{slot}"]["spec"]["template"]["spec"]["containers"][0]["env"]
        [scope] = [e for e in env if e["name"] == "WEATHER_PROXY_BREAKER_SCOPE"]
        assert scope["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['pod-template-hash']"
    single = _by_id(fleet.render_fleet(cases.inputs("production")))["Deployment/paris"]
    assert "WEATHER_PROXY_BREAKER_SCOPE" not in str(single)


def test_a_kept_slot_is_neither_applied_nor_deleted() -> None:
    result = fleet.render_fleet(cases.inputs("production-blue-green-analyzing"))
    objects = _by_id(result)
    assert "Deployment/paris-blue" not in objects
    assert "ConfigMap/paris-config-blue" not in objects
    assert not {"Deployment/paris-blue", "ConfigMap/paris-config-blue"} & _unwanted(result)
    assert objects["Deployment/paris-green"]["spec"]["replicas"] == 3  # full size, over the HPA
    assert objects["Service/paris"]["spec"]["selector"][names.SLOT_LABEL] == "blue"


def test_switching_back_to_rolling_update_deletes_the_slots_and_the_preview_service() -> None:
    inputs = cases.inputs("production", workloads=fleet.Workloads(blue_green=True))
    result = fleet.render_fleet(inputs)
    objects = _by_id(result)
    assert names.SLOT_LABEL not in objects["Service/paris"]["spec"]["selector"]
    assert {
        "Deployment/paris-blue",
        "Deployment/paris-green",
        "ConfigMap/paris-config-blue",
        "ConfigMap/paris-config-green",
        "Service/paris-preview",
    } <= _unwanted(result)


def test_rolling_update_renders_exactly_what_it_did_before_blue_green() -> None:
    plain = fleet.render_fleet(cases.inputs("production"))
    explicit = fleet.render_fleet(cases.inputs("production", strategy={"type": "RollingUpdate"}))
    assert plain == explicit
    assert not any(names.SLOT_LABEL in str(obj) for obj in plain.objects)
    assert not {"Service/paris-preview", "Deployment/paris-blue"} & _unwanted(plain)
