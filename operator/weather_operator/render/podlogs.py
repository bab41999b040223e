"""The Grafana PodLogs (monitoring.grafana.com/v1alpha2) that has Grafana Alloy collect the proxies' logs.

Alloy's ``loki.source.podlogs`` reads PodLogs objects and tails the pods they select through the
API server. This one selects the fleet's proxy pods in its namespace and labels their lines
``fleet=<name>``, so that a LogQL query (and the dashboard's logs panel) can pick one fleet.
"""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names

API_VERSION = "monitoring.grafana.com/v1alpha2"
KIND = "PodLogs"
FLEET_LABEL = "fleet"


def render(proxy: str, namespace: str, pod_logs: effective.EffectivePodLogs) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta.metadata(
            names.pod_logs_name(proxy), namespace, proxy, names.MONITORING, extra_labels=pod_logs.labels
        ),
        "spec": {
            "selector": {"matchLabels": names.selector_labels(proxy, names.PROXY)},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "relabelings": [{"action": "replace", "targetLabel": FLEET_LABEL, "replacement": proxy}],
        },
    }
