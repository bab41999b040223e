"""NetworkPolicies of a fleet: who may reach its proxies, its Redis (on 6379) and its history database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from weather_operator.render import meta, names


def ingress_policy(
    name: str,
    namespace: str,
    proxy: str,
    component: str,
    pods: Mapping[str, str],
    rules: list[dict[str, Any]],
) -> dict[str, Any]:
    """A NetworkPolicy admitting only ``rules`` (ingress ``from``/``ports``) to the pods labelled ``pods``."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta.metadata(name, namespace, proxy, component),
        "spec": {"podSelector": {"matchLabels": dict(pods)}, "policyTypes": ["Ingress"], "ingress": rules},
    }


def render(proxy: str, namespace: str) -> dict[str, Any]:
    """Only the fleet's proxy pods reach its Redis."""
    return ingress_policy(
        names.redis_network_policy_name(proxy),
        namespace,
        proxy,
        names.REDIS,
        names.selector_labels(proxy, names.REDIS),
        [
            {
                "from": [{"podSelector": {"matchLabels": names.selector_labels(proxy, names.PROXY)}}],
                "ports": [{"protocol": "TCP", "port": names.REDIS_PORT}],
            }
        ],
    )


def render_proxy(proxy: str, namespace: str, port: int) -> dict[str, Any]:
    """Anyone reaches the proxy pods, on their one port (API, probes and metrics: Prometheus too)
    and on nothing else. Egress stays open: Open-Meteo, Redis, PostgreSQL, the API server, DNS."""
    return ingress_policy(
        names.network_policy_name(proxy),
        namespace,
        proxy,
        names.PROXY,
        names.selector_labels(proxy, names.PROXY),
        [{"ports": [{"protocol": "TCP", "port": port}]}],
    )
