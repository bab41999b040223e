"""The ServiceMonitor (monitoring.coreos.com/v1) that has Prometheus scrape the proxy pods."""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names
from weather_proxy import contract

API_VERSION = "monitoring.coreos.com/v1"
KIND = "ServiceMonitor"


def render(proxy: str, namespace: str, service_monitor: effective.EffectiveServiceMonitor) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta.metadata(
            names.service_monitor_name(proxy),
            namespace,
            proxy,
            names.MONITORING,
            extra_labels=service_monitor.labels,
        ),
        "spec": {
            "selector": {"matchLabels": names.selector_labels(proxy, names.PROXY)},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [
                {
                    "port": names.HTTP_PORT_NAME,
                    "path": contract.METRICS_PATH,
                    "interval": service_monitor.interval,
                }
            ],
        },
    }
