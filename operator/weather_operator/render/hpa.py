"""The HorizontalPodAutoscaler (autoscaling/v2) of the proxy Deployment (the active slot's), on CPU."""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names


def render(
    proxy: str, namespace: str, autoscaling: effective.EffectiveAutoscaling, slot: str | None = None
) -> dict[str, Any]:
    """The HPA of the Deployment ``<fleet>``, or of the active slot's (``slot``) under BlueGreen."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta.metadata(names.hpa_name(proxy), namespace, proxy, names.PROXY),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": names.slot_deployment_name(proxy, slot),
            },
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }
