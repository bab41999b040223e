"""The controller driven directly (no Kopf) against a real kube-apiserver.

The Kopf indexes are plain dicts here, filled the way Kopf fills them; the Kopf adapters
(``handlers``) are called as Kopf calls them; everything the reconcilers write goes to the
real API server.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from typing import Any

import pytest
import yaml

from weather_operator import apply, handlers, keys, status
from weather_operator.api import constants
from weather_operator.controller import apikeys, fleets, indexes, keysync, requests, runtime, workqueue
from weather_operator.render import names

pytestmark = pytest.mark.controlplane


async def _create_proxy(
    controller: runtime.Controller, namespace: str, name: str = "paris", **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"environment": "dev", **spec},
    }
    created = await controller.connection.api.apply(body)
    _index_proxy(controller, created)
    return created


def _index_proxy(controller: runtime.Controller, body: dict[str, Any]) -> None:
    fleets = dict(controller.indexes.fleets)
    fleets[body["metadata"]["namespace"], body["metadata"]["name"]] = [indexes.snapshot(body)]
    controller.indexes.fleets = fleets


async def _create_key(
    controller: runtime.Controller, namespace: str, name: str, **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.APIKEY_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"proxyRef": {"name": "paris"}, **spec},
    }
    return await controller.connection.api.apply(body)


async def _reindex_key(controller: runtime.Controller, namespace: str, name: str) -> dict[str, Any]:
    """Read the ApiKey back and index it, as Kopf does on its watch event."""
    body = await controller.connection.api.get(apply.APIKEY, namespace, name)
    assert body is not None
    record = keys.record_from_body(body)
    assert record is not None
    _index_key(controller, body, record)
    return body


def _index_key(controller: runtime.Controller, body: dict[str, Any], record: keys.KeyRecord) -> None:
    namespace = body["metadata"]["namespace"]
    others = [
        item for item in controller.indexes.keys_of(namespace, record.proxy) if item.record.id != record.id
    ]
    index = dict(controller.indexes.apikeys)
    index[namespace, record.proxy] = [*others, indexes.IndexedKey(record=record, body=indexes.snapshot(body))]
    controller.indexes.apikeys = index


async def _reconcile(
    controller: runtime.Controller, body: dict[str, Any], reason: str = "test"
) -> fleets.Outcome:
    """The fleet's reconcile, as the queue runs it, from ``body`` as the index holds it."""
    _index_proxy(controller, body)
    metadata = body["metadata"]
    request = workqueue.Request(requests.WEATHERPROXY, metadata["namespace"], metadata["name"])
    return await controller.fleets.reconcile(request, reason)


async def _handle(controller: runtime.Controller, body: dict[str, Any]) -> apikeys.KeyResult:
    """The ApiKey's watch event (as Kopf delivers it: the index first), then its reconcile (the queue's)."""
    record = keys.record_from_body(body)
    if record is not None:
        _index_key(controller, body, record)
    await handlers.apikeys.apikey_event(
        event={"type": "MODIFIED"}, body=body, memo={runtime.MEMO_KEY: controller}
    )
    metadata = body["metadata"]
    request = workqueue.Request(requests.APIKEY, metadata["namespace"], metadata["name"])
    result = await controller.apikeys.reconcile(request, "test")
    assert result is not None
    return result


async def _observe(controller: runtime.Controller, namespace: str, proxy: str = "paris") -> None:
    """The workloads' watch events, as Kopf delivers them: what the status is observed from."""
    for kind, name in ((apply.DEPLOYMENT, proxy), (apply.STATEFULSET, names.redis_name(proxy))):
        body = await controller.connection.api.get(kind, namespace, name)
        if body is not None:
            handlers.children.on_workload_event(controller, {"type": "MODIFIED"}, body)


async def _keys_yaml(controller: runtime.Controller, namespace: str, proxy: str = "paris") -> dict[str, Any]:
    secret = await controller.connection.api.get(apply.SECRET, namespace, names.keys_secret_name(proxy))
    assert secret is not None
    parsed: dict[str, Any] = yaml.safe_load(base64.b64decode(secret["data"][names.KEYS_KEY]))
    return parsed


