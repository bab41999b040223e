"""The fleet's NetworkPolicies enforced with real packets: who may open a TCP connection to what.

On the real node kube-router's firewall enforces them (devcluster/node.py). The overlay's fleet
``paris`` has a managed Redis fenced by the operator's ingress policy ``paris-redis`` (only the
fleet's proxies get in) and, when its usage history is on (not with the overlay's ``dev``
preset), a managed PostgreSQL fenced by ``paris-postgres`` (the proxies and the erasure Jobs).
A pod that is not the fleet's is refused, the proxies (and an erasure Job) connect, consumers
still reach the proxies, and the same foreign pod connects once the policies are gone, so the
policies are what refuses it. About 6 s on the real node, the fleet already up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from e2e import cluster as k
from e2e import conftest as fx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FOREIGN = "np-foreign"  # a pod of the fleet's namespace that is not the fleet's
PORTS = {"redis": 6379, "postgres": 5432}  # component -> port; its policy is <fleet>-<component>
KEY_PROPAGATION_BOUND = 120.0
# One TCP connect per target, from inside a pod: "open", or why not (a REJECT is refused at once).
CONNECT = (
    "import socket, sys\n"
    "for target in sys.argv[1:]:\n"
    "    host, port = target.rsplit(':', 1)\n"
    "    try:\n"
    "        socket.create_connection((host, int(port)), timeout=3).close()\n"
    "        print('open')\n"
    "    except OSError as exc:\n"
    "        print('closed:' + type(exc).__name__)\n"
)


def connects(kube: k.Kube, pod: str, targets: list[str]) -> list[str]:
    """What a TCP connect from ``pod`` to each ``host:port`` gives: "open" or "closed:<error>"."""
    out = kube.kubectl("-n", fx.NAMESPACE, "exec", pod, "--", "python", "-c", CONNECT, *targets, timeout=60)
    return out.split()


def pod_ip(kube: k.Kube, fleet: str, component: str) -> str:
    selector = f"app.kubernetes.io/instance={fleet},app.kubernetes.io/component={component}"
    pods = kube.json("-n", fx.NAMESPACE, "get", "pods", "-l", selector)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
    assert running, f"no running {component} pod of {fleet}"
    ip: str = running[0]["status"]["podIP"]
    return ip


@pytest.fixture(scope="module")
def fenced(installed: k.Kube, fleet: str) -> list[str]:
    """The fleet's fenced components: Redis, and PostgreSQL when its usage history is on."""
    components = ["redis"]
    postgres = installed.kubectl(
        "-n", fx.NAMESPACE, "get", f"statefulset/{fleet}-postgres", "--ignore-not-found", "-o", "name"
    )
    if postgres.strip():
        fx.wait_ready(installed, f"pod/{fleet}-postgres-0", timeout=120)
        components.append("postgres")
    for component in components:  # rendered and applied
        installed.kubectl("-n", fx.NAMESPACE, "get", f"networkpolicy/{fleet}-{component}")
    return components


@pytest.fixture(scope="module")
def databases(installed: k.Kube, fleet: str, fenced: list[str]) -> list[str]:
    """``<pod IP>:<port>`` of each fenced component (headless Services: the pods' own IPs)."""
    return [f"{pod_ip(installed, fleet, c)}:{PORTS[c]}" for c in fenced]


@pytest.fixture(scope="module")
def foreign_pod(installed: k.Kube, fleet: str) -> Iterator[str]:
    """A pod of the fleet's namespace, in the proxy image, whose labels no policy admits."""
    with fx.probe_pod(installed, FOREIGN, fleet) as pod:
        yield pod


def proxy_pod(kube: k.Kube, fleet: str) -> str:
    selector = f"app.kubernetes.io/instance={fleet},app.kubernetes.io/component=proxy"
    pods = kube.json("-n", fx.NAMESPACE, "get", "pods", "-l", selector)["items"]
    ready: list[str] = [
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and p["status"].get("containerStatuses")
        and all(s.get("ready") for s in p["status"]["containerStatuses"])
    ]
    assert ready, "no ready proxy pod"
    return ready[0]


