"""Making a fleet's Redis Service headless: the real API server refuses the change in place.

Fleets rendered before the Service was headless have a cluster IP; ``spec.clusterIP``
cannot change on a live Service, so the operator's server-side apply of the new render
gets a 422 whose message is pinned here (the apply path replaces the Service on it).
No operator is needed: the renderer's objects are applied as the operator applies them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.integration.operator import fleet
from weather_operator.api import constants
from weather_operator.render import redis

pytestmark = [pytest.mark.controlplane, pytest.mark.integration]

PROXY = "paris"


@pytest.fixture
def core(kubeconfig: Path) -> Iterator[kubernetes.client.CoreV1Api]:
    client = kubernetes.config.new_client_from_config(str(kubeconfig))
    try:
        yield kubernetes.client.CoreV1Api(client)
    finally:
        client.close()


def _server_side_apply(core: kubernetes.client.CoreV1Api, obj: dict[str, Any]) -> Any:
    meta = obj["metadata"]
    return core.patch_namespaced_service(
        meta["name"],
        meta["namespace"],
        obj,
        field_manager=constants.FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def test_a_cluster_ip_service_cannot_become_headless_in_place(
    cluster: fleet.Cluster, core: kubernetes.client.CoreV1Api
) -> None:
    headless = redis.render_service(PROXY, cluster.namespace)
    assert headless["spec"]["clusterIP"] == "None"
    before = copy.deepcopy(headless)
    del before["spec"]["clusterIP"]  # what the operator rendered before
    created = _server_side_apply(core, before)
    assert created.spec.cluster_ip not in (None, "", "None")

    with pytest.raises(kubernetes.client.ApiException) as caught:
        _server_side_apply(core, headless)

    assert caught.value.status == 422
    status = json.loads(caught.value.body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Invalid", 422)
    name = redis.render_service(PROXY, cluster.namespace)["metadata"]["name"]
    assert status["message"].startswith(f'Service "{name}" is invalid: spec.clusterIPs[0]: Invalid value:')
    assert "may not change once set" in status["message"]
    causes = {(c["field"], c["reason"]) for c in status["details"]["causes"]}
    assert ("spec.clusterIPs[0]", "FieldValueInvalid") in causes

    # Deleted and created anew, the headless Service is accepted.
    core.delete_namespaced_service(name, cluster.namespace)
    recreated = _server_side_apply(core, headless)
    assert recreated.spec.cluster_ip == "None"
