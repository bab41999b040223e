"""Disruptions on real pods under steady load: a rolling update, a drain, Redis and proxy pods
deleted, the active operator replica killed.

Load goes to the fleet's Service (its ClusterIP, through kube-proxy) from a key with a
limit well above the load, so that every non-200 is a real failure.
"""

from __future__ import annotations

import collections
import secrets
import subprocess
import time
from typing import Any

import pytest

from e2e import cluster as k
from e2e import conftest as fx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LOAD_KEY = "e2e-load"
WORKERS = 3


@pytest.fixture(scope="module")
def load_key(installed: k.Kube, fleet: str, proxy_url: str) -> str:
    """A key with a limit far above the load, accepted by every proxy pod (so a 403 is a real failure)."""
    installed.apply(fx.apikey(LOAD_KEY, fleet, rateLimit={"requestsPerMinute": 100_000, "burst": 10_000}))
    fx.wait_ready(installed, f"apikey/{LOAD_KEY}")
    key = fx.key_of(installed, LOAD_KEY)
    k.eventually(lambda: accepted_everywhere(installed, fleet, proxy_url, key), 150, "the load key accepted")
    return key


def accepted_everywhere(kube: k.Kube, fleet: str, proxy_url: str, key: str) -> bool:
    """Every proxy pod answers 200 with ``key`` (pods that existed before a key learn it at the
    kubelet's next sync; pods started later mount it)."""
    if not kube.host_reaches_services:  # kind: through the Service only, many times in a row
        return all(
            k.http_get(f"{proxy_url}/v1/weather?city=Paris", {"X-API-Key": key})[0] == 200 for _ in range(20)
        )
    return all(
        k.http_get(f"http://{pod['status']['podIP']}:8080/v1/weather?city=Paris", {"X-API-Key": key})[0]
        == 200
        for pod in proxy_pods(kube, fleet)
    )


