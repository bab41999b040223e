"""Handler logic driven directly (no Kopf) against a real kube-apiserver.

The Kopf indexes are plain dicts here, filled the way Kopf fills them; everything the
handlers write goes to the real API server.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from typing import Any

import pytest
import yaml

from weather_operator import apply, keys, workqueue
from weather_operator.api import constants
from weather_operator.handlers import apikeys, children, fleet, keysync, periodic, runtime, startup
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
    _index_key(state, body, record)
    return body


def _index_key(state: runtime.State, body: dict[str, Any], record: keys.KeyRecord) -> None:
    namespace = body["metadata"]["namespace"]
    others = [item for item in state.keys_of(namespace, record.proxy) if item.record.id != record.id]
    index = dict(state.apikeys)
    index[namespace, record.proxy] = [*others, runtime.IndexedKey(record=record, body=runtime.snapshot(body))]
    state.apikeys = index


async def _reconcile(state: runtime.State, body: dict[str, Any], reason: str = "test") -> fleet.Outcome:
    """The fleet's reconcile, as the queue runs it, from ``body`` as the index holds it."""
    _index_proxy(state, body)
    metadata = body["metadata"]
    request = workqueue.Request(runtime.WEATHERPROXY, metadata["namespace"], metadata["name"])
    return await fleet.reconcile(state, request, reason)


async def _handle(state: runtime.State, body: dict[str, Any]) -> apikeys.KeyResult:
    """The ApiKey's watch event (as Kopf delivers it: the index first), then its reconcile (the queue's)."""
    record = keys.record_from_body(body)
    if record is not None:
        _index_key(state, body, record)
    await apikeys.apikey_event(event={"type": "MODIFIED"}, body=body, memo={runtime.MEMO_KEY: state})
    metadata = body["metadata"]
    request = workqueue.Request(runtime.APIKEY, metadata["namespace"], metadata["name"])
    result = await apikeys.reconcile(state, request, "test")
    assert result is not None
    return result


async def _observe(state: runtime.State, namespace: str, proxy: str = "paris") -> None:
    """The workloads' watch events, as Kopf delivers them: what the status is observed from."""
    for kind, name in ((apply.DEPLOYMENT, proxy), (apply.STATEFULSET, names.redis_name(proxy))):
        body = await state.cluster.get(kind, namespace, name)
        if body is not None:
            children.on_workload_event(state, {"type": "MODIFIED"}, body)


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
    outcome = await _reconcile(state, body)
    assert "Deployment/paris" in outcome.changed
    assert outcome.status_written
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
    await _observe(state, namespace)
    await _reconcile(state, body)
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    # Again, from the stale body (status empty): nothing is applied and the status is not rewritten.
    password = await state.cluster.get(apply.SECRET, namespace, names.redis_secret_name("paris"))
    second = await _reconcile(state, body)
    assert second == fleet.Outcome()  # nothing applied, deleted or written
    again = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    kept = await state.cluster.get(apply.SECRET, namespace, names.redis_secret_name("paris"))
    assert kept is not None
    assert password is not None
    assert kept["data"] == password["data"]
    # The drift repair re-applies every child: still no change, no status write.
    state.full_apply.add((namespace, "paris"))
    assert await _reconcile(state, body) == fleet.Outcome()


