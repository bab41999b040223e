"""spec.logging.podLogs follows the PodLogs CRD's presence on a real API server, without an operator restart.

Like the ServiceMonitor (test_monitoring.py): skipped with a condition and a Warning Event while
Grafana's PodLogs CRD is not served, created once it is (the minimal CRD of manifests/test-crds,
removed again at the end so other modules see a cluster without it), deleted when turned off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hack import kubectl as kubectl_
from tests.integration.operator import fleet
from weather_operator import status
from weather_operator.render import names, podlogs

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.usefixtures("operator")]

PROXY = "lyon"
POD_LOGS_CRD = kubectl_.REPO_ROOT / "manifests" / "test-crds" / "monitoring.grafana.com_podlogs.yaml"


@pytest.fixture
def pod_logs_crd(kubectl: kubectl_.Kubectl) -> Iterator[None]:
    yield
    kubectl.uninstall_crds(POD_LOGS_CRD)


def test_pod_logs_skipped_without_its_crd_then_created_once_served_and_deleted_when_off(
    cluster: fleet.Cluster, kubectl: kubectl_.Kubectl, pod_logs_crd: None
) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, logging={"podLogs": {"enabled": True}}))
    cluster.wait_for("deployment", names.deployment_name(PROXY))

    def logs_condition(reason: str) -> dict[str, Any] | None:
        cond = cluster.condition("wp", PROXY, status.LOGS_CONFIGURED)
        return cond if cond and cond["reason"] == reason else None

    skipped = cluster.wait(lambda: logs_condition(status.POD_LOGS_CRD_NOT_INSTALLED), "LogsConfigured=False")
    assert skipped["status"] == "False"
    assert "monitoring.grafana.com" in skipped["message"]
    cluster.wait(
        lambda: [e for e in cluster.events(PROXY) if e.get("reason") == "PodLogsSkipped"],
        "a Warning Event about the missing PodLogs CRD",
    )

    kubectl.install_crds(POD_LOGS_CRD)
    found = cluster.wait_for("podlogs", names.pod_logs_name(PROXY))
    assert found["apiVersion"] == podlogs.API_VERSION
    assert found["spec"]["selector"]["matchLabels"] == names.selector_labels(PROXY, names.PROXY)
    applied = cluster.wait(lambda: logs_condition("Configured"), "LogsConfigured=True")
    assert applied["status"] == "True"

    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, logging={"podLogs": {"enabled": False}}))
    cluster.wait(lambda: not cluster.exists("podlogs", names.pod_logs_name(PROXY)), "the PodLogs deleted")
    cluster.wait(
        lambda: cluster.condition("wp", PROXY, status.LOGS_CONFIGURED) is None, "LogsConfigured gone"
    )