def proxy_pods(kube: k.Kube, fleet: str) -> list[dict[str, Any]]:
    """The fleet's proxy pods that are not terminating."""
    selector = f"app.kubernetes.io/instance={fleet},app.kubernetes.io/component=proxy"
    pods = kube.json("-n", fx.NAMESPACE, "get", "pods", "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready_proxies(kube: k.Kube, fleet: str) -> int:
    deployment = kube.json("-n", fx.NAMESPACE, "get", f"deployment/{fleet}")
    return int(deployment["status"].get("readyReplicas") or 0)


def ensure_replicas(kube: k.Kube, fleet: str, replicas: int) -> None:
    kube.kubectl("-n", fx.NAMESPACE, "scale", f"weatherproxy/{fleet}", f"--replicas={replicas}")
    k.eventually(
        lambda: ready_proxies(kube, fleet) == replicas, fx.READY_TIMEOUT, f"{replicas} ready proxies"
    )


def test_rolling_update_under_load_fails_no_request(
    installed: k.Kube, fleet: str, proxy_url: str, load_key: str
) -> None:
    ensure_replicas(installed, fleet, 2)
    before = {p["metadata"]["name"] for p in proxy_pods(installed, fleet)}
    deployment = installed.json("-n", fx.NAMESPACE, "get", f"deployment/{fleet}")
    generation = deployment["metadata"]["generation"]
    ttl = installed.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{fleet}")["spec"]["cache"]["ttlSeconds"]
    with k.SteadyLoad(f"{proxy_url}/v1/weather?city=Paris", {"X-API-Key": load_key}, workers=WORKERS) as load:
        time.sleep(3)
        # A config field: the operator re-renders the ConfigMap and the pod template's config hash.
        fx.patch_fleet(installed, fleet, {"cache": {"ttlSeconds": ttl + 1}})
        k.eventually(
            lambda: (
                installed.json("-n", fx.NAMESPACE, "get", f"deployment/{fleet}")["metadata"]["generation"]
                > generation
            ),
            60,
            "the Deployment's pod template to change",
        )
        installed.kubectl("-n", fx.NAMESPACE, "rollout", "status", f"deployment/{fleet}", "--timeout=300s")
        time.sleep(3)
    after = {p["metadata"]["name"] for p in proxy_pods(installed, fleet)}
    k.MEASURED.append(
        f"rolling update under load: {load.result.sent} requests, {len(load.result.failures)} failed"
    )
    assert load.result.sent > 50
    assert load.result.failures == [], collections.Counter(load.result.failures).most_common(5)
    assert not before & after, "every pod was replaced"


def test_drain_respects_the_pdb(installed: k.Kube, fleet: str) -> None:
    ensure_replicas(installed, fleet, 2)
    node = installed.json("get", "nodes")["items"][0]["metadata"]["name"]
    pdb = installed.json("-n", fx.NAMESPACE, "get", f"pdb/{fleet}")
    assert pdb["spec"]["maxUnavailable"] == 1
    try:
        # One proxy may go (maxUnavailable 1); the other must stay: on a single node the
        # evicted pod cannot be rescheduled, so the PDB refuses the second eviction.
        drain = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(installed.kubeconfig),
                "drain",
                node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                f"--pod-selector=app.kubernetes.io/instance={fleet},app.kubernetes.io/component=proxy",
                "--timeout=45s",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert drain.returncode != 0, drain.stdout
        assert "disruption budget" in drain.stderr + drain.stdout, drain.stderr
        running = [
            p
            for p in proxy_pods(installed, fleet)
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        assert len(running) == 1, [p["metadata"]["name"] for p in running]
    finally:
        installed.kubectl("uncordon", node)
    k.eventually(
        lambda: ready_proxies(installed, fleet) == 2, fx.READY_TIMEOUT, "2 ready proxies after uncordon"
    )


def _redis_cli(kube: k.Kube, fleet: str, *args: str) -> str:
    return kube.kubectl("-n", fx.NAMESPACE, "exec", f"{fleet}-redis-0", "--", "redis-cli", *args).strip()


def test_redis_restart_keeps_serving_and_its_data(
    installed: k.Kube, fleet: str, proxy_url: str, load_key: str
) -> None:
    url = f"{proxy_url}/v1/weather?city=Bordeaux"
    assert k.http_get(url, {"X-API-Key": load_key})[0] == 200
    assert k.http_get(url, {"X-API-Key": load_key})[1]["X-Cache"] == "HIT"
    marker = secrets.token_hex(8)
    assert _redis_cli(installed, fleet, "SET", "e2e:marker", marker) == "OK"
    time.sleep(2)  # appendfsync everysec
    pvc = installed.json("-n", fx.NAMESPACE, "get", f"pvc/data-{fleet}-redis-0")
    assert pvc["status"]["phase"] == "Bound"
    with k.SteadyLoad(url, {"X-API-Key": load_key}, workers=WORKERS) as load:
        installed.kubectl("-n", fx.NAMESPACE, "delete", "pod", f"{fleet}-redis-0", "--wait=true")
        installed.kubectl(
            "-n", fx.NAMESPACE, "wait", "--for=condition=Ready", f"pod/{fleet}-redis-0", "--timeout=180s"
        )
        time.sleep(2)
    k.MEASURED.append(
        f"Redis pod deleted: {load.result.sent} requests for a cached city, "
        f"{len(load.result.failures)} failed"
    )
    assert load.result.failures == [], collections.Counter(load.result.failures).most_common(5)
    assert _redis_cli(installed, fleet, "GET", "e2e:marker") == marker, "Redis came back without its data"
    assert (
        installed.json("-n", fx.NAMESPACE, "get", f"pvc/data-{fleet}-redis-0")["metadata"]["uid"]
        == pvc["metadata"]["uid"]
    )

    def reconnected() -> bool:
        for pod in proxy_pods(installed, fleet):
            if not fx.readiness(installed, pod["metadata"]["name"])["checks"]["redis"]["up"]:
                return False
        return True

    k.eventually(reconnected, 90, "every proxy reconnected to Redis")
    # A new city goes through Redis again: MISS on the first pod, then a fleet-wide L2 entry.
    assert k.http_get(f"{proxy_url}/v1/weather?city=Toulouse", {"X-API-Key": load_key})[0] == 200


def test_proxy_pod_deleted_fails_no_request_beyond_those_in_flight(
    installed: k.Kube, fleet: str, proxy_url: str, load_key: str
) -> None:
    ensure_replicas(installed, fleet, 2)
    victim = proxy_pods(installed, fleet)[0]["metadata"]["name"]
    with k.SteadyLoad(f"{proxy_url}/v1/weather?city=Paris", {"X-API-Key": load_key}, workers=WORKERS) as load:
        time.sleep(3)
        installed.kubectl("-n", fx.NAMESPACE, "delete", "pod", str(victim), "--wait=true")
        k.eventually(lambda: ready_proxies(installed, fleet) == 2, fx.READY_TIMEOUT, "the replacement ready")
        time.sleep(3)
    k.MEASURED.append(
        f"proxy pod deleted under load: {load.result.sent} requests, {len(load.result.failures)} failed"
    )
    assert len(load.result.failures) <= WORKERS, load.result.failures


def test_operator_standby_takes_over(installed: k.Kube, fleet: str, proxy_url: str) -> None:
    """Two operator replicas (as the staging overlay runs it); the active one is killed."""
    ns = fx.OPERATOR_NAMESPACE
    installed.kubectl("-n", ns, "scale", "deployment/weather-operator", "--replicas=2")
    installed.kubectl("-n", ns, "rollout", "status", "deployment/weather-operator", "--timeout=180s")
    pods = {p["metadata"]["name"] for p in installed.json("-n", ns, "get", "pods")["items"]}

    def active() -> str | None:
        peers: dict[str, dict[str, object]] = {}
        for peering in installed.json("get", "clusterkopfpeerings")["items"]:
            peers.update(peering.get("status") or {})
        live = [(int(v.get("priority", 0)), pid) for pid, v in peers.items() if any(p in pid for p in pods)]
        if len(live) < 2:
            return None
        top = max(live)[1]
        return next(p for p in pods if p in top)

    leader = k.eventually(active, 120, "both operator replicas in the peering")
    installed.kubectl("-n", ns, "delete", "pod", leader, "--grace-period=0", "--force")
    key = f"wpk_e2e_{secrets.token_urlsafe(24)}"
    installed.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "e2e-after-failover-own", "namespace": fx.NAMESPACE},
            "stringData": {"apiKey": key},
        }
    )
    started = time.monotonic()
    installed.apply(fx.apikey("e2e-after-failover", fleet, secretName="e2e-after-failover-own"))
    k.eventually(
        lambda: k.http_get(f"{proxy_url}/v1/weather?city=Paris", {"X-API-Key": key})[0] == 200,
        300,
        "the ApiKey applied after the failover to be accepted",
    )
    k.report("ApiKey applied after the active operator was killed -> 200", [time.monotonic() - started])
    installed.kubectl("-n", ns, "scale", "deployment/weather-operator", "--replicas=1")
