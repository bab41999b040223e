"""ApiKeys on a real API server: generated Secrets, the fleet's keys.yaml, rotation, expiry, scale.

keys.yaml must hold hashes only; the plaintext lives in the ApiKey's own Secret.
"""

from __future__ import annotations

import datetime
import json

import pytest

from hack import operator_process
from tests.integration.operator import fleet
from weather_operator.render import names
from weather_proxy import config

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.usefixtures("operator")]

PROXY = "paris"


def _entries(cluster: fleet.Cluster, proxy: str = PROXY) -> dict[str, dict]:
    data = cluster.keys_file(proxy) or {}
    return {entry["id"]: entry for entry in data.get("keys") or []}


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_generated_key_lands_in_its_secret_and_only_its_hash_in_keys_yaml(cluster: fleet.Cluster) -> None:
    expires = _rfc3339(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30))
    cluster.apply(
        fleet.weather_proxy(PROXY, cluster.namespace),
        fleet.api_key(
            "team-a",
            cluster.namespace,
            PROXY,
            rateLimit={"requestsPerMinute": 600, "burst": 60},
            expiresAt=expires,
            description="mobile app",
        ),
    )
    plaintext = cluster.api_key_plaintext("team-a")
    assert plaintext.startswith("wpk_")
    assert len(plaintext) >= 32

    key_id = f"{cluster.namespace}/team-a"
    entries = cluster.wait(lambda: (e := _entries(cluster)) and key_id in e and e, "team-a in keys.yaml")
    assert entries[key_id]["sha256"] == fleet.sha256(plaintext)
    assert entries[key_id]["rateLimit"] == {"requestsPerMinute": 600, "burst": 60}
    assert entries[key_id]["expiresAt"].startswith(expires[:19])
    assert entries[key_id].get("disabled") in (False, None)
    # spec.scopes unset: keys.yaml leaves the field out, and the proxy reads the defaults.
    assert "scopes" not in entries[key_id]
    assert config.KeyEntry.model_validate(entries[key_id]).scopes == ["weather:read", "usage:read"]

    status = cluster.wait(
        lambda: (
            (cluster.get("apikey", "team-a").get("status") or {}).get("keyPrefix")
            and cluster.get("apikey", "team-a")["status"]
        ),
        "ApiKey status.keyPrefix",
    )
    assert plaintext.startswith(status["keyPrefix"])
    assert len(status["keyPrefix"]) < len(plaintext) // 2

    # The plaintext appears nowhere but in its own Secret: not keys.yaml, status, events, configmaps.
    keys_secret = cluster.get("secret", names.keys_secret_name(PROXY))
    assert plaintext not in fleet.secret_value(keys_secret, names.KEYS_KEY)
    for kind in ("apikeys", "weatherproxies", "events", "configmaps"):
        dumped = json.dumps(cluster.kubectl.get(kind, namespace=cluster.namespace))
        assert plaintext not in dumped, f"the plaintext key leaked into {kind}"


def test_disabled_key_is_listed_as_disabled(cluster: fleet.Cluster) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace), fleet.api_key("k", cluster.namespace, PROXY))
    key_id = f"{cluster.namespace}/k"
    cluster.wait(lambda: key_id in _entries(cluster), "the key in keys.yaml")
    cluster.apply(fleet.api_key("k", cluster.namespace, PROXY, disabled=True))
    cluster.wait(lambda: _entries(cluster)[key_id].get("disabled") is True, "the key to be disabled")


def test_scopes_reach_keys_yaml_and_follow_a_change(cluster: fleet.Cluster) -> None:
    cluster.apply(
        fleet.weather_proxy(PROXY, cluster.namespace),
        fleet.api_key("dashboard", cluster.namespace, PROXY, scopes=["analytics:read", "usage:read"]),
    )
    key_id = f"{cluster.namespace}/dashboard"
    entries = cluster.wait(lambda: (e := _entries(cluster)) and key_id in e and e, "the key in keys.yaml")
    assert entries[key_id]["scopes"] == ["usage:read", "analytics:read"]  # in the enum's order
    cluster.apply(fleet.api_key("dashboard", cluster.namespace, PROXY, scopes=["weather:read"]))
    cluster.wait(
        lambda: _entries(cluster)[key_id]["scopes"] == ["weather:read"], "the new scopes in keys.yaml"
    )


