"""The controller's bookkeeping, login from a kubeconfig, and which child changes count as foreign."""

from __future__ import annotations

import asyncio
import logging
import pathlib
from typing import Any

import kopf
import pytest
import yaml

from weather_operator import events, keys, settings
from weather_operator.api import constants
from weather_operator.controller import indexes, memory, runtime, tasks
from weather_operator.handlers import children, fleet, login, startup


def _controller() -> runtime.Controller:
    return runtime.Controller(settings.OperatorSettings(), indexes.Indexes({}, {}))


def _proxy(name: str = "paris", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "managedFields": [{}],
            **metadata,
        },
        "spec": {"environment": "dev"},
        "status": {"apiKeys": 1},
    }


def test_snapshots_are_detached_and_leave_managed_fields_out() -> None:
    body = _proxy()
    copy = indexes.snapshot(body)
    body["spec"]["environment"] = "production"
    assert copy["spec"] == {"environment": "dev"}
    assert "managedFields" not in copy["metadata"]
    assert copy["status"] == {"apiKeys": 1}


def test_the_index_views_skip_fleets_being_deleted() -> None:
    going = _proxy("gone", deletionTimestamp="2026-01-01T00:00:00Z")
    record = keys.KeyRecord(id="ns/k", proxy="paris", sha256="a" * 64)
    views = indexes.Indexes(
        {("ns", "paris"): [indexes.snapshot(_proxy())], ("ns", "gone"): [indexes.snapshot(going)]},
        {("ns", "paris"): [indexes.IndexedKey(record=record, body={"metadata": {"name": "k"}})]},
    )
    assert views.fleet("ns", "paris") is not None
    assert views.fleet("ns", "gone") is None
    assert views.fleet("ns", "absent") is None
    assert [body["metadata"]["name"] for body in views.all_fleets()] == ["paris"]
    assert [item.record.id for item in views.keys_of("ns", "paris")] == ["ns/k"]
    assert views.keys_of("ns", "other") == []
    assert views.api_key("ns", "paris", "k") is not None
    assert views.key_counts() == {("ns", "paris"): 1}


async def test_the_status_written_last_wins_over_a_stale_body() -> None:
    controller = _controller()
    body = _proxy()
    written = memory.WrittenStatus()
    assert written.previous(body) == {"apiKeys": 1}
    written.remember(body, {"apiKeys": 2, "configHash": "h", "gone": None})
    assert written.previous(body) == {"apiKeys": 2, "configHash": "h"}
    # A deleted fleet's record goes: a fleet of the same name starts from its own body.
    controller.memory.fleet("ns", "paris").status = written
    controller.indexes.fleets = {("ns", "paris"): [indexes.snapshot(body)]}
    await fleet.weatherproxy_event(event={"type": "DELETED"}, body=body, memo={runtime.MEMO_KEY: controller})
    assert controller.memory.fleet("ns", "paris").status.previous(body) == {"apiKeys": 1}
    await controller.close()


async def test_background_failures_are_logged_and_close_cancels_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    background = tasks.Tasks()
    controller = _controller()

    async def fail() -> None:
        raise RuntimeError("boom")

    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR):
        background.spawn(fail(), "failing task")
        background.spawn(forever(), "endless task")
        await started.wait()
        await asyncio.sleep(0)
    assert "failing task failed" in caplog.text
    await background.close()
    assert background.running == set()
    controller.tasks.spawn(forever(), "endless task")
    controller.requests.fleet("ns", "p", "a key expires", delay=60)
    assert controller.queue.scheduled == 1
    await controller.close()
    assert controller.tasks.running == set()
    assert controller.queue.scheduled == 0


