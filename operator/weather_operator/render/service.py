"""The proxy Service: ClusterIP, port ``http`` 8080, or ``https`` 443 to the pods' 8443 with spec.tls on."""

from __future__ import annotations

from typing import Any

from weather_operator.render import meta, names


def render(
    proxy: str, namespace: str, tls: bool = False, slot: str | None = None, *, preview: bool = False
) -> dict[str, Any]:
    """The Service ``<fleet>`` (``preview``: ``<fleet>-preview``); ``slot``: of that slot's pods only."""
    name, port = (
        (names.HTTPS_PORT_NAME, names.SERVICE_HTTPS_PORT) if tls else (names.HTTP_PORT_NAME, names.HTTP_PORT)
    )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(
            names.preview_service_name(proxy) if preview else names.service_name(proxy),
            namespace,
            proxy,
            names.PROXY,
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": names.slot_selector_labels(proxy, slot),
            "ports": [
                {
                    "name": name,
                    "port": port,
                    "targetPort": name,
                    "protocol": "TCP",
                }
            ],
        },
    }
