"""A blue/green promotion (spec.strategy BlueGreen) by the controller against a real kube-apiserver.

kube-controller-manager runs the Deployments; kube-scheduler + kwok make their pods Running and
Ready on fake nodes (without kwok, nothing ever gets Ready: the test is skipped). kwok's pods
serve nothing, so the analysis cannot read their metrics: the promotion here is the manual one
(the ``weatherproxy.dev/promote`` annotation skips the analysis), which takes the same way from
Progressing through Promoting to Stable. The analysis itself is ``weather_operator.analysis``'s
tests' and the state machine's (``tests/unit/operator/test_rollout.py``); on real pods it is not in
the e2e suite yet (docs/rollouts.md, Known limits).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from weather_operator import apply, handlers
from weather_operator.api import constants
from weather_operator.controller import indexes, requests, rollout, runtime, workqueue
from weather_operator.render import names

pytestmark = pytest.mark.controlplane

PROXY = "lyon"
SERVICE = apply.kind_of("v1", "Service")


async def _eventually(probe: Any, what: str, tries: int = 900) -> Any:
    for _ in range(tries):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def _reconcile(controller: runtime.Controller, namespace: str) -> dict[str, Any]:
    """Index the fleet as stored (Kopf's index), feed its Deployments' watch events, reconcile."""
    api = controller.connection.api
    body = await api.get(apply.WEATHERPROXY, namespace, PROXY)
    assert body is not None
    fleets = dict(controller.indexes.fleets)
    fleets[namespace, PROXY] = [indexes.snapshot(body)]
    controller.indexes.fleets = fleets
    for slot in (None, *names.SLOTS):
        found = await api.get(apply.DEPLOYMENT, namespace, names.slot_deployment_name(PROXY, slot))
        if found is not None:
            handlers.children.on_workload_event(controller, {"type": "MODIFIED"}, found)
    request = workqueue.Request(requests.WEATHERPROXY, namespace, PROXY)
    await controller.fleets.reconcile(request, "test")
    stored = await api.get(apply.WEATHERPROXY, namespace, PROXY)
    assert stored is not None
    return stored


async def _ready(
    controller: runtime.Controller, namespace: str, slot: str, replicas: int | None
) -> dict[str, Any]:
    """The slot's Deployment once ``replicas`` (None: as many as it runs) are ready."""
    api = controller.connection.api

    async def probe() -> dict[str, Any] | None:
        found = await api.get(apply.DEPLOYMENT, namespace, names.slot_deployment_name(PROXY, slot))
        want = replicas if replicas is not None else rollout.replicas_of(found) or 1
        return found if rollout.ready(found, want) else None

    found: dict[str, Any] = await _eventually(probe, f"slot {slot} has {replicas} ready replicas")
    return found


def _selector(service: dict[str, Any] | None) -> str | None:
    assert service is not None
    value = service["spec"]["selector"].get(names.SLOT_LABEL)
    return str(value) if value is not None else None


@pytest.mark.parametrize("autoscaling", [False, True], ids=["replicas", "hpa"])
async def test_a_new_template_goes_to_the_other_slot_and_is_promoted_by_the_annotation(
    controller: runtime.Controller, namespace: str, pods_can_run: bool, autoscaling: bool
) -> None:
    if not pods_can_run:
        pytest.skip("no kwok nodes: pods never get Ready on this control plane")
    api = controller.connection.api
    scaling: dict[str, Any] = {"enabled": False}
    if autoscaling:  # the HPA owns the active slot's count: no replicas in its Deployment's apply
        scaling = {"enabled": True, "minReplicas": 2, "maxReplicas": 4}
    spec = {
        "environment": "dev",
        "image": "ghcr.io/weather-proxy/proxy:0.1.0",
        "replicas": 2,
        "autoscaling": scaling,
        "strategy": {"type": "BlueGreen", "blueGreen": {"scaleDownDelaySeconds": 0}},
    }
    wp = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": PROXY, "namespace": namespace},
        "spec": spec,
    }
    await api.apply(wp)

    # A new BlueGreen fleet: blue serves, green idles at 0, the preview Service selects green.
    stored = await _reconcile(controller, namespace)
    assert stored["status"]["rollout"]["phase"] == "Stable"
    assert stored["status"]["rollout"]["activeSlot"] == "blue"
    assert _selector(await api.get(SERVICE, namespace, PROXY)) == "blue"
    assert _selector(await api.get(SERVICE, namespace, names.preview_service_name(PROXY))) == "green"
    green = await api.get(apply.DEPLOYMENT, namespace, names.slot_deployment_name(PROXY, "green"))
    assert green is not None
    assert green["spec"]["replicas"] == 0
    blue = await _ready(controller, namespace, "blue", None if autoscaling else 2)

    # A new pod template: green comes up at full size; blue is not touched.
    await api.apply({**wp, "spec": {**spec, "image": "ghcr.io/weather-proxy/proxy:0.2.0"}})
    stored = await _reconcile(controller, namespace)
    assert stored["status"]["rollout"]["phase"] in {"Progressing", "Analyzing"}
    assert stored["status"]["rollout"]["previewSlot"] == "green"
    conditions = {c["type"]: c for c in stored["status"]["conditions"]}
    assert conditions["RolloutProgressing"]["status"] == "True"
    assert _selector(await api.get(SERVICE, namespace, PROXY)) == "blue"
    untouched = await api.get(apply.DEPLOYMENT, namespace, names.slot_deployment_name(PROXY, "blue"))
    assert untouched is not None
    assert untouched["metadata"]["generation"] == blue["metadata"]["generation"]
    assert untouched["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")

    # Promoted by hand once green is Ready: the Service moves, the annotation is removed.
    await api.patch(
        apply.WEATHERPROXY,
        namespace,
        PROXY,
        {"metadata": {"annotations": {rollout.PROMOTE_ANNOTATION: "true"}}},
    )
    await _ready(controller, namespace, "green", 2)
    stored = await _reconcile(controller, namespace)
    assert stored["status"]["rollout"]["phase"] == "Promoting"
    assert stored["status"]["rollout"]["activeSlot"] == "green"
    assert _selector(await api.get(SERVICE, namespace, PROXY)) == "green"
    assert rollout.PROMOTE_ANNOTATION not in (stored["metadata"].get("annotations") or {})

    # After scaleDownDelaySeconds (0 here): blue scales to 0 and the rollout is Stable on green.
    stored = await _reconcile(controller, namespace)
    assert stored["status"]["rollout"]["phase"] == "Stable"
    assert stored["status"]["rollout"]["activeSlot"] == "green"
    old = await api.get(apply.DEPLOYMENT, namespace, names.slot_deployment_name(PROXY, "blue"))
    assert old is not None
    assert old["spec"]["replicas"] == 0
    conditions = {c["type"]: c for c in stored["status"]["conditions"]}
    assert conditions["RolloutProgressing"]["reason"] == "Stable"
    assert conditions["RolloutAborted"]["status"] == "False"
    assert stored["status"]["selector"].endswith(f"{names.SLOT_LABEL}=green")
    active = await api.get(apply.DEPLOYMENT, namespace, names.slot_deployment_name(PROXY, "green"))
    assert active is not None
    # Green keeps the count it was promoted with, although the operator's apply no longer declares it.
    assert active["spec"]["replicas"] == 2
    if autoscaling:
        hpa = await api.get(apply.kind_of("autoscaling/v2", "HorizontalPodAutoscaler"), namespace, PROXY)
        assert hpa is not None
        assert hpa["spec"]["scaleTargetRef"]["name"] == names.slot_deployment_name(PROXY, "green")
        managers = {entry["manager"] for entry in active["metadata"]["managedFields"]}
        assert rollout.HANDOFF_FIELD_MANAGER in managers
