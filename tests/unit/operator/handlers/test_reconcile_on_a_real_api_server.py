"""Handler logic driven directly (no Kopf) against a real kube-apiserver.

The Kopf indexes are plain dicts here, filled the way Kopf fills them; everything the
handlers write goes to the real API server.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from typing import Any

import kopf
import pytest
import yaml

from weather_operator import apply, keys
from weather_operator.api import constants
from weather_operator.handlers import apikeys, children, fleet, keysync, periodic, runtime
from weather_operator.render import names

pytestmark = pytest.mark.controlplane


async def _create_proxy(
    state: runtime.State, namespace: str, name: str = "paris", **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"environment": "dev", **spec},
    }
    created = await state.cluster.apply(body)
    _index_proxy(state, created)
    return created


def _index_proxy(state: runtime.State, body: dict[str, Any]) -> None:
    fleets = dict(state.fleets)
    fleets[body["metadata"]["namespace"], body["metadata"]["name"]] = [runtime.snapshot(body)]
    state.fleets = fleets


async def _create_key(state: runtime.State, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.APIKEY_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"proxyRef": {"name": "paris"}, **spec},
    }
    return await state.cluster.apply(body)


async def _reindex_key(state: runtime.State, namespace: str, name: str) -> dict[str, Any]:
    """Read the ApiKey back and index it, as Kopf does on its watch event."""
    body = await state.cluster.get(apply.APIKEY, namespace, name)
    assert body is not None
    record = keys.record_from_body(body)
    assert record is not None
    others = [item for item in state.keys_of(namespace, record.proxy) if item.record.id != record.id]
    index = dict(state.apikeys)
    index[namespace, record.proxy] = [*others, runtime.IndexedKey(record=record, body=runtime.snapshot(body))]
    state.apikeys = index
    return body


async def _keys_yaml(state: runtime.State, namespace: str, proxy: str = "paris") -> dict[str, Any]:
    secret = await state.cluster.get(apply.SECRET, namespace, names.keys_secret_name(proxy))
    assert secret is not None
    parsed: dict[str, Any] = yaml.safe_load(base64.b64decode(secret["data"][names.KEYS_KEY]))
    return parsed


async def _settled(state: runtime.State, namespace: str) -> None:
    for _ in range(200):
        deployment = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
        sts = await state.cluster.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
        observed = [
            (obj or {}).get("status", {}).get("observedGeneration")
            == (obj or {}).get("metadata", {}).get("generation")
            and "replicas" in (obj or {}).get("status", {})
            for obj in (deployment, sts)
        ]
        if all(observed):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the workload controllers never reported")


async def test_reconcile_applies_the_fleet_and_writes_the_status_once(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace)
    outcome = await fleet.reconcile(state, body)
    assert "Deployment/paris" in outcome.changed
    assert not outcome.monitoring_available
    for kind, name in (
        (apply.DEPLOYMENT, "paris"),
        (apply.STATEFULSET, names.redis_name("paris")),
        (apply.SECRET, names.redis_secret_name("paris")),
        (apply.SECRET, names.keys_secret_name("paris")),
    ):
        child = await state.cluster.get(kind, namespace, name)
        assert child is not None, name
        assert child["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    assert stored["status"]["observedGeneration"] == 1
    assert stored["status"]["endpoint"] == names.endpoint("paris", namespace)
    reasons = {c["type"]: c["reason"] for c in stored["status"]["conditions"]}
    assert reasons["MonitoringConfigured"] == "CRDsNotInstalled"
    assert reasons["Ready"] in {"ReplicasNotReady", "AllReplicasReady"}  # pods run only with kwok nodes

    # Once the Deployment controller has reported (its status feeds ours), the status settles.
    await _settled(state, namespace)
    await fleet.refresh_status(state, body)
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    # Again, from the stale body (status empty): nothing is applied and the status is not rewritten.
    password = await state.cluster.get(apply.SECRET, namespace, names.redis_secret_name("paris"))
    second = await fleet.reconcile(state, body)
    assert second.changed == []
    assert second.deleted == []
    again = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    kept = await state.cluster.get(apply.SECRET, namespace, names.redis_secret_name("paris"))
    assert kept is not None
    assert password is not None
    assert kept["data"] == password["data"]
    assert not await fleet.refresh_status(state, body)


async def test_a_disabled_option_deletes_its_child_and_a_hand_edit_is_reverted(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace, ingress={"enabled": True, "host": "w.example.com"})
    await fleet.reconcile(state, body)
    assert await state.cluster.get(apply.kind_of("networking.k8s.io/v1", "Ingress"), namespace, "paris")

    await state.cluster.patch(
        apply.kind_of("v1", "ConfigMap"),
        namespace,
        names.config_map_name("paris"),
        {"data": {"config.yaml": "x"}},
    )
    body = await _create_proxy(state, namespace, ingress={"enabled": False})
    outcome = await fleet.reconcile(state, body)
    assert outcome.deleted == ["Ingress/paris"]
    assert f"ConfigMap/{names.config_map_name('paris')}" in outcome.changed
    cm = await state.cluster.get(apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris"))
    assert cm is not None
    assert cm["data"]["config.yaml"] != "x"


async def test_generated_key_reaches_keys_yaml_and_rotation_keeps_the_old_hash(
    state: runtime.State, namespace: str
) -> None:
    proxy = await _create_proxy(state, namespace)
    await fleet.reconcile(state, proxy)
    body = await _create_key(state, namespace, "team-a", rateLimit={"requestsPerMinute": 60, "burst": 6})
    result = await apikeys.handle(state, body)
    assert result.problem is None
    assert [e[1] for e in result.events] == ["KeyIssued"]
    body = await _reindex_key(state, namespace, "team-a")
    secret = await state.cluster.get(apply.SECRET, namespace, names.apikey_secret_name("team-a"))
    assert secret is not None
    plaintext = base64.b64decode(secret["data"]["apiKey"]).decode()
    assert body["metadata"]["annotations"][keys.SHA256_ANNOTATION] == keys.sha256_hex(plaintext)
    assert body["status"]["keyPrefix"] == plaintext[:8]
    assert body["status"]["conditions"][0]["reason"] == "KeyIssued"

    await keysync.sync_keys(state, namespace, "paris")
    entries = (await _keys_yaml(state, namespace))["keys"]
    assert [(e["id"], e["sha256"]) for e in entries] == [(f"{namespace}/team-a", keys.sha256_hex(plaintext))]
    assert plaintext not in str(entries)

    # Handling it again changes nothing: same key, no write.
    again = await apikeys.handle(state, body)
    assert again.annotations == {}
    assert again.status == {}
    assert again.events == []

    body = await _create_key(state, namespace, "team-a", rotation=1, rotationGracePeriodSeconds=600)
    rotated = await apikeys.handle(state, body)
    assert [e[1] for e in rotated.events] == ["KeyRotated"]
    await _reindex_key(state, namespace, "team-a")
    await keysync.sync_keys(state, namespace, "paris")
    ids = {e["id"] for e in (await _keys_yaml(state, namespace))["keys"]}
    assert ids == {f"{namespace}/team-a", f"{namespace}/team-a{keys.PREVIOUS_SUFFIX}"}


async def test_user_secret_missing_proxy_and_recovery(state: runtime.State, namespace: str) -> None:
    await state.cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mine", "namespace": namespace},
            "stringData": {"other": "x"},
        }
    )
    body = await _create_key(state, namespace, "k", secretName="mine")
    result = await apikeys.handle(state, body)
    assert result.problem is not None
    assert result.problem[0] == "SecretNotFound"
    assert result.status["conditions"][0]["reason"] == "SecretNotFound"

    await state.cluster.patch(apply.SECRET, namespace, "mine", {"stringData": {"apiKey": "user-chosen-key"}})
    result = await apikeys.handle(state, body)
    assert result.problem is not None
    assert result.problem[0] == "ProxyNotFound"
    assert result.annotations[keys.SHA256_ANNOTATION] == keys.sha256_hex("user-chosen-key")

    await _create_proxy(state, namespace)
    body = await _reindex_key(state, namespace, "k")
    await apikeys.recheck_all(state)
    stored = await state.cluster.get(apply.APIKEY, namespace, "k")
    assert stored is not None
    assert stored["status"]["conditions"][0]["reason"] == "KeyIssued"
    # The user's Secret is read, never replaced, and not owned by the ApiKey.
    mine = await state.cluster.get(apply.SECRET, namespace, "mine")
    assert mine is not None
    assert not mine["metadata"].get("ownerReferences")


async def test_an_expired_key_leaves_keys_yaml_and_reports_expired(
    state: runtime.State, namespace: str
) -> None:
    proxy = await _create_proxy(state, namespace)
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    body = await _create_key(state, namespace, "old", expiresAt=past)
    result = await apikeys.handle(state, body)
    assert result.status["conditions"][0]["reason"] == "Expired"
    assert result.status["expired"] is True
    await _reindex_key(state, namespace, "old")
    await fleet.reconcile(state, proxy)
    assert (await _keys_yaml(state, namespace))["keys"] == []


async def test_child_events_request_a_reconcile_only_when_someone_else_changed_it(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace)
    await fleet.reconcile(state, body)
    _index_proxy(state, body)
    cm = await state.cluster.get(apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris"))
    assert cm is not None
    assert children.owner_name(cm) == "paris"
    assert children.changed_by_operator(cm)
    await children.on_config_event(state, {"type": "MODIFIED"}, cm)
    assert state.requested == set()

    await state.cluster.delete(apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris"))
    await children.on_config_event(state, {"type": "DELETED"}, cm)
    assert state.requested == {(namespace, "paris")}
    for task in list(state.background):
        await task
    assert await state.cluster.get(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )

    deployment = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    await children.on_workload_event(state, {"type": "ADDED"}, deployment)
    assert state.requested == set()


async def test_switching_to_external_redis_removes_the_managed_one_and_watches_its_secret(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace)
    await fleet.reconcile(state, body)
    external = {"mode": "External", "external": {"urlSecretRef": {"name": "redis-url", "key": "url"}}}
    body = await _create_proxy(state, namespace, redis=external)
    outcome = await fleet.reconcile(state, body)
    assert {f"StatefulSet/{names.redis_name('paris')}", f"Secret/{names.redis_secret_name('paris')}"} <= set(
        outcome.deleted
    )
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    redis = next(c for c in stored["status"]["conditions"] if c["type"] == "RedisReady")
    assert (redis["status"], redis["reason"]) == ("False", "ExternalSecretNotFound")

    await state.cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-url", "namespace": namespace},
            "stringData": {"url": "redis://r:6379/0"},
        }
    )
    assert await fleet.refresh_status(state, body)
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    redis = next(c for c in stored["status"]["conditions"] if c["type"] == "RedisReady")
    assert (redis["status"], redis["reason"]) == ("True", "ExternalSecretFound")


async def test_invalid_specs_are_permanent_errors(state: runtime.State, namespace: str) -> None:
    with pytest.raises(kopf.PermanentError, match=r"spec\.replicas"):
        await fleet.reconcile(
            state, {"metadata": {"name": "p", "namespace": namespace}, "spec": {"replicas": -1}}
        )
    bad_key = {"metadata": {"name": "k", "namespace": namespace}, "spec": {"proxyRef": {}}}
    with pytest.raises(kopf.PermanentError, match=r"spec\.proxyRef"):
        await apikeys.handle(state, bad_key)
    # A re-check of a vanished or invalid ApiKey is quiet.
    await apikeys._handle_quietly(state, bad_key)
    gone = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.APIKEY_KIND,
        "metadata": {"name": "gone", "namespace": namespace, "uid": "u"},
        "spec": {"proxyRef": {"name": "p"}},
    }
    await apikeys._handle_quietly(state, gone)


async def test_a_request_coalesces_and_reconciles_the_latest_indexed_body(
    state: runtime.State, namespace: str
) -> None:
    await _create_proxy(state, namespace)
    fleet.request(state, namespace, "paris", trigger="first")
    fleet.request(state, namespace, "paris", trigger="second")
    assert len(state.background) == 1
    await asyncio.gather(*state.background)
    assert state.requested == set()
    assert await state.cluster.get(apply.DEPLOYMENT, namespace, "paris") is not None
    fleet.request(state, namespace, "absent", trigger="nothing to do")
    await asyncio.gather(*state.background)


async def test_an_immutable_statefulset_change_recreates_redis(state: runtime.State, namespace: str) -> None:
    body = await _create_proxy(state, namespace)
    await fleet.reconcile(state, body)
    before = await state.cluster.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
    assert before is not None
    assert not before["spec"].get("volumeClaimTemplates")
    body = await _create_proxy(state, namespace, environment="staging")  # persistent Redis
    await fleet.reconcile(state, body)
    after = await state.cluster.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
    assert after is not None
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["volumeClaimTemplates"]


async def test_a_key_expiring_later_is_dropped_at_its_expiry_and_its_fleet_rechecked(
    state: runtime.State, namespace: str
) -> None:
    proxy = await _create_proxy(state, namespace)
    await fleet.reconcile(state, proxy)
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1.5)
    body = await _create_key(state, namespace, "brief", expiresAt=soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
    await apikeys.handle(state, body)
    await _reindex_key(state, namespace, "brief")
    transitions: list[tuple[str, str]] = []
    changes: list[tuple[str, str]] = []
    state.on_key_transition = lambda state, ns, proxy: transitions.append((ns, proxy))
    state.on_keys_changed = lambda state, ns, proxy: changes.append((ns, proxy))
    state.applied_keys.clear()
    await keysync.sync_keys(state, namespace, "paris")
    assert [e["id"] for e in (await _keys_yaml(state, namespace))["keys"]] == [f"{namespace}/brief"]
    assert changes == [(namespace, "paris")]
    for _ in range(100):
        if transitions:
            break
        await asyncio.sleep(0.05)
    await asyncio.gather(*state.background)
    assert transitions == [(namespace, "paris")]
    assert (await _keys_yaml(state, namespace))["keys"] == []


async def test_periodic_jobs_repair_drift_and_follow_the_monitoring_crds(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace, environment="staging")  # wants monitoring
    await periodic.repair_drift(state)
    assert await state.cluster.get(apply.DEPLOYMENT, namespace, "paris") is not None
    await state.cluster.delete(apply.DEPLOYMENT, namespace, "paris")
    await periodic.repair_drift(state)
    assert await state.cluster.get(apply.DEPLOYMENT, namespace, "paris") is not None
    # The status says CRDsNotInstalled; pretend the last answer was "installed": a reconcile follows.
    stored = state.previous_status(constants.WEATHERPROXY_KIND, body)
    assert fleet.monitoring_outdated(stored, True)
    assert not fleet.monitoring_outdated(stored, False)
    await periodic.recheck_monitoring(state)  # the CRDs are really absent: nothing to do


async def test_the_kopf_handlers_retry_soon_and_forget_deleted_fleets(
    state: runtime.State, namespace: str
) -> None:
    memo = {runtime.MEMO_KEY: state}
    body = await _create_proxy(state, namespace)
    await fleet.weatherproxy_changed(body=body, memo=memo, reason="create")
    assert (constants.WEATHERPROXY_KIND, namespace, "paris") in state.written_status
    fleet.weatherproxy_event(event={"type": "DELETED"}, body=body, memo=memo)
    assert (constants.WEATHERPROXY_KIND, namespace, "paris") not in state.written_status
    # A name the API server refuses for the fleet's Service (DNS-1035 labels have no dots).
    broken = {**body, "metadata": {**body["metadata"], "name": "not.a.service.name"}}
    with pytest.raises(kopf.TemporaryError):
        await fleet.weatherproxy_changed(body=broken, memo=memo, reason="update")


async def test_a_hand_scaled_deployment_is_reconciled_and_a_deleted_one_restored(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace, replicas=1)
    await fleet.reconcile(state, body)
    deployment = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    await children.on_workload_event(state, {"type": "ADDED"}, deployment)
    scaled = await state.cluster.patch(apply.DEPLOYMENT, namespace, "paris", {"spec": {"replicas": 5}})
    scaled["metadata"]["managedFields"] = [{"manager": "kubectl", "time": "9999-01-01T00:00:00Z"}]
    await children.on_workload_event(state, {"type": "MODIFIED"}, scaled)
    assert state.requested == {(namespace, "paris")}
    await asyncio.gather(*state.background)
    restored = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
    assert restored is not None
    assert restored["spec"]["replicas"] == 1
    await children.on_workload_event(state, {"type": "DELETED"}, restored)
    assert state.requested == {(namespace, "paris")}
    await asyncio.gather(*state.background)


async def _keys_secret_version(state: runtime.State, namespace: str) -> str:
    secret = await state.cluster.get(apply.SECRET, namespace, names.keys_secret_name("paris"))
    assert secret is not None
    return str(secret["metadata"]["resourceVersion"])


async def test_keys_yaml_revision_grows_with_each_change_only(state: runtime.State, namespace: str) -> None:
    """The proxy orders the watched Secret and its lagging mounted file by this revision."""
    proxy = await _create_proxy(state, namespace)
    await fleet.reconcile(state, proxy)
    first = (await _keys_yaml(state, namespace))["revision"]
    stored = await _keys_secret_version(state, namespace)
    assert first > 0
    await fleet.reconcile(state, proxy)  # the same content re-applied: the same revision, no write
    assert (await _keys_yaml(state, namespace))["revision"] == first
    assert await _keys_secret_version(state, namespace) == stored

    body = await _create_key(state, namespace, "team-a")
    await apikeys.handle(state, body)
    await _reindex_key(state, namespace, "team-a")
    await keysync.sync_keys(state, namespace, "paris")
    second = (await _keys_yaml(state, namespace))["revision"]
    assert second > first

    # A restarted operator (nothing remembered) re-applying the same content keeps its revision...
    state.applied_keys.clear()
    state.key_revisions.clear()
    stored = await _keys_secret_version(state, namespace)
    await fleet.reconcile(state, proxy)
    assert (await _keys_yaml(state, namespace))["revision"] == second
    assert await _keys_secret_version(state, namespace) == stored
    # ...and one whose clock is far behind still writes a higher revision for new content.
    state.applied_keys.clear()
    state.key_revisions.clear()
    state.clock = lambda: datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)
    state.apikeys = {}
    await keysync.sync_keys(state, namespace, "paris")
    assert (await _keys_yaml(state, namespace)) == {"revision": second + 1, "keys": []}


async def test_keys_reshard_as_they_grow_without_a_key_missing_from_either_layout(
    state: runtime.State, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weather_operator import keyshards
    from weather_proxy import config as proxy_config

    monkeypatch.setattr(keyshards, "GROW_AT", 1024)  # a few keys per shard instead of thousands
    monkeypatch.setattr(keyshards, "SHRINK_TO", 256)
    body = await _create_proxy(state, namespace)
    await fleet.reconcile(state, body)
    assert await keysync.layout_of(state, namespace, "paris") == (1, None)

    hashes = {}
    for i in range(24):  # about 2.5 KiB of entries: four shards
        await _create_key(state, namespace, f"k{i:02d}", secretName=f"k{i:02d}-key")
        await apikeys.handle(state, await _reindex_key(state, namespace, f"k{i:02d}"))
        hashes[f"{namespace}/k{i:02d}"] = (await _reindex_key(state, namespace, f"k{i:02d}"))["metadata"][
            "annotations"
        ][keys.SHA256_ANNOTATION]
    await fleet.reconcile(state, body)
    shards, previous = await keysync.layout_of(state, namespace, "paris")
    assert shards == 4
    assert previous is not None  # the pods have not rolled yet (no node runs them here)

    async def contents(count: int) -> list[proxy_config.KeysFile]:
        out = []
        for name in names.keys_secret_names("paris", count):
            secret = await state.cluster.get(apply.SECRET, namespace, name)
            assert secret is not None, name
            out.append(
                proxy_config.parse_keys(base64.b64decode(secret["data"][names.KEYS_KEY]).decode(), name)
            )
        return out

    # Each Secret of both layouts holds its keys under either assignment.
    both = await contents(max(shards, previous))
    for key_id in hashes:
        for count in (shards, previous):
            assert key_id in {entry.id for entry in both[keyshards.shard_of(key_id, count)].keys}
    config_map = await state.cluster.get(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )
    assert config_map is not None
    rendered = proxy_config.ProxyConfig.model_validate(yaml.safe_load(config_map["data"][names.CONFIG_KEY]))
    assert rendered.auth.kubernetes is not None
    assert rendered.auth.kubernetes.secret_names == names.keys_secret_names("paris", 4)
    assert rendered.auth.keys_files == [names.keys_file_path(i) for i in (1, 2, 3)]
    role = await state.cluster.get(
        apply.kind_of("rbac.authorization.k8s.io/v1", "Role"), namespace, names.keys_reader_name("paris")
    )
    assert role is not None
    assert role["rules"][0]["resourceNames"] == names.keys_secret_names("paris", 4)

    # Rolled out: each key is in its own shard only, every hash present once.
    assert await keysync.finish_resharding(state, namespace, "paris", body)
    assert await keysync.layout_of(state, namespace, "paris") == (4, None)
    final = await contents(4)
    seen = {entry.id: entry.sha256 for part in final for entry in part.keys}
    assert seen == hashes
    assert sum(len(part.keys) for part in final) == len(hashes)
    for index, part in enumerate(final):
        assert all(keyshards.shard_of(entry.id, 4) == index for entry in part.keys)

    # An operator restarted now reads the layout back from the Secrets' annotation.
    state.key_layouts.clear()
    assert await keysync.layout_of(state, namespace, "paris") == (4, None)
