"""The Ingress (networking.k8s.io/v1) of the fleet, with TLS when a certificate Secret is named."""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names


def render(proxy: str, namespace: str, ingress: effective.EffectiveIngress) -> dict[str, Any]:
    assert ingress.host is not None  # guaranteed by IngressSpec validation when enabled
    spec: dict[str, Any] = {}
    if ingress.class_name is not None:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name is not None:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    spec["rules"] = [
        {
            "host": ingress.host,
            "http": {
                "paths": [
                    {
                        "path": ingress.path,
                        "pathType": "Prefix",
                        "backend": {
                            "service": {
                                "name": names.service_name(proxy),
                                "port": {"name": names.HTTP_PORT_NAME},
                            }
                        },
                    }
                ]
            },
        }
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta.metadata(
            names.ingress_name(proxy), namespace, proxy, names.PROXY, annotations=ingress.annotations
        ),
        "spec": spec,
    }
