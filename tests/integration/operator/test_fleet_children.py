"""A WeatherProxy becomes its children on a real API server, and they follow its spec.

Server-side apply, owner references and garbage collection by kube-controller-manager
are the real thing here; nothing is emulated.
"""

from __future__ import annotations

import pytest

from tests.integration.operator import fleet
from weather_operator.api import constants
from weather_operator.render import names

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.usefixtures("operator")]

PROXY = "paris"
DEV_CHILDREN = (
    ("deployment", names.deployment_name(PROXY)),
    ("service", names.service_name(PROXY)),
    ("configmap", names.config_map_name(PROXY)),
    ("secret", names.keys_secret_name(PROXY)),
    ("statefulset", names.redis_name(PROXY)),
    ("service", names.redis_service_name(PROXY)),
    ("secret", names.redis_secret_name(PROXY)),
    ("networkpolicy", names.redis_network_policy_name(PROXY)),
    ("serviceaccount", names.service_account_name(PROXY)),
    ("role", names.keys_reader_name(PROXY)),
    ("rolebinding", names.keys_reader_name(PROXY)),
)


def _owned_by(obj: dict, wp: dict) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["uid"] == wp["metadata"]["uid"] and r.get("controller") for r in refs)


def _config_hash(cluster: fleet.Cluster) -> str:
    dep = cluster.get("deployment", names.deployment_name(PROXY))
    return str(dep["spec"]["template"]["metadata"]["annotations"][constants.CONFIG_HASH_ANNOTATION])


def _observed(cluster: fleet.Cluster) -> dict:
    """The WeatherProxy once the operator has reconciled its current generation."""

    def probe() -> dict | None:
        wp = cluster.get("wp", PROXY)
        status = wp.get("status") or {}
        return wp if status.get("observedGeneration") == wp["metadata"]["generation"] else None

    got: dict = cluster.wait(probe, f"wp/{PROXY} status.observedGeneration to catch up")
    return got


def test_dev_fleet_has_every_child_with_the_expected_content(cluster: fleet.Cluster) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, cache={"ttlSeconds": 120}))
    for kind, name in DEV_CHILDREN:
        cluster.wait_for(kind, name)
    wp = _observed(cluster)

    for kind, name in DEV_CHILDREN:
        obj = cluster.get(kind, name)
        assert _owned_by(obj, wp), f"{kind}/{name} has no controller owner reference to the WeatherProxy"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == PROXY
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "weather-operator"

    dep = cluster.get("deployment", names.deployment_name(PROXY))
    assert dep["spec"]["replicas"] == 1  # the dev preset
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == constants.DEFAULT_PROXY_IMAGE
    assert fleet.managed_by(dep, "f:spec.f:replicas")

    cfg = cluster.config(PROXY)
    assert cfg["environment"] == "dev"
    assert cfg["cache"]["ttlSeconds"] == 120
    assert cfg["redis"]["url"] == names.redis_url(PROXY)
    assert cfg["auth"]["required"] is True
    assert cfg["auth"]["keysFile"] == names.KEYS_PATH
    assert cfg["auth"]["kubernetes"]["secretNames"] == [names.keys_secret_name(PROXY)]
    keys_file = cluster.keys_file(PROXY) or {}
    assert keys_file.get("keys") == []
    assert keys_file.get("revision", 0) > 0

    redis_secret = cluster.get("secret", names.redis_secret_name(PROXY))
    assert len(fleet.secret_value(redis_secret, names.REDIS_PASSWORD_KEY)) >= 16

    status = wp["status"]
    assert status["selector"] == names.selector_string(PROXY)
    assert status["endpoint"] == names.endpoint(PROXY, cluster.namespace)
    assert status["configHash"] == _config_hash(cluster)
    assert {c["type"] for c in status["conditions"]} >= {"Ready"}

    # dev preset: no autoscaler, no disruption budget, no ingress.
    assert not cluster.exists("hpa", names.hpa_name(PROXY))
    assert not cluster.exists("pdb", names.pdb_name(PROXY))
    assert not cluster.exists("ingress", names.ingress_name(PROXY))


def test_production_fleet_has_an_autoscaler_and_a_disruption_budget(cluster: fleet.Cluster) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, environment="production"))
    hpa = cluster.wait_for("hpa", names.hpa_name(PROXY))
    pdb = cluster.wait_for("pdb", names.pdb_name(PROXY))
    dep = cluster.wait_for("deployment", names.deployment_name(PROXY))

    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": PROXY}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == names.selector_labels(PROXY, names.PROXY)
    # The HPA owns the replica count: the operator never claims it.
    assert not fleet.managed_by(dep, "f:spec.f:replicas")
    sts = cluster.wait_for("statefulset", names.redis_name(PROXY))
    assert sts["spec"].get("volumeClaimTemplates"), "production keeps Redis data on a PVC"


