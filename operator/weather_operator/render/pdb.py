"""The PodDisruptionBudget (policy/v1) of the proxy pods."""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names


def render(proxy: str, namespace: str, disruption: effective.EffectiveDisruption) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if disruption.min_available is not None:
        spec["minAvailable"] = disruption.min_available
    else:
        spec["maxUnavailable"] = disruption.max_unavailable
    spec["selector"] = {"matchLabels": names.selector_labels(proxy, names.PROXY)}
    # A crash-looping pod must not block node drains.
    spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.metadata(names.pdb_name(proxy), namespace, proxy, names.PROXY),
        "spec": spec,
    }
