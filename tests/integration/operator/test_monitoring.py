"""Monitoring objects follow the Prometheus Operator CRDs' presence, without an operator restart.

Order matters inside this module: first without the CRDs, then with them (installed from
manifests/test-crds, removed again at the end so other modules see a cluster without them).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hack import kubectl as kubectl_
from tests.integration.operator import fleet
from weather_operator.render import names

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.usefixtures("operator")]

PROXY = "paris"
TEST_CRDS = kubectl_.REPO_ROOT / "manifests" / "test-crds"


@pytest.fixture
def prometheus_crds(kubectl: kubectl_.Kubectl) -> Iterator[None]:
    yield
    kubectl.uninstall_crds(TEST_CRDS)


def test_without_prometheus_crds_monitoring_is_skipped_with_a_warning_then_created_once_installed(
    cluster: fleet.Cluster, kubectl: kubectl_.Kubectl, prometheus_crds: None
) -> None:
    # The staging preset wants both a ServiceMonitor and alerts.
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, environment="staging"))
    cluster.wait_for("deployment", names.deployment_name(PROXY))

    def monitoring_false() -> dict | None:
        cond = cluster.condition("wp", PROXY, "MonitoringConfigured")
        return cond if cond and cond["status"] == "False" else None

    cond = cluster.wait(monitoring_false, "condition MonitoringConfigured=False")
    assert cond["reason"], "a condition needs a CamelCase reason"
    assert "servicemonitor" in cond["message"].lower() or "prometheus" in cond["message"].lower()
    warning = cluster.wait(
        lambda: [e for e in cluster.events(PROXY) if e.get("type") == "Warning"],
        "a Warning Event about the missing Prometheus Operator CRDs",
    )
    assert any(
        "monitoring" in (e.get("message") or "").lower() or "prometheus" in (e.get("message") or "").lower()
        for e in warning
    )
    # The rest of the fleet is there: monitoring is optional.
    for kind, name in (("service", PROXY), ("configmap", names.config_map_name(PROXY))):
        assert cluster.exists(kind, name)

    kubectl.install_crds(TEST_CRDS)
    cluster.wait_for("servicemonitor", names.service_monitor_name(PROXY))
    rule = cluster.wait_for("prometheusrule", names.prometheus_rule_name(PROXY))
    cluster.wait(
        lambda: (c := cluster.condition("wp", PROXY, "MonitoringConfigured")) and c["status"] == "True",
        "condition MonitoringConfigured=True",
    )
    monitor = cluster.get("servicemonitor", names.service_monitor_name(PROXY))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= names.labels(PROXY, names.PROXY).items()
    assert monitor["spec"]["endpoints"][0]["port"] == names.HTTPS_PORT_NAME  # staging: TLS Managed
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts, "the PrometheusRule must define alerts"