async def _settled(controller: runtime.Controller, namespace: str) -> None:
    for _ in range(200):
        deployment = await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris")
        sts = await controller.connection.api.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
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
    controller: runtime.Controller, namespace: str
) -> None:
    body = await _create_proxy(controller, namespace)
    outcome = await _reconcile(controller, body)
    assert "Deployment/paris" in outcome.changed
    assert outcome.status_written
    for kind, name in (
        (apply.DEPLOYMENT, "paris"),
        (apply.STATEFULSET, names.redis_name("paris")),
        (apply.SECRET, names.redis_secret_name("paris")),
        (apply.SECRET, names.keys_secret_name("paris")),
    ):
        child = await controller.connection.api.get(kind, namespace, name)
        assert child is not None, name
        assert child["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    stored = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    assert stored["status"]["observedGeneration"] == 1
    assert stored["status"]["endpoint"] == names.endpoint("paris", namespace)
    reasons = {c["type"]: c["reason"] for c in stored["status"]["conditions"]}
    assert reasons["MonitoringConfigured"] == "CRDsNotInstalled"
    assert reasons["Ready"] in {"ReplicasNotReady", "AllReplicasReady"}  # pods run only with kwok nodes

    # Once the Deployment controller has reported (its status feeds ours), the status settles.
    await _settled(controller, namespace)
    await _observe(controller, namespace)
    await _reconcile(controller, body)
    stored = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    # Again, from the stale body (status empty): nothing is applied and the status is not rewritten.
    password = await controller.connection.api.get(apply.SECRET, namespace, names.redis_secret_name("paris"))
    second = await _reconcile(controller, body)
    assert second == fleets.Outcome()  # nothing applied, deleted or written
    again = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "paris")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    kept = await controller.connection.api.get(apply.SECRET, namespace, names.redis_secret_name("paris"))
    assert kept is not None
    assert password is not None
    assert kept["data"] == password["data"]
    # The drift repair re-applies every child: still no change, no status write.
    controller.memory.fleet(namespace, "paris").full_apply = True
    assert await _reconcile(controller, body) == fleets.Outcome()


async def test_a_disabled_option_deletes_its_child_and_a_hand_edit_is_reverted(
    controller: runtime.Controller, namespace: str
) -> None:
    body = await _create_proxy(controller, namespace, ingress={"enabled": True, "host": "w.example.com"})
    await _reconcile(controller, body)
    assert await controller.connection.api.get(
        apply.kind_of("networking.k8s.io/v1", "Ingress"), namespace, "paris"
    )

    edited = await controller.connection.api.patch(
        apply.kind_of("v1", "ConfigMap"),
        namespace,
        names.config_map_name("paris"),
        {"data": {names.CONFIG_KEY: "x"}},
    )
    edited["metadata"]["managedFields"] = [{"manager": "kubectl", "time": "9999-01-01T00:00:00Z"}]
    handlers.children.on_config_event(
        controller, {"type": "MODIFIED"}, edited
    )  # its watch event: someone else's edit
    body = await _create_proxy(controller, namespace, ingress={"enabled": False})
    outcome = await _reconcile(controller, body)
    assert outcome.deleted == ["Ingress/paris"]
    assert f"ConfigMap/{names.config_map_name('paris')}" in outcome.changed
    cm = await controller.connection.api.get(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )
    assert cm is not None
    assert cm["data"][names.CONFIG_KEY] != "x"


