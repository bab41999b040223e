"""A fleet whose pods really run: serve and cache through the Service, DNS to Redis, scale, HPA, delete.

Images are the repository's Dockerfiles built on this machine; the upstream is the
in-cluster Open-Meteo emulator; the fleet is the dev overlay's WeatherProxy.
"""

from __future__ import annotations

import json
import re

import pytest

from e2e import cluster as k
from e2e import conftest as fx
from weather_operator import podstate
from weather_operator.render import names

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEY_PROPAGATION_BOUND = 120.0  # keys Secret projection by the kubelet (sync period + cache TTL) + reload


def weather(base: str, key: str, city: str = "Paris") -> tuple[int, dict[str, str], bytes]:
    return k.http_get(f"{base}/v1/weather?city={city}", {"X-API-Key": key})


def test_fleet_pods_run_as_rendered(installed: k.Kube, fleet: str) -> None:
    """Ready from the real probes, under Pod Security `restricted`, as UID 10001 on a read-only root."""
    pods = installed.json("-n", fx.NAMESPACE, "get", "pods", "-l", f"app.kubernetes.io/instance={fleet}")[
        "items"
    ]
    proxy_pods = [p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/component") == "proxy"]
    assert proxy_pods, [p["metadata"]["name"] for p in pods]
    for pod in proxy_pods:
        statuses = pod["status"]["containerStatuses"]
        assert all(s["ready"] and "running" in s["state"] for s in statuses), statuses
        container = pod["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        uid = installed.kubectl("-n", fx.NAMESPACE, "exec", pod["metadata"]["name"], "--", "id", "-u")
        assert uid.strip() == "10001"
    namespace = installed.json("get", "namespace", fx.NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_weather_served_then_cached_from_the_host(installed: k.Kube, fleet: str, proxy_url: str) -> None:
    key = fx.key_of(installed, "developers")  # the overlay's sample key
    k.eventually(lambda: weather(proxy_url, key, "Lyon")[0] == 200, KEY_PROPAGATION_BOUND, "the key accepted")
    status, headers, body = weather(proxy_url, key, "Nantes")
    assert status == 200, body
    assert headers["X-Cache"] == "MISS"
    doc = json.loads(body)
    assert doc["location"]["name"] == "Nantes"
    assert doc["source"] == "open-meteo"
    status, headers, body = weather(proxy_url, key, "Nantes")
    assert status == 200
    assert headers["X-Cache"] == "HIT"


def test_weather_through_port_forward(installed: k.Kube, fleet: str) -> None:
    key = fx.key_of(installed, "developers")
    with installed.port_forward(f"service/{fleet}", 8080, fx.NAMESPACE) as port:
        base = f"http://127.0.0.1:{port}"
        k.eventually(
            lambda: weather(base, key, "Lille")[0] == 200, KEY_PROPAGATION_BOUND, "200 via port-forward"
        )
        assert weather(base, key, "Lille")[1]["X-Cache"] == "HIT"


def test_weather_from_a_pod_through_service_dns(installed: k.Kube, fleet: str, proxy_url: str) -> None:
    """From another pod, by the Service's DNS name (CoreDNS + kube-proxy), then HIT."""
    key = fx.key_of(installed, "developers")
    k.eventually(lambda: weather(proxy_url, key, "Lyon")[0] == 200, KEY_PROPAGATION_BOUND, "the key accepted")
    script = (
        "import sys, urllib.request as u\n"
        "r = u.Request(sys.argv[1], headers={'X-API-Key': sys.argv[2]})\n"
        "for _ in range(2):\n"
        "    with u.urlopen(r, timeout=10) as resp:\n"
        "        print(resp.status, resp.headers['X-Cache'])\n"
    )
    url = f"http://{fleet}.{fx.NAMESPACE}.svc.cluster.local:8080/v1/weather?city=Rennes"
    out = installed.kubectl(
        "-n", fx.NAMESPACE, "exec", "deployment/openmeteo", "--", "python", "-c", script, url, key
    ).split("\n")
    assert out[:2] == ["200 MISS", "200 HIT"], out


def test_redis_reached_by_its_service_dns_name(installed: k.Kube, fleet: str) -> None:
    config = installed.json("-n", fx.NAMESPACE, "get", f"configmap/{fleet}-config")
    assert f"redis://{fleet}-redis:6379/0" in config["data"]["config.yaml"]
    pod = installed.json("-n", fx.NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=proxy")[
        "items"
    ][0]

    # The Service is headless (the StatefulSet's governing Service): its name resolves to the Redis
    # pod only once that pod is Ready, and a resolver may keep a "no such name" for a while after.
    # The proxy keeps retrying; what counts is that it reaches Redis by that name.
    def redis_up() -> dict[str, object] | None:
        checks = fx.readiness(installed, pod["metadata"]["name"])["checks"]
        return checks if checks["redis"] == {"configured": True, "up": True, "error": None} else None

    k.eventually(redis_up, timeout=90, what="the proxy to reach Redis by its Service's DNS name")


def test_scale_and_the_hpa_reads_cpu(installed: k.Kube, fleet: str) -> None:
    installed.kubectl("-n", fx.NAMESPACE, "scale", f"weatherproxy/{fleet}", "--replicas=2")

    def scaled() -> bool:
        deployment = installed.json("-n", fx.NAMESPACE, "get", f"deployment/{fleet}")
        proxy = installed.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{fleet}")
        return (deployment["status"].get("readyReplicas"), proxy["status"].get("readyReplicas")) == (2, 2)

    k.eventually(scaled, fx.READY_TIMEOUT, "2 ready replicas")
    fx.wait_ready(installed, f"weatherproxy/{fleet}")
    # metrics-server serves the pods' CPU; an HPA of an autoscaled fleet reads it.
    fx.patch_fleet(installed, fleet, {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 3}})

    def cpu_read() -> bool:
        hpa = installed.json("-n", fx.NAMESPACE, "get", f"hpa/{fleet}")
        metrics = hpa.get("status", {}).get("currentMetrics") or []
        return any(
            m.get("resource", {}).get("name") == "cpu" and m["resource"].get("current") for m in metrics
        )

    k.eventually(cpu_read, 180, "the HPA to read CPU from metrics-server", interval=5)
    fx.patch_fleet(installed, fleet, {"autoscaling": {"enabled": False}, "replicas": 2})
    k.eventually(lambda: not installed.json("-n", fx.NAMESPACE, "get", "hpa")["items"], 60, "the HPA removed")


def test_deleting_the_weatherproxy_removes_its_children(installed: k.Kube, fleet: str) -> None:
    doomed = installed.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{fleet}")
    manifest = {
        "apiVersion": doomed["apiVersion"],
        "kind": "WeatherProxy",
        "metadata": {"name": "doomed", "namespace": fx.NAMESPACE},
        "spec": {**doomed["spec"], "replicas": 1},
    }
    manifest["spec"].pop("autoscaling", None)
    installed.apply(manifest)
    fx.wait_ready(installed, "weatherproxy/doomed")
    selector = "app.kubernetes.io/instance=doomed"
    kinds = "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets,pods,pvc"
    assert installed.json("-n", fx.NAMESPACE, "get", kinds, "-l", selector)["items"]
    installed.kubectl("-n", fx.NAMESPACE, "delete", "weatherproxy/doomed", "--wait=true", "--timeout=120s")
    k.eventually(
        lambda: not installed.json("-n", fx.NAMESPACE, "get", kinds, "-l", selector)["items"],
        180.0,
        "every child of weatherproxy/doomed garbage-collected",
    )


def test_a_redis_image_that_cannot_be_pulled_is_named_in_the_status(installed: k.Kube, fleet: str) -> None:
    """RedisReady names the pod, the kubelet's reason and the image, as kubectl describe would."""
    image = "localhost/wpf/redis:does-not-exist"
    spec = {**installed.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{fleet}")["spec"], "replicas": 1}
    spec.pop("autoscaling", None)
    spec["analytics"] = {"enabled": False}
    spec["redis"] = {"managed": {"image": image, "persistence": {"enabled": False}}}
    name = "no-redis"
    installed.apply(
        {"apiVersion": "weatherproxy.dev/v1alpha1", "kind": "WeatherProxy",
         "metadata": {"name": name, "namespace": fx.NAMESPACE}, "spec": spec}
    )  # fmt: skip
    try:

        def redis_condition() -> str | None:
            found = installed.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{name}").get("status", {})
            for condition in found.get("conditions", []):
                if condition["type"] == "RedisReady" and f"(image {image})" in condition["message"]:
                    return str(condition["message"])
            return None

        message = k.eventually(redis_condition, 300, "RedisReady naming the image that cannot be pulled")
        assert re.fullmatch(
            rf"Redis has no ready replica: pod {name}-redis-0 container redis is waiting:"
            rf" (ErrImagePull|ImagePullBackOff) \(image {re.escape(image)}\)",
            message,
        ), message
        # The words are the pure function's on the pods as the kubelet wrote them.
        pods = installed.json("-n", fx.NAMESPACE, "get", "pods", "-l", podstate.selector(
            names.selector_labels(name, names.REDIS)))["items"]  # fmt: skip
        said = podstate.why_not_ready(pods)
        assert said is not None
        assert re.fullmatch(rf"pod {name}-redis-0 .* \(image {re.escape(image)}\)", said), said
        k.MEASURED.append(f"a Redis image that cannot be pulled: {message}")
    finally:
        installed.kubectl(
            "-n", fx.NAMESPACE, "delete", f"weatherproxy/{name}", "--wait=true", "--timeout=120s"
        )
