"""The NetworkPolicy that lets only the fleet's proxy pods reach its Redis, on 6379."""

from __future__ import annotations

from typing import Any

from weather_operator.render import meta, names


def render(proxy: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta.metadata(names.redis_network_policy_name(proxy), namespace, proxy, names.REDIS),
        "spec": {
            "podSelector": {"matchLabels": names.selector_labels(proxy, names.REDIS)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": names.selector_labels(proxy, names.PROXY)}}],
                    "ports": [{"protocol": "TCP", "port": names.REDIS_PORT}],
                }
            ],
        },
    }
