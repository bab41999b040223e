"""A fleet whose Redis pod cannot pull its image says so, with the image, in its status (real kube-apiserver).

There is no kubelet on the local control plane: the StatefulSet controller creates the Redis
pod, and the test writes the pod's status as a kubelet that cannot pull the image writes it
(the API server takes status writes from anyone allowed to; kwok, when it runs fake nodes, is
told to leave that pod's status alone). The StatefulSet controller then counts no ready
replica, and the operator's reconcile reads the pod by the StatefulSet's selector.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from weather_operator import apply, handlers, status
from weather_operator.api import constants
from weather_operator.controller import indexes, requests, runtime, workqueue
from weather_operator.render import names

pytestmark = pytest.mark.controlplane

PROXY = "paris"
KWOK_HANDS_OFF = {"kwok.x-k8s.io/status": "custom"}  # devcluster.controlplane's kwok disregards these


def pulling_fails(image: str) -> dict[str, Any]:
    """The status a kubelet writes for a pod whose only container's image cannot be pulled."""
    unready = {
        "status": "False",
        "reason": "ContainersNotReady",
        "message": "containers with unready status: [redis]",
    }
    return {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", **unready},
            {"type": "ContainersReady", **unready},
        ],
        "containerStatuses": [
            {
                "name": "redis",
                "image": image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {
                    "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
                },
            }
        ],
    }


async def _eventually(probe: Any, what: str, tries: int = 600) -> Any:
    for _ in range(tries):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def test_redis_that_cannot_pull_its_image_names_the_reason_and_the_image(
    controller: runtime.Controller, namespace: str
) -> None:
    api = controller.connection.api
    body = await api.apply(
        {
            "apiVersion": constants.API_VERSION,
            "kind": constants.WEATHERPROXY_KIND,
            "metadata": {"name": PROXY, "namespace": namespace},
            "spec": {"environment": "dev"},
        }
    )
    controller.indexes.fleets = {(namespace, PROXY): [indexes.snapshot(body)]}
    request = workqueue.Request(requests.WEATHERPROXY, namespace, PROXY)
    await controller.fleets.reconcile(request, "test")

    pod_name = f"{names.redis_name(PROXY)}-0"

    async def the_pod() -> dict[str, Any] | None:
        return await api.get(apply.POD, namespace, pod_name)

    pod = await _eventually(the_pod, f"the StatefulSet controller creates {pod_name}")
    image = pod["spec"]["containers"][0]["image"]
    await api.patch(apply.POD, namespace, pod_name, {"metadata": {"annotations": KWOK_HANDS_OFF}})

    async def not_ready_redis() -> dict[str, Any] | None:
        # Written again until it sticks: kwok may have been making the pod Ready as it was annotated.
        pod = await the_pod()
        if (
            pod is None
            or pod["status"].get("containerStatuses", [{}])[0].get("state", {}).get("waiting") is None
        ):
            await api.patch(
                apply.POD, namespace, pod_name, {"status": pulling_fails(image)}, subresource="status"
            )
            return None
        sts = await api.get(apply.STATEFULSET, namespace, names.redis_name(PROXY))
        found = (sts or {}).get("status") or {}
        settled = found.get("observedGeneration") == (sts or {}).get("metadata", {}).get("generation")
        return sts if settled and "replicas" in found and not found.get("readyReplicas") else None

    sts = await _eventually(not_ready_redis, "the StatefulSet counts no ready replica")
    handlers.children.on_workload_event(controller, {"type": "MODIFIED"}, sts)
    await controller.fleets.reconcile(request, "test")

    stored = await api.get(apply.WEATHERPROXY, namespace, PROXY)
    assert stored is not None
    conditions = {c["type"]: c for c in stored["status"]["conditions"]}
    why = f"pod {pod_name} container redis is waiting: ImagePullBackOff (image {image})"
    assert image == constants.DEFAULT_REDIS_IMAGE
    assert conditions["RedisReady"]["status"] == status.FALSE
    assert conditions["RedisReady"]["message"] == f"Redis has no ready replica: {why}"
    degraded = conditions["Degraded"]
    if degraded["reason"] == "RedisUnavailable":  # unless the proxy pods' state comes first
        assert degraded["message"] == f"Redis has no ready replica: {why}"
    # While Redis is not ready, the fleet is looked at again (a pod changes no StatefulSet by itself).
    assert controller.queue.scheduled >= 1
