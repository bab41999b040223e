"""Key lifecycle on real pods, timed: applied -> 200, deleted -> 403, disabled -> 403.

The keys are the consumers' own (user Secrets), so the clock starts at the ``kubectl
apply`` of the ApiKey. They reach the pods through the ``<fleet>-keys`` Secret volume, so today's figure is
the kubelet's projection delay (its sync period plus its Secret cache TTL) plus the
proxy's reload. Changes are staggered so that they land at different points of the
kubelet's sync loop; a change counts as effective when ``CONFIRMATIONS`` requests in a row
through the Service (any pod) answer the new way. p50/p99 are printed (and appended to
``$WPF_E2E_TIMINGS`` when set).
"""

from __future__ import annotations

import concurrent.futures
import secrets
import time

import pytest

from e2e import cluster as k
from e2e import conftest as fx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEYS = 12  # 12 applies; then 6 deletes and 6 disables
STAGGER_SECONDS = 5.0
CONFIRMATIONS = 5
BOUND_SECONDS = 150.0  # a change not effective by then fails the test


def _status(url: str, key: str) -> int:
    try:
        return k.http_get(f"{url}/v1/weather?city=Paris", {"X-API-Key": key}, timeout=5)[0]
    except OSError:
        return 0


def _time_until(url: str, key: str, want: int, started: float) -> float:
    """Seconds from ``started`` until ``CONFIRMATIONS`` answers in a row are ``want``."""
    streak, first = 0, None
    while time.monotonic() - started < BOUND_SECONDS:
        if _status(url, key) == want:
            first = first if streak else time.monotonic()
            streak += 1
            if streak == CONFIRMATIONS:
                assert first is not None
                return first - started
        else:
            streak = 0
        time.sleep(0.1)
    raise AssertionError(f"key not answered {want} within {BOUND_SECONDS}s")


def _staggered(changes: list[tuple[str, object]], act: object, url: str, want: int) -> dict[str, float]:
    """Run ``act(name)`` for each change STAGGER_SECONDS apart; time each until the fleet answers ``want``."""
    results: dict[str, float] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(changes)) as pool:
        futures = {}
        for name, key in changes:
            act(name)  # type: ignore[operator]
            futures[pool.submit(_time_until, url, str(key), want, time.monotonic())] = name
            time.sleep(STAGGER_SECONDS)
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
    return results


def test_key_lifecycle_latencies(installed: k.Kube, fleet: str, proxy_url: str) -> None:
    names = [f"e2e-timed-{i}" for i in range(KEYS)]
    # The consumers' own keys, each in its own Secret, so that the clock starts at the
    # `kubectl apply` of the ApiKey (the operator reads a Secret it did not create).
    keys = {name: f"wpk_e2e_{secrets.token_urlsafe(24)}" for name in names}
    installed.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-own", "namespace": fx.NAMESPACE},
                "stringData": {"apiKey": keys[name]},
            }
            for name in names
        ]
    )
    for name in names:
        assert _status(proxy_url, keys[name]) in (401, 403)

    def apply(name: str) -> None:
        installed.apply(fx.apikey(name, fleet, secretName=f"{name}-own"))

    def delete(name: str) -> None:
        installed.kubectl("-n", fx.NAMESPACE, "delete", f"apikey/{name}", "--wait=false")

    def disable(name: str) -> None:
        installed.apply(fx.apikey(name, fleet, secretName=f"{name}-own", disabled=True))

    applied = _staggered([(n, keys[n]) for n in names], apply, proxy_url, 200)
    half = KEYS // 2
    deleted = _staggered([(n, keys[n]) for n in names[:half]], delete, proxy_url, 403)
    disabled = _staggered([(n, keys[n]) for n in names[half:]], disable, proxy_url, 403)
    k.report("ApiKey applied -> 200", list(applied.values()))
    k.report("ApiKey deleted -> 403", list(deleted.values()))
    k.report("ApiKey disabled -> 403", list(disabled.values()))
    k.report("ApiKey revoked (deleted or disabled) -> 403", [*deleted.values(), *disabled.values()])
    installed.kubectl("-n", fx.NAMESPACE, "delete", "apikeys", *names[half:], "--wait=false")
    installed.kubectl("-n", fx.NAMESPACE, "delete", "secrets", *(f"{n}-own" for n in names), "--wait=false")