async def test_generated_key_reaches_keys_yaml_and_rotation_keeps_the_old_hash(
    controller: runtime.Controller, namespace: str
) -> None:
    proxy = await _create_proxy(controller, namespace)
    await _reconcile(controller, proxy)
    body = await _create_key(controller, namespace, "team-a", rateLimit={"requestsPerMinute": 60, "burst": 6})
    result = await _handle(controller, body)
    assert result.problem is None
    assert [e[1] for e in result.events] == ["KeyIssued"]
    body = await _reindex_key(controller, namespace, "team-a")
    secret = await controller.connection.api.get(apply.SECRET, namespace, names.apikey_secret_name("team-a"))
    assert secret is not None
    plaintext = base64.b64decode(secret["data"][names.APIKEY_SECRET_KEY]).decode()
    assert body["metadata"]["annotations"][keys.SHA256_ANNOTATION] == keys.sha256_hex(plaintext)
    assert body["status"]["keyPrefix"] == plaintext[:8]
    assert body["status"]["conditions"][0]["reason"] == "KeyIssued"

    outcome = await _reconcile(controller, proxy, "ApiKey team-a changed")
    assert outcome.changed == [f"Secret/{names.keys_secret_name('paris')}"]  # only the keys changed
    entries = (await _keys_yaml(controller, namespace))["keys"]
    assert [(e["id"], e["sha256"]) for e in entries] == [(f"{namespace}/team-a", keys.sha256_hex(plaintext))]
    assert plaintext not in str(entries)

    # Handling it again changes nothing: same key, no write.
    again = await _handle(controller, body)
    assert again.annotations == {}
    assert again.status == {}
    assert again.events == []

    body = await _create_key(controller, namespace, "team-a", rotation=1, rotationGracePeriodSeconds=600)
    rotated = await _handle(controller, body)
    assert [e[1] for e in rotated.events] == ["KeyRotated"]
    assert len(rotated.recheck_at) == 1
    assert 590 < rotated.recheck_at[0] <= 601  # the grace's end
    await _reindex_key(controller, namespace, "team-a")
    await _reconcile(controller, proxy)
    ids = {e["id"] for e in (await _keys_yaml(controller, namespace))["keys"]}
    assert ids == {f"{namespace}/team-a", f"{namespace}/team-a{keys.PREVIOUS_SUFFIX}"}


async def test_user_secret_missing_proxy_and_recovery(controller: runtime.Controller, namespace: str) -> None:
    await controller.connection.api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mine", "namespace": namespace},
            "stringData": {"other": "x"},
        }
    )
    body = await _create_key(controller, namespace, "k", secretName="mine")
    result = await _handle(controller, body)
    assert result.problem is not None
    assert result.problem[0] == "SecretNotFound"
    assert result.status["conditions"][0]["reason"] == "SecretNotFound"
    assert controller.memory.apikey(namespace, "k").recheck  # re-checked periodically

    await controller.connection.api.patch(
        apply.SECRET, namespace, "mine", {"stringData": {names.APIKEY_SECRET_KEY: "user-chosen-key"}}
    )
    result = await _handle(controller, body)
    assert result.problem is not None
    assert result.problem[0] == "ProxyNotFound"
    assert result.annotations[keys.SHA256_ANNOTATION] == keys.sha256_hex("user-chosen-key")
    assert result.user_secret

    proxy = await _create_proxy(controller, namespace)
    body = await _reindex_key(controller, namespace, "k")
    # The fleet appearing re-checks its keys (through the queue).
    controller.memory.fleets.pop((namespace, "paris"), None)
    await handlers.fleet.weatherproxy_event(
        event={"type": "ADDED"}, body=proxy, memo={runtime.MEMO_KEY: controller}
    )
    await _drained(controller)
    stored = await controller.connection.api.get(apply.APIKEY, namespace, "k")
    assert stored is not None
    assert stored["status"]["conditions"][0]["reason"] == "KeyIssued"
    # The user's Secret is read, never replaced, and not owned by the ApiKey.
    mine = await controller.connection.api.get(apply.SECRET, namespace, "mine")
    assert mine is not None
    assert not mine["metadata"].get("ownerReferences")
    rechecked = [key for key, record in controller.memory.apikeys.items() if record.recheck]
    assert rechecked == [(namespace, "k")]  # a user's Secret: its content may change


async def _drained(controller: runtime.Controller) -> None:
    """Run the queue until nothing is waiting, being reconciled or due within a second."""
    controller.queue.start()
    for _ in range(400):
        await asyncio.sleep(0.05)
        if controller.queue.depth == 0 and controller.queue.busy == 0:
            return
    raise AssertionError("the queue never drained")


async def test_an_expired_key_leaves_keys_yaml_and_reports_expired(
    controller: runtime.Controller, namespace: str
) -> None:
    proxy = await _create_proxy(controller, namespace)
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    body = await _create_key(controller, namespace, "old", expiresAt=past)
    result = await _handle(controller, body)
    assert result.status["conditions"][0]["reason"] == "Expired"
    assert result.status["expired"] is True
    await _reindex_key(controller, namespace, "old")
    await _reconcile(controller, proxy)
    assert (await _keys_yaml(controller, namespace))["keys"] == []


