"""The ServiceMonitor (monitoring.coreos.com/v1) that has Prometheus scrape the proxy pods."""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names
from weather_proxy import contract

API_VERSION = "monitoring.coreos.com/v1"
KIND = "ServiceMonitor"


def _endpoint(
    proxy: str, namespace: str, service_monitor: effective.EffectiveServiceMonitor, tls_secret: str | None
) -> dict[str, Any]:
    """The scrape of /metrics; over HTTPS, verified against the ``ca.crt`` of the pods' certificate
    Secret for the Service's name (Prometheus scrapes the pods by address)."""
    if tls_secret is None:
        return {
            "port": names.HTTP_PORT_NAME,
            "path": contract.METRICS_PATH,
            "interval": service_monitor.interval,
        }
    return {
        "port": names.HTTPS_PORT_NAME,
        "path": contract.METRICS_PATH,
        "interval": service_monitor.interval,
        "scheme": "https",
        "tlsConfig": {
            "ca": {"secret": {"name": tls_secret, "key": names.CA_CERT_KEY}},
            "serverName": f"{names.service_name(proxy)}.{namespace}.svc",
        },
    }


def render(
    proxy: str,
    namespace: str,
    service_monitor: effective.EffectiveServiceMonitor,
    tls_secret: str | None = None,
) -> dict[str, Any]:
    """``tls_secret``: the Secret the pods serve (spec.tls on), whose ``ca.crt`` verifies them."""
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
            "endpoints": [_endpoint(proxy, namespace, service_monitor, tls_secret)],
        },
    }
