"""Key lifecycle on real pods, timed per change: applied, deleted, disabled, expired, rotated out.

The target of docs/contracts.md, Keys, limits, quotas and scopes: every pod refuses a
deleted, disabled or expired key, and a rotated key's old hash once its grace period ends,
within 2 s (p99) of the change in the API server (or of the expiry instant), and accepts a
new key within the same bound. The pods watch their keys Secret through the API server;
the kubelet's re-projection of the mounted file (a minute or more) is only the fallback.

Each kind of change is made ``CHANGES`` times, ``STAGGER_SECONDS`` apart, through the API
(the Python client, so that no kubectl start-up is counted). The clock starts just before
the request that makes the change, or at the expiry or end-of-grace instant the ApiKey
records; a change counts as effective when every proxy pod (by pod IP; through the
Service on kind) has answered the new way ``CONFIRMATIONS`` times in a row. p50/p99 per
kind are printed (and appended to ``$WPF_E2E_TIMINGS`` when set); ``BOUND_SECONDS`` only
fails a change that never takes effect, it is not the target.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import functools
import math
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e import cluster as k
from e2e import conftest as fx
from weather_operator import keys as operator_keys

# Five kinds of change, CHANGES each, staggered, plus a grace period: minutes, beyond the default timeout.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]
CHANGES = 20  # of each kind
STAGGER_SECONDS = 1.0
CONFIRMATIONS = 3  # per pod
SERVICE_CONFIRMATIONS = 5  # through the Service (kind), whichever pod answers
BOUND_SECONDS = 30.0  # a change not effective by then fails the test
REPLICAS = 2  # "every pod" means more than one
GRACE_SECONDS = 45  # rotationGracePeriodSeconds of the rotated keys: outlasts their rotation
# The test keys must never see a 429 while they are polled.
UNLIMITED = {"requestsPerMinute": 1_000_000, "burst": 100_000}
GROUP, VERSION, PLURAL = "weatherproxy.dev", "v1alpha1", "apikeys"


@pytest.fixture(scope="module")
def api(installed: k.Kube) -> Iterator[Any]:
    """The custom objects API of the official client (a request takes milliseconds, kubectl ~0.3 s)."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(installed.kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield client.CustomObjectsApi(api_client)
    finally:
        api_client.close()


@dataclasses.dataclass(frozen=True)
class Targets:
    """Where to ask: every proxy pod by its IP, or (kind) the Service, more times in a row."""

    urls: list[str]
    confirmations: int


def targets(kube: k.Kube, fleet: str, proxy_url: str) -> Targets:
    """Every proxy pod (Ready, not terminating); the Service on kind, where pod IPs are out of reach."""
    if not kube.host_reaches_services:
        return Targets([proxy_url], SERVICE_CONFIRMATIONS)
    selector = f"app.kubernetes.io/instance={fleet},app.kubernetes.io/component=proxy"
    pods = kube.json("-n", fx.NAMESPACE, "get", "pods", "-l", selector)["items"]
    ready = [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
    ]
    assert ready, "no Ready proxy pod"
    return Targets([f"http://{p['status']['podIP']}:8080" for p in ready], CONFIRMATIONS)


def status(url: str, key: str) -> int:
    try:
        return k.http_get(f"{url}/v1/weather?city=Paris", {"X-API-Key": key}, timeout=5)[0]
    except OSError:
        return 0


def everywhere(where: Targets, key: str, want: int) -> bool:
    return all(status(url, key) == want for url in where.urls)


def time_until(where: Targets, key: str, want: int, started: float) -> float:
    """Seconds from ``started`` (monotonic) until every target answered ``want`` enough times in a row.

    The targets are asked in turn; each one's time is the first answer of its final streak.
    """
    streaks = dict.fromkeys(where.urls, 0)
    firsts = dict.fromkeys(where.urls, 0.0)
    while any(streak < where.confirmations for streak in streaks.values()):
        if time.monotonic() - started > BOUND_SECONDS:
            raise AssertionError(f"{key[:12]}… not answered {want} everywhere within {BOUND_SECONDS:.0f}s")
        for url, streak in streaks.items():
            if streak >= where.confirmations:
                continue
            now = time.monotonic()
            if status(url, key) == want:
                firsts[url] = firsts[url] if streak else now
                streaks[url] = streak + 1
            else:
                streaks[url] = 0
        time.sleep(0.01)
    return max(0.0, max(firsts.values()) - started)