async def test_the_periodic_loop_is_started_once_by_the_first_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    controller = _controller()
    runs: list[int] = []

    async def loop() -> None:
        runs.append(1)

    monkeypatch.setattr(controller.periodic, "run", loop)
    memo = {runtime.MEMO_KEY: controller}
    assert runtime.started(memo) is controller
    assert runtime.started(memo) is controller
    await asyncio.gather(*controller.tasks.running)
    assert runs == [1]
    assert controller.queue.started
    await controller.close()
    assert runtime.started({}) is None
    with pytest.raises(kopf.TemporaryError):
        runtime.of({})
    with pytest.raises(kopf.TemporaryError):
        _ = controller.connection.api
    with pytest.raises(kopf.TemporaryError):
        _ = controller.connection.monitoring


def _fields(*entries: tuple[str, str]) -> dict[str, Any]:
    return {"metadata": {"managedFields": [{"manager": m, "time": t} for m, t in entries]}}


def test_a_change_is_the_operators_only_when_it_wrote_last() -> None:
    assert children.changed_by_operator(_fields(("kubectl", "T1"), (constants.FIELD_MANAGER, "T2")))
    assert not children.changed_by_operator(_fields(("kubectl", "T2"), (constants.FIELD_MANAGER, "T1")))
    assert not children.changed_by_operator(_fields(("kubectl", "T1"), (constants.FIELD_MANAGER, "T1")))
    assert not children.changed_by_operator({"metadata": {}})


def test_only_a_controlling_weatherproxy_owns_a_child() -> None:
    ref = {"apiVersion": constants.API_VERSION, "kind": "WeatherProxy", "name": "paris", "uid": "u"}
    assert children.owner_name({"metadata": {"ownerReferences": [{**ref, "controller": True}]}}) == "paris"
    assert children.owner_name({"metadata": {"ownerReferences": [ref]}}) is None
    other = {**ref, "apiVersion": "example.com/v1", "controller": True}
    assert children.owner_name({"metadata": {"ownerReferences": [other]}}) is None


async def test_child_events_of_unknown_or_replaced_owners_are_ignored() -> None:
    controller = _controller()
    controller.indexes.fleets = {("ns", "paris"): [indexes.snapshot(_proxy())]}
    ref = {"apiVersion": constants.API_VERSION, "kind": "WeatherProxy", "name": "paris", "controller": True}
    stale = {
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "ownerReferences": [{**ref, "uid": "old"}]},
    }
    children.on_config_event(controller, {"type": "DELETED"}, stale)
    children.on_workload_event(controller, {"type": "DELETED"}, stale)
    children.on_config_event(controller, {"type": "ADDED"}, stale)
    children.on_workload_event(controller, {"type": "MODIFIED"}, stale)
    assert controller.queue.depth == 0
    assert controller.queue.added == 0
    assert controller.memory.fleets == {}


def test_login_reads_the_kubeconfig_named_by_the_environment(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "secret-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    configuration = login.load_configuration({"KUBECONFIG": str(path)})
    info = login.connection_info(configuration)
    assert info.server == "https://127.0.0.1:6443"
    assert (info.scheme, info.token) == ("Bearer", "secret-token")
    with pytest.raises(kopf.LoginError, match="no usable kubeconfig"):
        login.load_configuration({"KUBECONFIG": str(tmp_path / "missing")})


def test_events_outside_kopf_are_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        events.warn(_proxy(), "MonitoringSkipped", "no CRDs")
    assert "MonitoringSkipped: no CRDs" in caplog.text


def test_the_api_server_streams_only_the_fleets_children() -> None:
    settings_ = kopf.OperatorSettings()
    startup.watch_only_managed(settings_)
    secrets = settings_.watching.label_selectors["v1", "secrets"]
    assert secrets == "app.kubernetes.io/managed-by=weather-operator,app.kubernetes.io/component!=api-key"
    assert settings_.watching.label_selectors["apps", "v1", "deployments"] == (
        "app.kubernetes.io/managed-by=weather-operator"
    )
    # Every resource a child handler watches has its selector (and nothing else is filtered).
    assert len(settings_.watching.label_selectors) == len(children.CHILD_SELECTORS)