def test_a_pod_not_of_the_fleet_cannot_connect_to_redis_or_postgresql(
    installed: k.Kube, foreign_pod: str, databases: list[str]
) -> None:
    results = connects(installed, foreign_pod, databases)
    assert all(r.startswith("closed:") for r in results), dict(zip(databases, results, strict=True))


def test_the_proxies_connect_to_redis_and_postgresql(
    installed: k.Kube, fleet: str, databases: list[str]
) -> None:
    pod = proxy_pod(installed, fleet)
    assert connects(installed, pod, databases) == ["open"] * len(databases), pod
    # And the proxy itself uses Redis, by the headless Service's name (which, on a fresh fleet, a
    # resolver may miss for a while: see test_fleet.test_redis_reached_by_its_service_dns_name).
    k.eventually(
        lambda: fx.readiness(installed, pod)["checks"]["redis"]["up"] is True,
        90,
        f"{pod} to report Redis up",
        interval=2,
    )


def test_the_erasure_job_reaches_postgresql(installed: k.Kube, fleet: str, fenced: list[str]) -> None:
    """A deleted ApiKey's erasure Job (its pods are the only others PostgreSQL admits) completes at once."""
    if "postgres" not in fenced:
        pytest.skip(
            f"{fleet} runs without its usage history (spec.analytics off): no PostgreSQL, no erasure Job"
        )
    job = fx.erase_key(installed, "np-erased", fleet, timeout=180, first_pod=True)
    # Blocked, its pod would fail (connection refused) and the Job retry with backoff.
    assert not job["status"].get("failed"), json.dumps(job["status"])
    assert job["status"].get("succeeded") == 1, json.dumps(job["status"])


def test_consumers_reach_the_proxies(installed: k.Kube, fleet: str, foreign_pod: str, proxy_url: str) -> None:
    """The proxies have no policy: any pod (and the node) reaches them through their Service."""
    key = fx.key_of(installed, "developers")
    script = (
        "import sys, urllib.request as u\n"
        "r = u.Request(sys.argv[1], headers={'X-API-Key': sys.argv[2]})\n"
        "with u.urlopen(r, timeout=10) as resp:\n"
        "    print(resp.status)\n"
    )
    url = f"http://{fleet}.{fx.NAMESPACE}.svc.cluster.local:8080/v1/weather?city=Brest"

    def served() -> bool:
        out = installed.kubectl(
            "-n", fx.NAMESPACE, "exec", foreign_pod, "--", "python", "-c", script, url, key
        )
        return out.strip() == "200"

    k.eventually(served, KEY_PROPAGATION_BOUND, "the foreign pod served by the fleet's Service", interval=2)
    status, _, body = k.http_get(f"{proxy_url}/v1/weather?city=Brest", {"X-API-Key": key})
    assert status == 200, body


def test_the_policies_are_what_refuses_the_foreign_pod(
    installed: k.Kube, fleet: str, foreign_pod: str, fenced: list[str], databases: list[str]
) -> None:
    """Without the policies the same pod connects; the operator puts them back and it is refused again.

    The operator is paused while they are gone (it would re-apply a deleted one at once, on its
    watch event, before a connection could be tried).
    """
    with fx.operator_paused(installed):
        installed.kubectl("-n", fx.NAMESPACE, "delete", *(f"networkpolicy/{fleet}-{c}" for c in fenced))
        k.eventually(
            lambda: connects(installed, foreign_pod, databases) == ["open"] * len(databases),
            30,
            "the foreign pod to connect once the policies are deleted",
        )
    k.eventually(
        lambda: all(r.startswith("closed:") for r in connects(installed, foreign_pod, databases)),
        120,
        "the operator to apply the policies again and the foreign pod to be refused",
    )