async def test_a_disabled_option_deletes_its_child_and_a_hand_edit_is_reverted(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace, ingress={"enabled": True, "host": "w.example.com"})
    await _reconcile(state, body)
    assert await state.cluster.get(apply.kind_of("networking.k8s.io/v1", "Ingress"), namespace, "paris")

    edited = await state.cluster.patch(
        apply.kind_of("v1", "ConfigMap"),
        namespace,
        names.config_map_name("paris"),
        {"data": {names.CONFIG_KEY: "x"}},
    )
    edited["metadata"]["managedFields"] = [{"manager": "kubectl", "time": "9999-01-01T00:00:00Z"}]
    children.on_config_event(state, {"type": "MODIFIED"}, edited)  # its watch event: someone else's edit
    body = await _create_proxy(state, namespace, ingress={"enabled": False})
    outcome = await _reconcile(state, body)
    assert outcome.deleted == ["Ingress/paris"]
    assert f"ConfigMap/{names.config_map_name('paris')}" in outcome.changed
    cm = await state.cluster.get(apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris"))
    assert cm is not None
    assert cm["data"][names.CONFIG_KEY] != "x"


async def test_generated_key_reaches_keys_yaml_and_rotation_keeps_the_old_hash(
    state: runtime.State, namespace: str
) -> None:
    proxy = await _create_proxy(state, namespace)
    await _reconcile(state, proxy)
    body = await _create_key(state, namespace, "team-a", rateLimit={"requestsPerMinute": 60, "burst": 6})
    result = await _handle(state, body)
    assert result.problem is None
    assert [e[1] for e in result.events] == ["KeyIssued"]
    body = await _reindex_key(state, namespace, "team-a")
    secret = await state.cluster.get(apply.SECRET, namespace, names.apikey_secret_name("team-a"))
    assert secret is not None
    plaintext = base64.b64decode(secret["data"][names.APIKEY_SECRET_KEY]).decode()
    assert body["metadata"]["annotations"][keys.SHA256_ANNOTATION] == keys.sha256_hex(plaintext)
    assert body["status"]["keyPrefix"] == plaintext[:8]
    assert body["status"]["conditions"][0]["reason"] == "KeyIssued"

    outcome = await _reconcile(state, proxy, "ApiKey team-a changed")
    assert outcome.changed == [f"Secret/{names.keys_secret_name('paris')}"]  # only the keys changed
    entries = (await _keys_yaml(state, namespace))["keys"]
    assert [(e["id"], e["sha256"]) for e in entries] == [(f"{namespace}/team-a", keys.sha256_hex(plaintext))]
    assert plaintext not in str(entries)

    # Handling it again changes nothing: same key, no write.
    again = await _handle(state, body)
    assert again.annotations == {}
    assert again.status == {}
    assert again.events == []

    body = await _create_key(state, namespace, "team-a", rotation=1, rotationGracePeriodSeconds=600)
    rotated = await _handle(state, body)
    assert [e[1] for e in rotated.events] == ["KeyRotated"]
    assert len(rotated.recheck_at) == 1
    assert 590 < rotated.recheck_at[0] <= 601  # the grace's end
    await _reindex_key(state, namespace, "team-a")
    await _reconcile(state, proxy)
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
    result = await _handle(state, body)
    assert result.problem is not None
    assert result.problem[0] == "SecretNotFound"
    assert result.status["conditions"][0]["reason"] == "SecretNotFound"
    assert (namespace, "k") in state.key_rechecks  # re-checked periodically

    await state.cluster.patch(
        apply.SECRET, namespace, "mine", {"stringData": {names.APIKEY_SECRET_KEY: "user-chosen-key"}}
    )
    result = await _handle(state, body)
    assert result.problem is not None
    assert result.problem[0] == "ProxyNotFound"
    assert result.annotations[keys.SHA256_ANNOTATION] == keys.sha256_hex("user-chosen-key")
    assert result.user_secret

    proxy = await _create_proxy(state, namespace)
    body = await _reindex_key(state, namespace, "k")
    # The fleet appearing re-checks its keys (through the queue).
    state.queue = startup.queue(state)
    state.generations.pop((runtime.WEATHERPROXY, namespace, "paris"), None)
    await fleet.weatherproxy_event(event={"type": "ADDED"}, body=proxy, memo={runtime.MEMO_KEY: state})
    await _drained(state)
    stored = await state.cluster.get(apply.APIKEY, namespace, "k")
    assert stored is not None
    assert stored["status"]["conditions"][0]["reason"] == "KeyIssued"
    # The user's Secret is read, never replaced, and not owned by the ApiKey.
    mine = await state.cluster.get(apply.SECRET, namespace, "mine")
    assert mine is not None
    assert not mine["metadata"].get("ownerReferences")
    assert apikeys.recheck(state, spread=0) == 1  # a user's Secret: its content may change


async def _drained(state: runtime.State) -> None:
    """Run the queue until nothing is waiting, being reconciled or due within a second."""
    assert state.queue is not None
    state.queue.start()
    for _ in range(400):
        await asyncio.sleep(0.05)
        if state.queue.depth == 0 and state.queue.busy == 0:
            return
    raise AssertionError("the queue never drained")


async def test_an_expired_key_leaves_keys_yaml_and_reports_expired(
    state: runtime.State, namespace: str
) -> None:
    proxy = await _create_proxy(state, namespace)
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    body = await _create_key(state, namespace, "old", expiresAt=past)
    result = await _handle(state, body)
    assert result.status["conditions"][0]["reason"] == "Expired"
    assert result.status["expired"] is True
    await _reindex_key(state, namespace, "old")
    await _reconcile(state, proxy)
    assert (await _keys_yaml(state, namespace))["keys"] == []


async def test_child_events_request_a_reconcile_only_when_someone_else_changed_it(
    state: runtime.State, namespace: str
) -> None:
    state.queue = startup.queue(state)
    body = await _create_proxy(state, namespace)
    await _reconcile(state, body)
    cm = await state.cluster.get(apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris"))
    assert cm is not None
    assert children.owner_name(cm) == "paris"
    assert children.changed_by_operator(cm)
    children.on_config_event(state, {"type": "MODIFIED"}, cm)
    assert state.queue.depth == 0

    await state.cluster.delete(apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris"))
    children.on_config_event(state, {"type": "DELETED"}, cm)
    assert state.queue.pending(workqueue.Request(runtime.WEATHERPROXY, namespace, "paris"))
    await _drained(state)
    assert await state.cluster.get(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )

    # A workload's status changing is a reconcile (the status follows it); the same status again is not.
    await _drained(state)
    deployment = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    children.on_workload_event(state, {"type": "MODIFIED"}, deployment)
    await _drained(state)
    children.on_workload_event(state, {"type": "MODIFIED"}, deployment)
    assert state.queue.depth == 0


async def test_switching_to_external_redis_removes_the_managed_one_and_watches_its_secret(
    state: runtime.State, namespace: str
) -> None:
    body = await _create_proxy(state, namespace)
    await _reconcile(state, body)
    external = {"mode": "External", "external": {"urlSecretRef": {"name": "redis-url", "key": "url"}}}
    body = await _create_proxy(state, namespace, redis=external)
    outcome = await _reconcile(state, body)
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
    assert (await _reconcile(state, body)).status_written
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    redis = next(c for c in stored["status"]["conditions"] if c["type"] == "RedisReady")
    assert (redis["status"], redis["reason"]) == ("True", "ExternalSecretFound")


async def test_a_spec_the_models_reject_is_written_as_invalid_spec_naming_the_field(
    state: runtime.State, namespace: str
) -> None:
    # The CRD's schema would refuse this; written past it (as an older CRD might have let it in).
    body = await _create_proxy(state, namespace)
    invalid = {**body, "spec": {"environment": "dev", "replicas": -1}}
    outcome = await _reconcile(state, invalid)
    assert outcome.invalid is not None
    assert "spec.replicas" in outcome.invalid
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    conditions = {c["type"]: c for c in stored["status"]["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "InvalidSpec")
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == ("True", "InvalidSpec")
    assert "spec.replicas" in conditions["Ready"]["message"]
    assert await state.cluster.get(apply.DEPLOYMENT, namespace, "paris") is None  # nothing applied
    assert not (await _reconcile(state, invalid)).status_written  # written once

    key = await _create_key(state, namespace, "k")
    result = await _handle(state, {**key, "spec": {"proxyRef": {"name": "paris"}, "expiresAt": "never"}})
    assert result.problem is not None
    assert result.problem[0] == "InvalidSpec"
    assert "spec.expiresAt" in result.problem[1]
    assert result.status["conditions"][0]["reason"] == "InvalidSpec"
    # A re-check of a vanished ApiKey is quiet.
    gone = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.APIKEY_KIND,
        "metadata": {"name": "gone", "namespace": namespace, "uid": "u", "generation": 1},
        "spec": {"proxyRef": {"name": "paris"}},
    }
    await apikeys.apikey_event(event={"type": "MODIFIED"}, body=gone, memo={runtime.MEMO_KEY: state})
    assert (
        await apikeys.reconcile(state, workqueue.Request(runtime.APIKEY, namespace, "gone"), "test") is None
    )


async def test_requests_coalesce_and_reconcile_the_latest_indexed_body(
    state: runtime.State, namespace: str
) -> None:
    state.queue = startup.queue(state)
    await _create_proxy(state, namespace)
    for i in range(50):
        state.request_fleet(namespace, "paris", f"ApiKey {i} changed")
    state.request_fleet(namespace, "absent", "nothing to do")
    assert state.queue.depth == 2
    await _drained(state)
    assert await state.cluster.get(apply.DEPLOYMENT, namespace, "paris") is not None
    text = state.metrics.render().decode()
    assert 'weather_operator_reconciles_total{kind="WeatherProxy",result="success"} 2.0' in text


async def test_an_immutable_change_recreates_the_statefulset(state: runtime.State, namespace: str) -> None:
    body = await _create_proxy(state, namespace)
    await _reconcile(state, body)
    before = await state.cluster.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
    assert before is not None
    assert not before["spec"].get("volumeClaimTemplates")
    body = await _create_proxy(state, namespace, environment="staging")  # persistent Redis
    await _reconcile(state, body)
    after = await state.cluster.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
    assert after is not None
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["volumeClaimTemplates"]


async def test_a_service_whose_cluster_ip_must_change_is_recreated(
    state: runtime.State, namespace: str
) -> None:
    """A fleet from before the headless Redis Service: its Service had a cluster IP (immutable)."""
    body = await _create_proxy(state, namespace)
    await _reconcile(state, body)
    name = names.redis_name("paris")
    service = await state.cluster.get(apply.kind_of("v1", "Service"), namespace, name)
    assert service is not None
    assert service["spec"]["clusterIP"] == "None"
    await state.cluster.delete(apply.kind_of("v1", "Service"), namespace, name)
    old = {key: value for key, value in service.items() if key != "status"}
    old["metadata"] = {
        k: v
        for k, v in service["metadata"].items()
        if k in ("name", "namespace", "labels", "ownerReferences")
    }
    old["spec"] = {k: v for k, v in service["spec"].items() if k in ("selector", "ports")}
    await state.cluster.create(old)  # a cluster IP is allocated
    state.forget_child(namespace, f"Service/{name}")
    await _reconcile(state, body)
    after = await state.cluster.get(apply.kind_of("v1", "Service"), namespace, name)
    assert after is not None
    assert after["spec"]["clusterIP"] == "None"


async def test_a_key_expiring_later_is_dropped_at_its_expiry_and_its_status_follows(
    state: runtime.State, namespace: str
) -> None:
    state.queue = startup.queue(state)
    proxy = await _create_proxy(state, namespace)
    await _reconcile(state, proxy)
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1.5)
    body = await _create_key(state, namespace, "brief", expiresAt=soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
    result = await _handle(state, body)
    assert result.recheck_at
    assert result.recheck_at[0] <= 1.6
    await _reindex_key(state, namespace, "brief")
    await _reconcile(state, proxy)
    assert [e["id"] for e in (await _keys_yaml(state, namespace))["keys"]] == [f"{namespace}/brief"]
    assert state.queue.scheduled == 2  # the fleet and the key, at the key's expiry
    state.queue.start()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if (await _keys_yaml(state, namespace))["keys"] == []:
            break
    assert (await _keys_yaml(state, namespace))["keys"] == []
    await _drained(state)
    stored = await state.cluster.get(apply.APIKEY, namespace, "brief")
    assert stored is not None
    assert stored["status"]["conditions"][0]["reason"] == "Expired"


async def test_periodic_jobs_repair_drift_and_follow_the_monitoring_crds(
    state: runtime.State, namespace: str
) -> None:
    state.queue = startup.queue(state)
    body = await _create_proxy(state, namespace, environment="staging")  # wants monitoring
    await _reconcile(state, body)
    await state.cluster.delete(apply.DEPLOYMENT, namespace, "paris")  # no watch here to see it
    state.settings = state.settings.model_copy(update={"drift_interval_seconds": 0.01})
    await periodic.repair_drift(state)
    await _drained(state)
    assert await state.cluster.get(apply.DEPLOYMENT, namespace, "paris") is not None
    # The status says CRDsNotInstalled; pretend the last answer was "installed": a reconcile follows.
    stored = state.previous_status(constants.WEATHERPROXY_KIND, body)
    assert fleet.monitoring_outdated(stored, True)
    assert not fleet.monitoring_outdated(stored, False)
    await periodic.recheck_monitoring(state)  # the CRDs are really absent: nothing to do
    assert state.queue.depth == 0


async def test_the_kopf_handlers_enqueue_new_generations_only_and_forget_deleted_fleets(
    state: runtime.State, namespace: str
) -> None:
    state.queue = startup.queue(state)
    memo = {runtime.MEMO_KEY: state}
    body = await _create_proxy(state, namespace)
    await fleet.weatherproxy_event(event={"type": None}, body=body, memo=memo)
    request = workqueue.Request(runtime.WEATHERPROXY, namespace, "paris")
    assert state.queue.pending(request)
    await _drained(state)
    assert (constants.WEATHERPROXY_KIND, namespace, "paris") in state.written_status
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    await fleet.weatherproxy_event(event={"type": "MODIFIED"}, body=stored, memo=memo)  # its status write
    assert not state.queue.pending(request)
    await fleet.weatherproxy_event(event={"type": "DELETED"}, body=stored, memo=memo)
    assert (constants.WEATHERPROXY_KIND, namespace, "paris") not in state.written_status
    # A name the API server refuses for the fleet's Service (DNS-1035 labels have no dots).
    broken = await _create_proxy(state, namespace, name="not.a.service.name")
    with pytest.raises(apply.ApiError):
        await _reconcile(state, broken)
    stored = await state.cluster.get(apply.WEATHERPROXY, namespace, "not.a.service.name")
    assert stored is not None
    degraded = next(c for c in stored["status"]["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ReconcileFailed")


async def test_a_hand_scaled_deployment_is_reconciled_and_a_deleted_one_restored(
    state: runtime.State, namespace: str
) -> None:
    state.queue = startup.queue(state)
    body = await _create_proxy(state, namespace, replicas=1)
    await _reconcile(state, body)
    deployment = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    children.on_workload_event(state, {"type": "ADDED"}, deployment)
    await _drained(state)
    scaled = await state.cluster.patch(apply.DEPLOYMENT, namespace, "paris", {"spec": {"replicas": 5}})
    scaled["metadata"]["managedFields"] = [{"manager": "kubectl", "time": "9999-01-01T00:00:00Z"}]
    children.on_workload_event(state, {"type": "MODIFIED"}, scaled)
    assert state.queue.pending(workqueue.Request(runtime.WEATHERPROXY, namespace, "paris"))
    await _drained(state)
    restored = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
    assert restored is not None
    assert restored["spec"]["replicas"] == 1
    await state.cluster.delete(apply.DEPLOYMENT, namespace, "paris")
    children.on_workload_event(state, {"type": "DELETED"}, restored)
    await _drained(state)
    assert await state.cluster.get(apply.DEPLOYMENT, namespace, "paris") is not None


async def _keys_secret_version(state: runtime.State, namespace: str) -> str:
    secret = await state.cluster.get(apply.SECRET, namespace, names.keys_secret_name("paris"))
    assert secret is not None
    return str(secret["metadata"]["resourceVersion"])


def _restarted(state: runtime.State) -> None:
    """What an operator restarted now knows: nothing remembered."""
    state.applied.clear()
    state.key_revisions.clear()
    state.key_layouts.clear()
    state.workloads.clear()


async def test_keys_yaml_revision_grows_with_each_change_only(state: runtime.State, namespace: str) -> None:
    """The proxy orders the watched Secret and its lagging mounted file by this revision."""
    proxy = await _create_proxy(state, namespace)
    await _reconcile(state, proxy)
    first = (await _keys_yaml(state, namespace))["revision"]
    stored = await _keys_secret_version(state, namespace)
    assert first > 0
    state.full_apply.add((namespace, "paris"))
    await _reconcile(state, proxy)  # the same content re-applied: the same revision, no write
    assert (await _keys_yaml(state, namespace))["revision"] == first
    assert await _keys_secret_version(state, namespace) == stored

    body = await _create_key(state, namespace, "team-a")
    await _handle(state, body)
    await _reindex_key(state, namespace, "team-a")
    await _reconcile(state, proxy)
    second = (await _keys_yaml(state, namespace))["revision"]
    assert second > first

    # A restarted operator re-applying the same content keeps its revision...
    _restarted(state)
    stored = await _keys_secret_version(state, namespace)
    await _reconcile(state, proxy)
    assert (await _keys_yaml(state, namespace))["revision"] == second
    assert await _keys_secret_version(state, namespace) == stored
    # ...and one whose clock is far behind still writes a higher revision for new content.
    _restarted(state)
    state.clock = lambda: datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)
    state.apikeys = {}
    await _reconcile(state, proxy)
    assert (await _keys_yaml(state, namespace)) == {"revision": second + 1, "keys": []}


async def test_keys_reshard_as_they_grow_without_a_key_missing_from_either_layout(
    state: runtime.State, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weather_operator import keyshards
    from weather_proxy import config as proxy_config

    monkeypatch.setattr(keyshards, "GROW_AT", 1024)  # a few keys per shard instead of thousands
    monkeypatch.setattr(keyshards, "SHRINK_TO", 256)
    body = await _create_proxy(state, namespace)
    await _reconcile(state, body)
    assert state.key_layouts[namespace, "paris"] == (1, None)

    hashes = {}
    for i in range(24):  # about 2.5 KiB of entries: four shards
        await _create_key(state, namespace, f"k{i:02d}", secretName=f"k{i:02d}-key")
        await _handle(state, await _reindex_key(state, namespace, f"k{i:02d}"))
        hashes[f"{namespace}/k{i:02d}"] = (await _reindex_key(state, namespace, f"k{i:02d}"))["metadata"][
            "annotations"
        ][keys.SHA256_ANNOTATION]
    await _reconcile(state, body)
    shards, previous = state.key_layouts[namespace, "paris"]
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

    # An operator restarted now reads the layout back from the Secrets' annotations.
    state.key_layouts.clear()
    keys_file = keys.keys_file(keysync.records_of(state, namespace, "paris"), state.clock())
    assert await keysync.layout(state, namespace, "paris", keys_file) == (shards, previous)

    # Rolled out (every replica on the new template, as the Deployment's watch event says): each
    # key is in its own shard only, every hash present once, the old layout's extra Secrets gone.
    deployment = await state.cluster.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": 1,
        "updatedReplicas": 1,
        "availableReplicas": 1,
    }
    children.on_workload_event(state, {"type": "MODIFIED"}, deployment)
    await _reconcile(state, body, "status of Deployment paris")
    assert state.key_layouts[namespace, "paris"] == (4, None)
    await _reconcile(state, body, "resharding rolled out")
    final = await contents(4)
    seen = {entry.id: entry.sha256 for part in final for entry in part.keys}
    assert seen == hashes
    assert sum(len(part.keys) for part in final) == len(hashes)
    for index, part in enumerate(final):
        assert all(keyshards.shard_of(entry.id, 4) == index for entry in part.keys)
