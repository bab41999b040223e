"""The proxy Service: ClusterIP, port ``http`` 8080."""

from __future__ import annotations

from typing import Any

from weather_operator.render import meta, names


def render(proxy: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(names.service_name(proxy), namespace, proxy, names.PROXY),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector_labels(proxy, names.PROXY),
            "ports": [
                {
                    "name": names.HTTP_PORT_NAME,
                    "port": names.HTTP_PORT,
                    "targetPort": names.HTTP_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