async def test_child_events_request_a_reconcile_only_when_someone_else_changed_it(
    controller: runtime.Controller, namespace: str
) -> None:
    body = await _create_proxy(controller, namespace)
    await _reconcile(controller, body)
    cm = await controller.connection.api.get(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )
    assert cm is not None
    assert handlers.children.owner_name(cm) == "paris"
    assert handlers.children.changed_by_operator(cm)
    handlers.children.on_config_event(controller, {"type": "MODIFIED"}, cm)
    assert controller.queue.depth == 0

    await controller.connection.api.delete(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )
    handlers.children.on_config_event(controller, {"type": "DELETED"}, cm)
    assert controller.queue.pending(workqueue.Request(requests.WEATHERPROXY, namespace, "paris"))
    await _drained(controller)
    assert await controller.connection.api.get(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )

    # A workload's status changing is a reconcile (the status follows it); the same status again is not.
    await _drained(controller)
    deployment = await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    handlers.children.on_workload_event(controller, {"type": "MODIFIED"}, deployment)
    await _drained(controller)
    handlers.children.on_workload_event(controller, {"type": "MODIFIED"}, deployment)
    assert controller.queue.depth == 0


async def test_switching_to_external_redis_removes_the_managed_one_and_watches_its_secret(
    controller: runtime.Controller, namespace: str
) -> None:
    body = await _create_proxy(controller, namespace)
    await _reconcile(controller, body)
    external = {"mode": "External", "external": {"urlSecretRef": {"name": "redis-url", "key": "url"}}}
    body = await _create_proxy(controller, namespace, redis=external)
    outcome = await _reconcile(controller, body)
    assert {f"StatefulSet/{names.redis_name('paris')}", f"Secret/{names.redis_secret_name('paris')}"} <= set(
        outcome.deleted
    )
    stored = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    redis = next(c for c in stored["status"]["conditions"] if c["type"] == "RedisReady")
    assert (redis["status"], redis["reason"]) == ("False", "ExternalSecretNotFound")

    await controller.connection.api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-url", "namespace": namespace},
            "stringData": {"url": "redis://r:6379/0"},
        }
    )
    assert (await _reconcile(controller, body)).status_written
    stored = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    redis = next(c for c in stored["status"]["conditions"] if c["type"] == "RedisReady")
    assert (redis["status"], redis["reason"]) == ("True", "ExternalSecretFound")