def staggered(changes: list[Callable[[], tuple[str, int, float]]], where: Targets) -> list[float]:
    """Make each change STAGGER_SECONDS apart; each returns (key, wanted status, clock start)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(changes)) as pool:
        futures = []
        for change in changes:
            key, want, started = change()
            futures.append(pool.submit(time_until, where, key, want, started))
            time.sleep(STAGGER_SECONDS)
        return [future.result() for future in futures]


def from_instants(instants: dict[str, float], plaintext: dict[str, str], where: Targets) -> list[float]:
    """Per key, seconds from its wall-clock instant (an expiry) until every target answers 403."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(instants)) as pool:
        futures = [pool.submit(_after, wall, where, plaintext[name]) for name, wall in instants.items()]
        return [future.result() for future in futures]


def _after(wall: float, where: Targets, key: str) -> float:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)
    # The host's clock is the pods' clock: the instant on the monotonic clock of this process.
    return time_until(where, key, 403, time.monotonic() + (wall - time.time()))


def manifest(name: str, fleet: str, **spec: Any) -> dict[str, Any]:
    return fx.apikey(name, fleet, rateLimit=UNLIMITED, **spec)


def own_keys(kube: k.Kube, names: list[str]) -> dict[str, str]:
    """A consumer's own key per name, in Secret ``<name>-own`` (the operator generates nothing then)."""
    plaintext = {name: f"wpk_e2e_{secrets.token_urlsafe(24)}" for name in names}
    kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-own", "namespace": fx.NAMESPACE},
                "stringData": {"apiKey": plaintext[name]},
            }
            for name in names
        ]
    )
    return plaintext


def rfc3339(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_key_lifecycle_latencies(
    installed: k.Kube, fleet: str, proxy_url: str, api: Any, request: pytest.FixtureRequest
) -> None:
    installed.kubectl("-n", fx.NAMESPACE, "scale", f"weatherproxy/{fleet}", f"--replicas={REPLICAS}")

    def scaled() -> bool:
        deployment = installed.json("-n", fx.NAMESPACE, "get", f"deployment/{fleet}")
        status_ = deployment.get("status") or {}
        return status_.get("readyReplicas") == status_.get("replicas") == REPLICAS

    k.eventually(scaled, fx.READY_TIMEOUT, f"{REPLICAS} ready proxy pods")
    where = targets(installed, fleet, proxy_url)
    assert len(where.urls) == REPLICAS or not installed.host_reaches_services, where
    ns = fx.NAMESPACE
    created: list[str] = []
    request.addfinalizer(lambda: cleanup(installed, created))

    def create(name: str, **spec: Any) -> None:
        api.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest(name, fleet, **spec))
        created.append(name)

    def patch(name: str, spec: dict[str, Any]) -> None:
        api.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, {"spec": spec})

    # The consumers' own keys: the clock then starts at the ApiKey's creation (no key to generate).
    names = [f"e2e-timed-{i}" for i in range(2 * CHANGES)]
    plaintext = own_keys(installed, names)
    assert all(status(where.urls[0], plaintext[name]) in (401, 403) for name in names)

    def applying(name: str) -> Callable[[], tuple[str, int, float]]:
        def change() -> tuple[str, int, float]:
            started = time.monotonic()
            create(name, secretName=f"{name}-own")
            return plaintext[name], 200, started

        return change

    def deleting(name: str) -> Callable[[], tuple[str, int, float]]:
        def change() -> tuple[str, int, float]:
            started = time.monotonic()
            api.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
            return plaintext[name], 403, started

        return change

    def disabling(name: str) -> Callable[[], tuple[str, int, float]]:
        def change() -> tuple[str, int, float]:
            started = time.monotonic()
            patch(name, {"disabled": True})
            return plaintext[name], 403, started

        return change

    applied = staggered([applying(n) for n in names], where)
    deleted = staggered([deleting(n) for n in names[:CHANGES]], where)
    disabled = staggered([disabling(n) for n in names[CHANGES:]], where)
    expired = expiries(installed, create, where)
    rotated = rotations(installed, api, create, patch, where)

    k.report("ApiKey applied -> 200 on every pod", applied)
    k.report("ApiKey deleted -> 403 on every pod", deleted)
    k.report("ApiKey disabled -> 403 on every pod", disabled)
    k.report("ApiKey expiresAt passed -> 403 on every pod", expired)
    k.report("rotated key's old hash, grace ended -> 403 on every pod", rotated)
    k.report(
        "revoked (deleted, disabled, expired, grace ended) -> 403", [*deleted, *disabled, *expired, *rotated]
    )


