"""spec.logging.podLogs: a Grafana PodLogs for the proxy pods where its CRD is served (as ServiceMonitor)."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from tests.unit.operator.render import cases
from tests.unit.operator.render.test_monitoring_crds import _check
from weather_operator import status
from weather_operator.render import fleet, names, podlogs

TEST_CRD = (
    pathlib.Path(__file__).resolve().parents[4]
    / "manifests"
    / "test-crds"
    / "monitoring.grafana.com_podlogs.yaml"
)
ENABLED = {"podLogs": {"enabled": True}}


def pod_logs_of(result: fleet.Fleet) -> list[dict[str, Any]]:
    return [obj for obj in result.objects if obj["kind"] == podlogs.KIND]


def test_the_rendered_pod_logs_fits_the_crd_and_selects_the_proxy_pods() -> None:
    crd = yaml.safe_load(TEST_CRD.read_text(encoding="utf-8"))
    [version] = crd["spec"]["versions"]
    [obj] = pod_logs_of(fleet.render_fleet(cases.inputs("production-customised")))
    assert obj["apiVersion"] == f"{crd['spec']['group']}/{version['name']}" == podlogs.API_VERSION
    _check(version["schema"]["openAPIV3Schema"], obj, podlogs.KIND)
    assert obj["spec"]["selector"]["matchLabels"] == names.selector_labels(cases.NAME, names.PROXY)
    assert obj["spec"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": cases.NAMESPACE}
    }
    assert obj["metadata"]["labels"]["instance"] == "primary"  # spec.logging.podLogs.labels


def test_without_the_crd_nothing_of_the_kind_is_rendered_or_deleted() -> None:
    result = fleet.render_fleet(cases.inputs("production", pod_logs_available=False, logging=ENABLED))
    assert not pod_logs_of(result)
    assert podlogs.KIND not in {ref.kind for ref in result.unwanted}


def test_with_the_crd_it_follows_the_spec_and_is_off_by_default() -> None:
    on = fleet.render_fleet(cases.inputs("production", pod_logs_available=True, logging=ENABLED))
    assert [obj["metadata"]["name"] for obj in pod_logs_of(on)] == [names.pod_logs_name(cases.NAME)]
    off = fleet.render_fleet(cases.inputs("production", pod_logs_available=True))
    assert not pod_logs_of(off)
    assert fleet.ObjectRef(podlogs.API_VERSION, podlogs.KIND, names.pod_logs_name(cases.NAME)) in off.unwanted


def test_logs_configured_says_applied_skipped_or_nothing() -> None:
    spec = cases.inputs("production", logging=ENABLED).spec
    applied = status.logs_configured(spec.pod_logs, available=True)
    skipped = status.logs_configured(spec.pod_logs, available=False)
    assert applied is not None
    assert (applied.type, applied.status, applied.reason) == (
        status.LOGS_CONFIGURED,
        status.TRUE,
        "Configured",
    )
    assert skipped is not None
    assert (skipped.status, skipped.reason) == (status.FALSE, status.POD_LOGS_CRD_NOT_INSTALLED)
    assert status.logs_configured(cases.inputs("production").spec.pod_logs, available=True) is None
    condition = {
        "conditions": [{"type": status.LOGS_CONFIGURED, "reason": status.POD_LOGS_CRD_NOT_INSTALLED}]
    }
    assert status.logs_outdated(condition, available=True)
    assert not status.logs_outdated(condition, available=False)