async def test_a_spec_the_models_reject_is_written_as_invalid_spec_naming_the_field(
    controller: runtime.Controller, namespace: str
) -> None:
    # The CRD's schema would refuse this; written past it (as an older CRD might have let it in).
    body = await _create_proxy(controller, namespace)
    invalid = {**body, "spec": {"environment": "dev", "replicas": -1}}
    outcome = await _reconcile(controller, invalid)
    assert outcome.invalid is not None
    assert "spec.replicas" in outcome.invalid
    stored = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    conditions = {c["type"]: c for c in stored["status"]["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "InvalidSpec")
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == ("True", "InvalidSpec")
    assert "spec.replicas" in conditions["Ready"]["message"]
    assert (
        await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris") is None
    )  # nothing applied
    assert not (await _reconcile(controller, invalid)).status_written  # written once

    key = await _create_key(controller, namespace, "k")
    result = await _handle(controller, {**key, "spec": {"proxyRef": {"name": "paris"}, "expiresAt": "never"}})
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
    await handlers.apikeys.apikey_event(
        event={"type": "MODIFIED"}, body=gone, memo={runtime.MEMO_KEY: controller}
    )
    assert (
        await controller.apikeys.reconcile(workqueue.Request(requests.APIKEY, namespace, "gone"), "test")
        is None
    )


async def test_requests_coalesce_and_reconcile_the_latest_indexed_body(
    controller: runtime.Controller, namespace: str
) -> None:
    await _create_proxy(controller, namespace)
    for i in range(50):
        controller.requests.fleet(namespace, "paris", f"ApiKey {i} changed")
    controller.requests.fleet(namespace, "absent", "nothing to do")
    assert controller.queue.depth == 2
    await _drained(controller)
    assert await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris") is not None
    text = controller.metrics.render().decode()
    assert 'weather_operator_reconciles_total{kind="WeatherProxy",result="success"} 2.0' in text


async def test_an_immutable_change_recreates_the_statefulset(
    controller: runtime.Controller, namespace: str
) -> None:
    body = await _create_proxy(controller, namespace)
    await _reconcile(controller, body)
    before = await controller.connection.api.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
    assert before is not None
    assert not before["spec"].get("volumeClaimTemplates")
    body = await _create_proxy(controller, namespace, environment="staging")  # persistent Redis
    await _reconcile(controller, body)
    after = await controller.connection.api.get(apply.STATEFULSET, namespace, names.redis_name("paris"))
    assert after is not None
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["volumeClaimTemplates"]


async def test_a_service_whose_cluster_ip_must_change_is_recreated(
    controller: runtime.Controller, namespace: str
) -> None:
    """A fleet from before the headless Redis Service: its Service had a cluster IP (immutable)."""
    body = await _create_proxy(controller, namespace)
    await _reconcile(controller, body)
    name = names.redis_name("paris")
    service = await controller.connection.api.get(apply.kind_of("v1", "Service"), namespace, name)
    assert service is not None
    assert service["spec"]["clusterIP"] == "None"
    await controller.connection.api.delete(apply.kind_of("v1", "Service"), namespace, name)
    old = {key: value for key, value in service.items() if key != "status"}
    old["metadata"] = {
        k: v
        for k, v in service["metadata"].items()
        if k in ("name", "namespace", "labels", "ownerReferences")
    }
    old["spec"] = {k: v for k, v in service["spec"].items() if k in ("selector", "ports")}
    await controller.connection.api.create(old)  # a cluster IP is allocated
    controller.memory.fleet(namespace, "paris").children.forget(f"Service/{name}")
    await _reconcile(controller, body)
    after = await controller.connection.api.get(apply.kind_of("v1", "Service"), namespace, name)
    assert after is not None
    assert after["spec"]["clusterIP"] == "None"


async def test_a_key_expiring_later_is_dropped_at_its_expiry_and_its_status_follows(
    controller: runtime.Controller, namespace: str
) -> None:
    proxy = await _create_proxy(controller, namespace)
    await _reconcile(controller, proxy)
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1.5)
    body = await _create_key(controller, namespace, "brief", expiresAt=soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
    result = await _handle(controller, body)
    assert result.recheck_at
    assert result.recheck_at[0] <= 1.6
    await _reindex_key(controller, namespace, "brief")
    await _reconcile(controller, proxy)
    assert [e["id"] for e in (await _keys_yaml(controller, namespace))["keys"]] == [f"{namespace}/brief"]
    assert controller.queue.scheduled == 2  # the fleet and the key, at the key's expiry
    controller.queue.start()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if (await _keys_yaml(controller, namespace))["keys"] == []:
            break
    assert (await _keys_yaml(controller, namespace))["keys"] == []
    await _drained(controller)
    stored = await controller.connection.api.get(apply.APIKEY, namespace, "brief")
    assert stored is not None
    assert stored["status"]["conditions"][0]["reason"] == "Expired"


async def test_periodic_jobs_repair_drift_and_follow_the_monitoring_crds(
    controller: runtime.Controller, namespace: str
) -> None:
    body = await _create_proxy(controller, namespace, environment="staging")  # wants monitoring
    await _reconcile(controller, body)
    await controller.connection.api.delete(apply.DEPLOYMENT, namespace, "paris")  # no watch here to see it
    controller.periodic.settings = controller.settings.model_copy(update={"drift_interval_seconds": 0.01})
    await controller.periodic.repair_drift()
    await _drained(controller)
    assert await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris") is not None
    # The status says CRDsNotInstalled; pretend the last answer was "installed": a reconcile follows.
    stored = controller.memory.fleet(namespace, "paris").status.previous(body)
    assert status.monitoring_outdated(stored, True)
    assert not status.monitoring_outdated(stored, False)
    await controller.periodic.recheck_monitoring()  # the CRDs are really absent: nothing to do
    assert controller.queue.depth == 0


async def test_the_kopf_handlers_enqueue_new_generations_only_and_forget_deleted_fleets(
    controller: runtime.Controller, namespace: str
) -> None:
    memo = {runtime.MEMO_KEY: controller}
    body = await _create_proxy(controller, namespace)
    await handlers.fleet.weatherproxy_event(event={"type": None}, body=body, memo=memo)
    request = workqueue.Request(requests.WEATHERPROXY, namespace, "paris")
    assert controller.queue.pending(request)
    await _drained(controller)
    assert controller.memory.fleet(namespace, "paris").status.last is not None
    stored = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "paris")
    assert stored is not None
    await handlers.fleet.weatherproxy_event(
        event={"type": "MODIFIED"}, body=stored, memo=memo
    )  # its status write
    assert not controller.queue.pending(request)
    await handlers.fleet.weatherproxy_event(event={"type": "DELETED"}, body=stored, memo=memo)
    assert (namespace, "paris") not in controller.memory.fleets
    # A name the API server refuses for the fleet's Service (DNS-1035 labels have no dots).
    broken = await _create_proxy(controller, namespace, name="not.a.service.name")
    with pytest.raises(apply.ApiError):
        await _reconcile(controller, broken)
    stored = await controller.connection.api.get(apply.WEATHERPROXY, namespace, "not.a.service.name")
    assert stored is not None
    degraded = next(c for c in stored["status"]["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ReconcileFailed")


async def test_a_hand_scaled_deployment_is_reconciled_and_a_deleted_one_restored(
    controller: runtime.Controller, namespace: str
) -> None:
    body = await _create_proxy(controller, namespace, replicas=1)
    await _reconcile(controller, body)
    deployment = await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    handlers.children.on_workload_event(controller, {"type": "ADDED"}, deployment)
    await _drained(controller)
    scaled = await controller.connection.api.patch(
        apply.DEPLOYMENT, namespace, "paris", {"spec": {"replicas": 5}}
    )
    scaled["metadata"]["managedFields"] = [{"manager": "kubectl", "time": "9999-01-01T00:00:00Z"}]
    handlers.children.on_workload_event(controller, {"type": "MODIFIED"}, scaled)
    assert controller.queue.pending(workqueue.Request(requests.WEATHERPROXY, namespace, "paris"))
    await _drained(controller)
    restored = await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris")
    assert restored is not None
    assert restored["spec"]["replicas"] == 1
    await controller.connection.api.delete(apply.DEPLOYMENT, namespace, "paris")
    handlers.children.on_workload_event(controller, {"type": "DELETED"}, restored)
    await _drained(controller)
    assert await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris") is not None


async def _keys_secret_version(controller: runtime.Controller, namespace: str) -> str:
    secret = await controller.connection.api.get(apply.SECRET, namespace, names.keys_secret_name("paris"))
    assert secret is not None
    return str(secret["metadata"]["resourceVersion"])


def _restarted(controller: runtime.Controller) -> None:
    """What an operator restarted now knows: nothing remembered."""
    controller.memory.fleets.clear()


async def test_keys_yaml_revision_grows_with_each_change_only(
    controller: runtime.Controller, namespace: str
) -> None:
    """The proxy orders the watched Secret and its lagging mounted file by this revision."""
    proxy = await _create_proxy(controller, namespace)
    await _reconcile(controller, proxy)
    first = (await _keys_yaml(controller, namespace))["revision"]
    stored = await _keys_secret_version(controller, namespace)
    assert first > 0
    controller.memory.fleet(namespace, "paris").full_apply = True
    await _reconcile(controller, proxy)  # the same content re-applied: the same revision, no write
    assert (await _keys_yaml(controller, namespace))["revision"] == first
    assert await _keys_secret_version(controller, namespace) == stored

    body = await _create_key(controller, namespace, "team-a")
    await _handle(controller, body)
    await _reindex_key(controller, namespace, "team-a")
    await _reconcile(controller, proxy)
    second = (await _keys_yaml(controller, namespace))["revision"]
    assert second > first

    # A restarted operator re-applying the same content keeps its revision...
    _restarted(controller)
    stored = await _keys_secret_version(controller, namespace)
    await _reconcile(controller, proxy)
    assert (await _keys_yaml(controller, namespace))["revision"] == second
    assert await _keys_secret_version(controller, namespace) == stored
    # ...and one whose clock is far behind still writes a higher revision for new content.
    _restarted(controller)
    controller.fleets.clock = lambda: datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)
    controller.indexes.apikeys = {}
    await _reconcile(controller, proxy)
    assert (await _keys_yaml(controller, namespace)) == {"revision": second + 1, "keys": []}


async def test_keys_reshard_as_they_grow_without_a_key_missing_from_either_layout(
    controller: runtime.Controller, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weather_operator import keyshards
    from weather_proxy import config as proxy_config

    monkeypatch.setattr(keyshards, "GROW_AT", 1024)  # a few keys per shard instead of thousands
    monkeypatch.setattr(keyshards, "SHRINK_TO", 256)
    body = await _create_proxy(controller, namespace)
    await _reconcile(controller, body)
    layout = controller.memory.fleet(namespace, "paris").keys
    assert layout.shards == (1, None)

    hashes = {}
    for i in range(24):  # about 2.5 KiB of entries: four shards
        await _create_key(controller, namespace, f"k{i:02d}", secretName=f"k{i:02d}-key")
        await _handle(controller, await _reindex_key(controller, namespace, f"k{i:02d}"))
        hashes[f"{namespace}/k{i:02d}"] = (await _reindex_key(controller, namespace, f"k{i:02d}"))[
            "metadata"
        ]["annotations"][keys.SHA256_ANNOTATION]
    await _reconcile(controller, body)
    assert layout.shards is not None
    shards, previous = layout.shards
    assert shards == 4
    assert previous is not None  # the pods have not rolled yet (no node runs them here)

    async def contents(count: int) -> list[proxy_config.KeysFile]:
        out = []
        for name in names.keys_secret_names("paris", count):
            secret = await controller.connection.api.get(apply.SECRET, namespace, name)
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
    config_map = await controller.connection.api.get(
        apply.kind_of("v1", "ConfigMap"), namespace, names.config_map_name("paris")
    )
    assert config_map is not None
    rendered = proxy_config.ProxyConfig.model_validate(yaml.safe_load(config_map["data"][names.CONFIG_KEY]))
    assert rendered.auth.kubernetes is not None
    assert rendered.auth.kubernetes.secret_names == names.keys_secret_names("paris", 4)
    assert rendered.auth.keys_files == [names.keys_file_path(i) for i in (1, 2, 3)]
    role = await controller.connection.api.get(
        apply.kind_of("rbac.authorization.k8s.io/v1", "Role"), namespace, names.keys_reader_name("paris")
    )
    assert role is not None
    assert role["rules"][0]["resourceNames"] == names.keys_secret_names("paris", 4)

    # An operator restarted now reads the layout back from the Secrets' annotations.
    layout.shards = None
    records = [item.record for item in controller.indexes.keys_of(namespace, "paris")]
    keys_file = keys.keys_file(records, controller.fleets.clock())
    api = controller.connection.api
    assert await keysync.layout(api, namespace, "paris", keys_file, layout) == (shards, previous)

    # Rolled out (every replica on the new template, as the Deployment's watch event says): each
    # key is in its own shard only, every hash present once, the old layout's extra Secrets gone.
    deployment = await controller.connection.api.get(apply.DEPLOYMENT, namespace, "paris")
    assert deployment is not None
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": 1,
        "updatedReplicas": 1,
        "availableReplicas": 1,
    }
    handlers.children.on_workload_event(controller, {"type": "MODIFIED"}, deployment)
    await _reconcile(controller, body, "status of Deployment paris")
    assert layout.shards == (4, None)
    await _reconcile(controller, body, "resharding rolled out")
    final = await contents(4)
    seen = {entry.id: entry.sha256 for part in final for entry in part.keys}
    assert seen == hashes
    assert sum(len(part.keys) for part in final) == len(hashes)
    for index, part in enumerate(final):
        assert all(keyshards.shard_of(entry.id, 4) == index for entry in part.keys)