def expiries(kube: k.Kube, create: Callable[..., None], where: Targets) -> list[float]:
    """Keys expiring STAGGER_SECONDS after one another; each timed from its expiry instant."""
    names = [f"e2e-expiring-{i}" for i in range(CHANGES)]
    plaintext = own_keys(kube, names)
    # Far enough ahead that every key is created and seen accepted before it expires.
    first = math.ceil(time.time()) + 15
    expiry = {name: first + i * STAGGER_SECONDS for i, name in enumerate(names)}
    for name in names:
        create(name, secretName=f"{name}-own", expiresAt=rfc3339(expiry[name]))
    for name in names:
        k.eventually(functools.partial(everywhere, where, plaintext[name], 200), BOUND_SECONDS, name, 0.05)
        assert time.time() < expiry[name], f"{name} was not accepted before its expiry: raise the lead time"
    return from_instants(expiry, plaintext, where)


def rotations(
    kube: k.Kube,
    api: Any,
    create: Callable[..., None],
    patch: Callable[[str, dict[str, Any]], None],
    where: Targets,
) -> list[float]:
    """Generated keys rotated (spec.rotation bumped); each old key timed from the end of its grace."""
    names = [f"e2e-rotated-{i}" for i in range(CHANGES)]
    for name in names:
        create(name, rotationGracePeriodSeconds=GRACE_SECONDS)
    old: dict[str, str] = {}
    for name in names:
        fx.wait_ready(kube, f"apikey/{name}")
        old[name] = fx.key_of(kube, name)
        k.eventually(functools.partial(everywhere, where, old[name], 200), BOUND_SECONDS, name, 0.05)
    grace_end: dict[str, float] = {}
    for name in names:
        patch(name, {"rotation": 1})

        def recorded(n: str = name) -> float | None:
            body = api.get_namespaced_custom_object(GROUP, VERSION, fx.NAMESPACE, PLURAL, n)
            annotations = body["metadata"].get("annotations") or {}
            moment = operator_keys.parse_time(annotations.get(operator_keys.PREVIOUS_EXPIRES_ANNOTATION))
            return moment.timestamp() if moment else None

        grace_end[name] = k.eventually(recorded, BOUND_SECONDS, f"{name}'s end of grace", 0.05)
        assert everywhere(where, old[name], 200), f"{name}: the old key must stay valid during its grace"
        time.sleep(STAGGER_SECONDS)
    assert time.time() < min(grace_end.values()), "a grace ended before it was measured: raise GRACE_SECONDS"
    return from_instants(grace_end, old, where)


def cleanup(kube: k.Kube, created: list[str]) -> None:
    if not created:
        return
    kube.kubectl("-n", fx.NAMESPACE, "delete", "apikeys", *created, "--ignore-not-found", "--wait=false")
    owned = [f"{name}-own" for name in created if not name.startswith("e2e-rotated-")]
    kube.kubectl("-n", fx.NAMESPACE, "delete", "secrets", *owned, "--ignore-not-found", "--wait=false")
