"""A fleet on a real (kind) cluster: serve, cache, revoke a key, scale, delete.

Images come from the repository's Dockerfiles, the upstream is the in-cluster
Open-Meteo emulator, the fleet is the dev overlay's WeatherProxy.
"""

from __future__ import annotations

import json
import time

import pytest
from pytest_kind import KindCluster  # type: ignore[import-untyped]

from e2e import cluster as kube
from e2e import conftest as fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEY_REVOCATION_BOUND = 90.0  # keys.yaml Secret propagation to the pods (kubelet sync) + reload


def weather(port: int, key: str, city: str = "Paris") -> tuple[int, dict[str, str], bytes]:
    return kube.http_get(f"http://127.0.0.1:{port}/v1/weather?city={city}", {"X-API-Key": key})


def test_weather_is_served_then_cached(operator: KindCluster, fleet: str, proxy_port: int) -> None:
    key = fixtures.create_key(operator, fleet, "e2e-reader")
    # The key's hash reaches the pods through the keys Secret volume: allow for propagation.
    # Probe with another city so that Paris is still uncached below.
    kube.eventually(
        lambda: weather(proxy_port, key, "Lyon")[0] == 200, KEY_REVOCATION_BOUND, "the new key to be accepted"
    )
    status, headers, body = weather(proxy_port, key)
    assert status == 200, body
    assert headers["X-Cache"] == "MISS"
    first = json.loads(body)
    assert first["location"]["name"] == "Paris"
    assert first["source"] == "open-meteo"
    status, headers, body = weather(proxy_port, key)
    assert status == 200
    assert headers["X-Cache"] == "HIT"
    assert json.loads(body)["cache"]["status"] == "hit"


def test_deleting_an_api_key_revokes_it(operator: KindCluster, fleet: str, proxy_port: int) -> None:
    key = fixtures.create_key(operator, fleet, "e2e-revoked")
    kube.eventually(
        lambda: weather(proxy_port, key)[0] == 200, KEY_REVOCATION_BOUND, "the key to be accepted"
    )
    operator.kubectl("-n", fixtures.NAMESPACE, "delete", "apikey/e2e-revoked", "--wait=true")
    started = time.monotonic()
    kube.eventually(lambda: weather(proxy_port, key)[0] == 403, KEY_REVOCATION_BOUND, "the deleted key's 403")
    assert time.monotonic() - started <= KEY_REVOCATION_BOUND


def test_scaling_the_weatherproxy_scales_the_fleet(operator: KindCluster, fleet: str) -> None:
    operator.kubectl("-n", fixtures.NAMESPACE, "scale", f"weatherproxy/{fleet}", "--replicas=3")

    def scaled() -> bool:
        deployment = kube.kubectl_json(operator, "-n", fixtures.NAMESPACE, "get", f"deployment/{fleet}")
        proxy = kube.kubectl_json(operator, "-n", fixtures.NAMESPACE, "get", f"weatherproxy/{fleet}")
        ready = (deployment["status"].get("readyReplicas"), proxy["status"].get("readyReplicas"))
        return ready == (3, 3)

    kube.eventually(scaled, fixtures.READY_TIMEOUT, "3 ready replicas")
    fixtures.wait_ready(operator, f"weatherproxy/{fleet}")


def test_deleting_the_weatherproxy_removes_its_children(
    operator: KindCluster, emulator: dict[str, str]
) -> None:
    kube.apply(operator, fixtures.dev_fleet("doomed", emulator))
    fixtures.wait_ready(operator, "weatherproxy/doomed")
    selector = "app.kubernetes.io/instance=doomed"
    kinds = "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets"
    assert kube.kubectl_json(operator, "-n", fixtures.NAMESPACE, "get", kinds, "-l", selector)["items"]
    operator.kubectl(
        "-n", fixtures.NAMESPACE, "delete", "weatherproxy/doomed", "--wait=true", "--timeout=120s"
    )
    kube.eventually(
        lambda: (
            not kube.kubectl_json(operator, "-n", fixtures.NAMESPACE, "get", kinds, "-l", selector)["items"]
        ),
        120.0,
        "the children of weatherproxy/doomed to be garbage-collected",
    )
