"""The PodDisruptionBudget (policy/v1) of the proxy pods."""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names


def render(
    proxy: str, namespace: str, disruption: effective.EffectiveDisruption, slot: str | None = None
) -> dict[str, Any]:
    """The PDB of the proxy pods (``slot``: of the active slot's pods only, under BlueGreen)."""
    spec: dict[str, Any] = {}
    if disruption.min_available is not None:
        spec["minAvailable"] = disruption.min_available
    else:
        spec["maxUnavailable"] = disruption.max_unavailable
    spec["selector"] = {"matchLabels": names.slot_selector_labels(proxy, slot)}
    # A crash-looping pod must not block node drains.
    spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.metadata(names.pdb_name(proxy), namespace, proxy, names.PROXY),
        "spec": spec,
    }
