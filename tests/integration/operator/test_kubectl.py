"""The CRDs work with plain kubectl: ``kubectl scale`` through the scale subresource, ``kubectl wait``.

Pods become Ready only when the control plane runs kwok fake nodes; without them the
fleet is never Ready, and ``kubectl wait`` is proven on the condition that can hold
(MonitoringConfigured, or Progressing) instead.
"""

from __future__ import annotations

import pytest

from tests.integration.operator import fleet
from weather_operator.render import names

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.usefixtures("operator")]

PROXY = "paris"


def test_kubectl_scale_sets_spec_replicas_and_the_deployment_follows(cluster: fleet.Cluster) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, replicas=1))
    cluster.wait_for("deployment", names.deployment_name(PROXY))
    cluster.kubectl.run("scale", f"wp/{PROXY}", "--replicas=4", "-n", cluster.namespace)
    assert cluster.get("wp", PROXY)["spec"]["replicas"] == 4
    cluster.wait(
        lambda: cluster.get("deployment", names.deployment_name(PROXY))["spec"]["replicas"] == 4,
        "the Deployment to get 4 replicas",
    )
    scale = cluster.kubectl.run(
        "get",
        "--raw",
        f"/apis/weatherproxy.dev/v1alpha1/namespaces/{cluster.namespace}/weatherproxies/{PROXY}/scale",
    )
    assert '"replicas":4' in scale.replace(" ", "")


def test_kubectl_wait_on_a_condition(cluster: fleet.Cluster, pods_can_run: bool) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, replicas=1))
    condition = "Ready" if pods_can_run else "MonitoringConfigured"
    if not pods_can_run:
        # Without a kubelet, pods never run: wait on a condition that can hold, and prove Ready is honest.
        cluster.wait(lambda: cluster.condition("wp", PROXY, condition), f"condition {condition}")
        status = cluster.condition("wp", PROXY, condition)
        assert status is not None
        cluster.kubectl.run(
            "wait",
            f'--for=jsonpath={{.status.conditions[?(@.type=="{condition}")].status}}={status["status"]}',
            f"wp/{PROXY}",
            "-n",
            cluster.namespace,
            "--timeout=60s",
            timeout=70,
        )
        ready = cluster.condition("wp", PROXY, "Ready")
        assert ready is not None
        assert ready["status"] == "False"
        return
    cluster.kubectl.run(
        "wait", "--for=condition=Ready", f"wp/{PROXY}", "-n", cluster.namespace, "--timeout=90s", timeout=100
    )
    wp = cluster.get("wp", PROXY)
    assert wp["status"]["readyReplicas"] == 1
