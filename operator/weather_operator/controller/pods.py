"""The pods of a fleet's child that is not ready, read so that its status can say why (``podstate``).

Pods are not watched: a child's pods are listed by the child's selector, at most ``LIMIT``
of them, and only while the child (as its own watch events show it) has fewer ready or
updated replicas than it wants. While one is not ready, the fleet's reconcile asks to run
again after ``WEATHER_OPERATOR_NOT_READY_RECHECK_SECONDS``: a pod going from
``ContainerCreating`` to ``ImagePullBackOff`` changes no Deployment or StatefulSet status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from weather_operator import apply, podstate

logger = logging.getLogger(__name__)

LIMIT = 50
"""Pods read per look at a child (Redis and PostgreSQL run one; the proxies, the HPA's maximum)."""


async def why_not_ready(
    api: apply.Cluster,
    namespace: str,
    workload: Mapping[str, Any] | None,
    wanted: int,
    labels: Mapping[str, str],
) -> str | None:
    """Why the pods of ``workload`` (selected by ``labels``) are not ready; None when it is ready.

    A list that fails (an install whose RBAC predates the pods rule, an API server error)
    leaves the status without the pods' words; it does not fail the reconcile.
    """
    if not podstate.needs_a_look(workload, wanted):
        return None
    try:
        pods = await api.list(apply.POD, namespace, podstate.selector(labels), LIMIT)
    except apply.ApiError as exc:
        logger.warning("cannot list the pods %s in %s: %s", podstate.selector(labels), namespace, exc)
        return None
    return podstate.why_not_ready(pods)