def test_replicas_change_keeps_the_config_hash_and_a_cache_change_rolls_it(cluster: fleet.Cluster) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, replicas=1))
    cluster.wait_for("deployment", names.deployment_name(PROXY))
    first_hash = _observed(cluster)["status"]["configHash"]

    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, replicas=3))
    cluster.wait(
        lambda: cluster.get("deployment", names.deployment_name(PROXY))["spec"]["replicas"] == 3,
        "Deployment replicas to follow spec.replicas",
    )
    assert _config_hash(cluster) == first_hash
    assert _observed(cluster)["status"]["configHash"] == first_hash

    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, replicas=3, cache={"ttlSeconds": 42}))
    cluster.wait(lambda: cluster.config(PROXY)["cache"]["ttlSeconds"] == 42, "config.yaml to get the new ttl")
    cluster.wait(lambda: _config_hash(cluster) != first_hash, "the pod template's config hash to change")
    assert _observed(cluster)["status"]["configHash"] == _config_hash(cluster)


def test_autoscaling_on_and_off(cluster: fleet.Cluster) -> None:
    on = {"enabled": True, "minReplicas": 2, "maxReplicas": 5}
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, replicas=1, autoscaling=on))
    hpa = cluster.wait_for("hpa", names.hpa_name(PROXY))
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    dep = cluster.wait_for("deployment", names.deployment_name(PROXY))
    assert not fleet.managed_by(dep, "f:spec.f:replicas")

    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, replicas=1, autoscaling={"enabled": False}))
    cluster.wait_gone("hpa", names.hpa_name(PROXY), timeout=fleet.CONVERGE_SECONDS)
    cluster.wait(
        lambda: fleet.managed_by(cluster.get("deployment", PROXY), "f:spec.f:replicas"),
        "the operator to own Deployment spec.replicas again",
    )
    assert cluster.get("deployment", PROXY)["spec"]["replicas"] == 1


def test_ingress_on_and_off(cluster: fleet.Cluster) -> None:
    ingress = {"enabled": True, "host": "weather.example.com", "className": "nginx"}
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, ingress=ingress))
    ing = cluster.wait_for("ingress", names.ingress_name(PROXY))
    rule = ing["spec"]["rules"][0]
    assert rule["host"] == "weather.example.com"
    assert ing["spec"]["ingressClassName"] == "nginx"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == names.service_name(PROXY)

    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, ingress={"enabled": False}))
    cluster.wait_gone("ingress", names.ingress_name(PROXY), timeout=fleet.CONVERGE_SECONDS)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("deployment", names.deployment_name(PROXY)),
        ("configmap", names.config_map_name(PROXY)),
        ("secret", names.keys_secret_name(PROXY)),
    ],
)
def test_a_deleted_child_is_restored(cluster: fleet.Cluster, kind: str, name: str) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace))
    before = cluster.wait_for(kind, name)
    cluster.delete(kind, name, wait=True)
    cluster.wait(
        lambda: (
            (obj := cluster.get_or_none(kind, name)) is not None
            and obj["metadata"]["uid"] != before["metadata"]["uid"]
        ),
        f"{kind}/{name} to be re-created",
    )


def test_deleting_the_weatherproxy_garbage_collects_its_children(cluster: fleet.Cluster) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace))
    for kind, name in DEV_CHILDREN:
        cluster.wait_for(kind, name)
    cluster.delete("wp", PROXY, wait=True)
    for kind, name in DEV_CHILDREN:
        cluster.wait_gone(kind, name)


def test_a_refused_apply_is_reported_as_degraded_and_recovers_by_itself(cluster: fleet.Cluster) -> None:
    # A ResourceQuota that allows no Services: the API server refuses the fleet's Service.
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-services", "namespace": cluster.namespace},
        "spec": {"hard": {"services": "0"}},
    }
    cluster.apply(quota)
    cluster.wait(
        lambda: (cluster.get("resourcequota", "no-services").get("status") or {}).get("hard"),
        "the quota controller to count the namespace",
    )
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace))

    def degraded(reason: str, status: str) -> dict | None:
        cond = cluster.condition("wp", PROXY, "Degraded")
        return cond if cond and (cond["status"], cond["reason"]) == (status, reason) else None

    refused = cluster.wait(lambda: degraded("ReconcileFailed", "True"), "Degraded=True ReconcileFailed")
    assert "quota" in refused["message"].lower()
    assert not cluster.exists("service", names.service_name(PROXY))

    cluster.kubectl.run("delete", "resourcequota", "no-services", "-n", cluster.namespace)
    cluster.wait_for("service", names.service_name(PROXY))
    cluster.wait(
        lambda: (cond := cluster.condition("wp", PROXY, "Degraded")) and cond["reason"] != "ReconcileFailed",
        "the ReconcileFailed condition to clear after the retry",
    )