def test_rotation_issues_a_new_key_and_keeps_the_old_hash_for_the_grace_period(
    cluster: fleet.Cluster,
) -> None:
    cluster.apply(
        fleet.weather_proxy(PROXY, cluster.namespace),
        fleet.api_key("k", cluster.namespace, PROXY, scopes=["weather:read"]),
    )
    old = cluster.api_key_plaintext("k")
    key_id = f"{cluster.namespace}/k"
    cluster.wait(lambda: key_id in _entries(cluster), "the key in keys.yaml")

    cluster.apply(
        fleet.api_key(
            "k", cluster.namespace, PROXY, rotation=1, rotationGracePeriodSeconds=600, scopes=["weather:read"]
        )
    )

    def rotated() -> str | None:
        new = cluster.api_key_plaintext("k")
        return new if new != old else None

    new = cluster.wait(rotated, "a new plaintext key after the rotation")
    assert new.startswith("wpk_")

    def both_listed() -> dict | None:
        by_hash = {e["sha256"]: e for e in _entries(cluster).values()}
        return by_hash if {fleet.sha256(old), fleet.sha256(new)} <= set(by_hash) else None

    by_hash = cluster.wait(both_listed, "old and new hashes in keys.yaml")
    previous = by_hash[fleet.sha256(old)]
    assert previous.get("expiresAt"), "the previous key must expire at the end of the grace period"
    grace_end = datetime.datetime.fromisoformat(str(previous["expiresAt"]).replace("Z", "+00:00"))
    remaining = grace_end - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=5) < remaining <= datetime.timedelta(minutes=11)
    assert by_hash[fleet.sha256(new)]["id"] == key_id
    assert previous["scopes"] == by_hash[fleet.sha256(new)]["scopes"] == ["weather:read"]


def test_expired_key_is_dropped_and_reported(cluster: fleet.Cluster) -> None:
    soon = _rfc3339(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=4))
    cluster.apply(
        fleet.weather_proxy(PROXY, cluster.namespace),
        fleet.api_key("short", cluster.namespace, PROXY, expiresAt=soon),
        fleet.api_key("long", cluster.namespace, PROXY),
    )
    short_id, long_id = f"{cluster.namespace}/short", f"{cluster.namespace}/long"
    cluster.wait(lambda: {short_id, long_id} <= set(_entries(cluster)), "both keys in keys.yaml")
    cluster.wait(lambda: set(_entries(cluster)) == {long_id}, "the expired key to leave keys.yaml")

    def expired_status() -> bool:
        status = cluster.get("apikey", "short").get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        return bool(status.get("expired")) or ready.get("reason") == "Expired"

    cluster.wait(expired_status, "ApiKey short to report Expired")


def test_deleted_key_is_dropped(cluster: fleet.Cluster) -> None:
    cluster.apply(
        fleet.weather_proxy(PROXY, cluster.namespace),
        fleet.api_key("a", cluster.namespace, PROXY),
        fleet.api_key("b", cluster.namespace, PROXY),
    )
    ids = {f"{cluster.namespace}/a", f"{cluster.namespace}/b"}
    cluster.wait(lambda: set(_entries(cluster)) == ids, "both keys in keys.yaml")
    cluster.delete("apikey", "a", wait=True)
    cluster.wait(lambda: set(_entries(cluster)) == {f"{cluster.namespace}/b"}, "key a to leave keys.yaml")


@pytest.mark.slow
def test_200_keys_across_5_fleets_converge_through_an_operator_crash(
    cluster: fleet.Cluster, operator: operator_process.OperatorProcess
) -> None:
    proxies = [f"fleet-{i}" for i in range(5)]
    cluster.apply(*(fleet.weather_proxy(p, cluster.namespace) for p in proxies))
    expected: dict[str, set[str]] = {p: set() for p in proxies}
    first, second = [], []
    for i in range(200):
        proxy = proxies[i % len(proxies)]
        name = f"key-{i:03d}"
        (first if i < 100 else second).append(fleet.api_key(name, cluster.namespace, proxy))
        expected[proxy].add(f"{cluster.namespace}/{name}")

    cluster.apply(*first)
    # Crash mid-way: the operator has seen some of the first hundred, none of the second.
    cluster.wait(lambda: any(cluster.key_ids(p) for p in proxies), "the first keys to be served")
    operator.kill()  # SIGKILL: no graceful shutdown, no final patches
    cluster.apply(*second)
    operator.start()

    def converged() -> bool:
        return all(cluster.key_ids(p) == expected[p] for p in proxies)

    cluster.wait(converged, "every fleet's keys.yaml to list exactly its 40 keys", timeout=240)
    # Every generated Secret holds a key whose hash is the one served.
    served = {e["id"]: e["sha256"] for p in proxies for e in (cluster.keys_file(p) or {}).get("keys", [])}
    secrets = cluster.kubectl.get("secrets", namespace=cluster.namespace)["items"]
    plaintexts = [
        fleet.secret_value(s, names.APIKEY_SECRET_KEY) for s in secrets if "apiKey" in (s.get("data") or {})
    ]
    assert len(plaintexts) == 200
    assert {fleet.sha256(p) for p in plaintexts} == set(served.values())
    # Clean up while this module's operator still runs (it removes its finalizers), so the
    # next module's operator does not start with 200 objects of a terminating namespace.
    cluster.kubectl.run(
        "delete", "namespace", cluster.namespace, "--wait=true", "--timeout=120s", timeout=130
    )
