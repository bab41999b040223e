"""The whole operator (Kopf + handlers) against the kmock emulator: objects in, children out."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import kmock
import yaml
from kopf.testing import KopfRunner

from weather_operator.api import constants

WP = f"{constants.GROUP}/{constants.VERSION}/{constants.WEATHERPROXY_PLURAL}"
AK = f"{constants.GROUP}/{constants.VERSION}/{constants.APIKEY_PLURAL}"
ARGS = ["run", "-A", "--standalone", "-m", "weather_operator.handlers"]


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
        except (KeyError, AssertionError):
            result = None
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {check}")
        await asyncio.sleep(0.05)


def obj(api: kmock.KubernetesEmulator, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
    key = (resource, namespace, name)
    if key not in api.objects or api.objects[key].deleted:
        return None
    return dict(api.objects[key].raw)


def weatherproxy(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{constants.GROUP}/{constants.VERSION}",
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": name, "namespace": "weather", "uid": f"uid-{name}", "generation": 1, "resourceVersion": "1"},
        "spec": {"environment": "dev", **spec},
    }


async def run_operator(coro: Callable[[], Any]) -> None:
    runner = KopfRunner(ARGS, reraise=False)
    runner.__enter__()
    try:
        await coro()
    finally:
        await asyncio.to_thread(runner.__exit__, None, None, None)
    assert runner.exception is None, runner.output


async def test_weatherproxy_gets_its_children_and_status(cluster_api: kmock.KubernetesEmulator, kubeconfig: Any) -> None:
    cluster_api.objects[WP, "weather", "paris"] = weatherproxy("paris")

    async def scenario() -> None:
        deployment = await eventually(lambda: obj(cluster_api, "apps/v1/deployments", "weather", "paris"))
        assert deployment["metadata"]["ownerReferences"][0]["uid"] == "uid-paris"
        assert obj(cluster_api, "v1/configmaps", "weather", "paris-config")
        keys_secret = await eventually(lambda: obj(cluster_api, "v1/secrets", "weather", "paris-keys"))
        assert yaml.safe_load(base64.b64decode(keys_secret["data"]["keys.yaml"])) == {"keys": []}
        status = await eventually(lambda: obj(cluster_api, WP, "weather", "paris")["status"])
        types = {c["type"]: c for c in status["conditions"]}
        assert types["MonitoringConfigured"]["status"] == "False"
        assert status["endpoint"] == "http://paris.weather.svc:8080"

    await run_operator(scenario)
