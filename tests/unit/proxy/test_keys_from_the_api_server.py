"""Keys from the API server's watch of the keys Secrets, merged with the mounted file without flapping.

The watch runs against a scripted loopback API server (tests/support/scripted_apiserver);
the real kube-apiserver, RBAC and tokens are exercised in
tests/integration/operator/test_proxy_key_watch.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from devcluster import openmeteo as om
from tests.support import scripted_apiserver
from tests.unit.proxy.conftest import KEY, KEY_SHA, build_config, running
from weather_proxy import config as config_mod
from weather_proxy.auth import keys, keysources, keywatch
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.routes import deps

OTHER_SHA = keys.hash_key("other")


def keys_file(revision: int, *shas: str) -> config_mod.KeysFile:
    return config_mod.KeysFile(
        revision=revision,
        keys=[config_mod.KeyEntry(id=f"weather/k{i}", sha256=sha) for i, sha in enumerate(shas)],
    )


def keys_yaml(revision: int, *shas: str) -> str:
    entries = "".join(f"  - id: weather/k{i}\n    sha256: {sha}\n" for i, sha in enumerate(shas))
    return f"revision: {revision}\nkeys:\n{entries}" if shas else f"revision: {revision}\nkeys: []\n"


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


# -- which source is in force ------------------------------------------------------------------


class Ring:
    """What the runtime would serve: the last merged KeysFile applied."""

    def __init__(self) -> None:
        self.applied: list[config_mod.KeysFile] = []
        self.connected = True

    def shas(self) -> list[str]:
        return [entry.sha256 for entry in self.applied[-1].keys]

    def sources(self, *names: str) -> keysources.KeySources:
        return keysources.KeySources(names or ("paris-keys",), self.applied.append, lambda: self.connected)


def test_the_file_seeds_the_ring_and_the_watch_then_rules() -> None:
    ring = Ring()
    sources = ring.sources()
    sources.offer_file(keys_file(5, KEY_SHA))
    assert ring.shas() == [KEY_SHA]
    sources.offer_watch("paris-keys", keys_file(6))  # the key was revoked
    assert ring.shas() == []
    sources.offer_file(keys_file(5, KEY_SHA))  # the kubelet projects an older version late
    sources.offer_file(keys_file(6))
    assert ring.shas() == []
    assert len(ring.applied) == 2  # the late file changed nothing
    sources.offer_file(keys_file(7, OTHER_SHA))  # newer than the watch's: the watch fell behind
    assert ring.shas() == [OTHER_SHA]
    sources.offer_watch("paris-keys", keys_file(4, KEY_SHA))  # the API server's word is final
    assert ring.shas() == [KEY_SHA]
    assert sources.as_json()["paris-keys"] == {"source": "watch", "revision": 4, "count": 1, "present": True}


def test_unversioned_content_from_the_file_waits_for_the_watch_to_be_down() -> None:
    ring = Ring()
    sources = ring.sources()
    sources.offer_watch("paris-keys", keys_file(0))
    sources.offer_file(keys_file(0, KEY_SHA))
    assert ring.shas() == []
    ring.connected = False
    sources.offer_file(keys_file(0, KEY_SHA))
    assert ring.shas() == [KEY_SHA]


def test_a_deleted_secret_holds_no_keys_and_its_stale_file_does_not_return_them() -> None:
    ring = Ring()
    sources = ring.sources()
    sources.offer_watch("paris-keys", keys_file(9, KEY_SHA))
    sources.offer_watch("paris-keys", None)
    assert ring.shas() == []
    sources.offer_file(keys_file(9, KEY_SHA))
    assert ring.shas() == []
    assert sources.as_json()["paris-keys"]["present"] is False


def test_the_secrets_are_merged_in_order_and_the_file_stands_for_the_first() -> None:
    ring = Ring()
    sources = ring.sources("shard-a", "shard-b")
    sources.offer_watch("shard-b", keys_file(3, OTHER_SHA))
    sources.offer_file(keys_file(2, KEY_SHA))
    assert ring.shas() == [KEY_SHA, OTHER_SHA]
    assert ring.applied[-1].revision == 3
    assert sources.file_secret == "shard-a"
    with pytest.raises(ValueError, match="at least one"):
        keysources.KeySources((), ring.applied.append, lambda: True)


# -- the watch -----------------------------------------------------------------------------------


class Delivered:
    def __init__(self) -> None:
        self.items: list[tuple[str, config_mod.KeysFile | None]] = []

    def __call__(self, name: str, keys: config_mod.KeysFile | None) -> None:
        self.items.append((name, keys))

    def last(self) -> config_mod.KeysFile | None:
        return self.items[-1][1]


def rotate(path: pathlib.Path, text: str) -> None:
    path.write_text(text)


@pytest.fixture
async def api() -> AsyncIterator[scripted_apiserver.ScriptedApiServer]:
    async with scripted_apiserver.ScriptedApiServer() as server:
        yield server


def watch_settings(tmp_path: pathlib.Path, **overrides: Any) -> config_mod.KubernetesKeys:
    token = tmp_path / "token"
    if not token.exists():
        token.write_text("token-1\n")
    return config_mod.KubernetesKeys.model_validate(
        {"namespace": "weather", "secretNames": ["paris-keys"], "tokenFile": str(token), **overrides}
    )


@contextlib.asynccontextmanager
async def watching(
    settings: config_mod.KubernetesKeys, api: scripted_apiserver.ScriptedApiServer
) -> AsyncIterator[tuple[keywatch.KeyWatch, Delivered]]:
    delivered = Delivered()
    watch = keywatch.KeyWatch(
        settings, api.url, delivered, metrics_mod.Metrics(), backoff_initial=0.01, backoff_max=0.05
    )
    task = asyncio.get_running_loop().create_task(watch.run())
    try:
        yield watch, delivered
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sample(watch: keywatch.KeyWatch, name: str, labels: dict[str, str] | None = None) -> float | None:
    return watch.metrics.registry.get_sample_value(name, labels or {})


async def test_lists_then_applies_each_event_and_lists_again_after_410(
    api: scripted_apiserver.ScriptedApiServer, tmp_path: pathlib.Path
) -> None:
    api.secrets["paris-keys"] = scripted_apiserver.secret("paris-keys", keys_yaml(1, KEY_SHA), "41")
    async with watching(watch_settings(tmp_path), api) as (watch, delivered):
        await asyncio.wait_for(api.watching.wait(), 5)
        assert delivered.last() == keys_file(1, KEY_SHA)
        assert watch.connected
        assert sample(watch, "weather_proxy_keys_watch_connected") == 1
        first = api.watches()[0]
        assert first.path == "/api/v1/namespaces/weather/secrets"
        assert first.query["fieldSelector"] == "metadata.name=paris-keys"
        assert first.query["resourceVersion"] == "100"  # the list's
        assert first.query["allowWatchBookmarks"] == "true"
        assert first.authorization == "Bearer token-1"

        changed = scripted_apiserver.secret("paris-keys", keys_yaml(2), "42")
        await api.push({"type": "MODIFIED", "object": changed})
        await eventually(lambda: delivered.last() == keys_file(2))
        await api.push(
            {"type": "BOOKMARK", "object": {"kind": "Secret", "metadata": {"resourceVersion": "50"}}}
        )
        await api.push(
            {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": "The resourceVersion for the provided watch is too old.",
                    "reason": "Expired",
                    "code": 410,
                },
            }
        )
        await eventually(lambda: len(api.lists()) == 2)  # listed again, not backed off
        await eventually(lambda: len(api.watches()) == 2)
        api.answers.append((410, {"kind": "Status", "code": 410, "message": "too old resource version"}))
        bookmark = {"kind": "Secret", "metadata": {"resourceVersion": "60"}}
        await api.push({"type": "BOOKMARK", "object": bookmark})
        api.end_watches()  # the server-side timeout: re-watched from 60, answered 410
        await eventually(lambda: len(api.lists()) == 3)
        await eventually(lambda: len(api.watches()) == 4)
        await eventually(lambda: api.watching.is_set())
        await api.push({"type": "DELETED", "object": changed})
        await eventually(lambda: delivered.items[-1] == ("paris-keys", None))
        assert sample(watch, "weather_proxy_keys_watch_errors_total", {"reason": "expired"}) == 2
        assert sample(watch, "weather_proxy_keys_watch_events_total", {"type": "modified"}) == 1
        assert sample(watch, "weather_proxy_keys_watch_events_total", {"type": "listed"}) == 3
        assert (sample(watch, "weather_proxy_keys_watch_last_event_timestamp_seconds") or 0) > 0
        assert watch.states["paris-keys"].resource_version == "42"


async def test_re_watches_from_the_last_resource_version_with_the_token_read_again(
    api: scripted_apiserver.ScriptedApiServer, tmp_path: pathlib.Path
) -> None:
    api.secrets["paris-keys"] = scripted_apiserver.secret("paris-keys", keys_yaml(1), "41")
    settings = watch_settings(tmp_path)
    async with watching(settings, api) as (watch, _delivered):
        await asyncio.wait_for(api.watching.wait(), 5)
        await api.push(
            {"type": "MODIFIED", "object": scripted_apiserver.secret("paris-keys", keys_yaml(2), "77")}
        )
        await eventually(lambda: watch.states["paris-keys"].resource_version == "77")
        rotate(pathlib.Path(settings.token_file), "token-2")  # as the kubelet does
        api.end_watches()  # the server-side timeout
        await eventually(lambda: len(api.watches()) == 2)
    again = api.watches()[1]
    assert again.query["resourceVersion"] == "77"
    assert again.authorization == "Bearer token-2"
    assert len(api.lists()) == 1  # no re-list after a clean end


async def test_bad_content_keeps_the_last_good_keys_and_is_reported(
    api: scripted_apiserver.ScriptedApiServer, tmp_path: pathlib.Path
) -> None:
    api.secrets["paris-keys"] = scripted_apiserver.secret("paris-keys", keys_yaml(1, KEY_SHA), "41")
    async with watching(watch_settings(tmp_path), api) as (watch, delivered):
        await asyncio.wait_for(api.watching.wait(), 5)
        bad = scripted_apiserver.secret("paris-keys", "keys: [{id: x, sha256: NOT-HEX}]\n", "42")
        await api.push({"type": "MODIFIED", "object": bad})
        await eventually(lambda: "sha256" in (watch.states["paris-keys"].content_error or ""))
        without_key = {**bad, "data": {}}
        await api.push({"type": "MODIFIED", "object": without_key})
        await eventually(lambda: "no such data key" in (watch.states["paris-keys"].content_error or ""))
        assert len(delivered.items) == 1  # only the good first version reached the ring
        assert sample(watch, "weather_proxy_config_reload_success", {"file": "keys-watch"}) == 0
        assert (
            sample(watch, "weather_proxy_config_reload_total", {"file": "keys-watch", "result": "failure"})
            == 2
        )
        assert "no such data key" in (watch.as_json()["secrets"][0]["contentError"] or "")
        assert watch.connected  # the watch itself is fine


async def test_several_secrets_are_watched_each_on_its_own_and_merged(
    api: scripted_apiserver.ScriptedApiServer, tmp_path: pathlib.Path
) -> None:
    api.secrets["shard-a"] = scripted_apiserver.secret("shard-a", keys_yaml(1, KEY_SHA), "41")
    api.secrets["shard-b"] = scripted_apiserver.secret("shard-b", keys_yaml(1), "42")
    ring = Ring()
    sources = ring.sources("shard-a", "shard-b")
    settings = watch_settings(tmp_path, secretNames=["shard-a", "shard-b"])
    watch = keywatch.KeyWatch(settings, api.url, sources.offer_watch, metrics_mod.Metrics())
    task = asyncio.get_running_loop().create_task(watch.run())
    try:
        await eventually(lambda: api.watching_count() == 2)
        assert watch.connected
        assert ring.shas() == [KEY_SHA]
        await api.push(
            {
                "type": "MODIFIED",
                "object": scripted_apiserver.secret("shard-b", keys_yaml(2, OTHER_SHA), "43"),
            }
        )
        await eventually(lambda: ring.shas() == [KEY_SHA, OTHER_SHA])
        assert watch.states["shard-a"].resource_version == "100"  # the list's: nothing happened to shard-a
        assert watch.states["shard-b"].resource_version == "43"
        assert {r.query["fieldSelector"] for r in api.watches()} == {
            "metadata.name=shard-a",
            "metadata.name=shard-b",
        }
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((401, {"kind": "Status", "code": 401, "message": "Unauthorized"}), "unauthorized"),
        ((403, {"kind": "Status", "code": 403, "message": 'secrets "paris-keys" is forbidden'}), "forbidden"),
        ((500, {"kind": "Status", "code": 500, "message": "etcd is sad"}), "http"),
    ],
)
async def test_a_refused_request_backs_off_and_retries(
    api: scripted_apiserver.ScriptedApiServer,
    tmp_path: pathlib.Path,
    answer: tuple[int, dict[str, Any]],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.secrets["paris-keys"] = scripted_apiserver.secret("paris-keys", keys_yaml(1), "41")
    api.answers += [answer, answer]
    async with watching(watch_settings(tmp_path), api) as (watch, delivered):
        # The refusals are counted (the state's error lasts only until the next retry succeeds,
        # which a loaded machine may reach before a poll sees it).
        await eventually(
            lambda: (sample(watch, "weather_proxy_keys_watch_errors_total", {"reason": reason}) or 0) >= 1
        )
        assert answer[1]["message"] in caplog.text
        await asyncio.wait_for(api.watching.wait(), 5)
        assert delivered.last() == keys_file(1)
        assert watch.connected
        assert watch.states["paris-keys"].error is None
        assert sample(watch, "weather_proxy_keys_watch_errors_total", {"reason": reason}) == 2


async def test_an_unreachable_api_server_or_missing_token_is_an_error_not_a_crash(
    tmp_path: pathlib.Path,
) -> None:
    settings = watch_settings(tmp_path, tokenFile=str(tmp_path / "absent"), namespace=None)
    delivered = Delivered()
    watch = keywatch.KeyWatch(
        settings, "http://127.0.0.1:9", delivered, metrics_mod.Metrics(), backoff_max=0.05
    )
    task = asyncio.get_running_loop().create_task(watch.run())
    await eventually(lambda: watch.states["paris-keys"].error is not None)
    assert "credentials" in (watch.states["paris-keys"].error or "")
    (tmp_path / "absent").write_text("t")
    (tmp_path / "namespace").write_text("weather\n")
    await eventually(lambda: "network" in (watch.states["paris-keys"].error or ""))
    assert watch.namespace == "weather"  # read from the token's sibling file
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert delivered.items == []


def test_the_api_server_address_comes_from_the_config_or_the_pod_environment(tmp_path: pathlib.Path) -> None:
    settings = watch_settings(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert keywatch.api_server_url(settings, env) == "https://10.96.0.1:443"
    assert (
        keywatch.api_server_url(settings, {**env, "KUBERNETES_SERVICE_HOST": "fd00::1"})
        == "https://[fd00::1]:443"
    )
    explicit = watch_settings(tmp_path, apiServer="https://127.0.0.1:6443")
    assert keywatch.api_server_url(explicit, {}) == "https://127.0.0.1:6443"
    with pytest.raises(config_mod.ConfigError, match=r"auth\.kubernetes\.apiServer"):
        keywatch.api_server_url(settings, {})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("secretNames", [], "at least 1"),
        ("secretNames", ["Not_A_Name"], "pattern"),
        ("apiServer", "ftp://x", "pattern"),
        ("key", "a/b", "pattern"),
        ("colour", "blue", "Extra inputs"),
    ],
)
def test_auth_kubernetes_is_validated(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_mod.KubernetesKeys.model_validate({"secretNames": ["paris-keys"], field: value})


# -- in the app ----------------------------------------------------------------------------------


async def test_the_app_serves_keys_from_the_watch_and_reports_it_in_readiness(
    openmeteo: om.OpenMeteoEmulator, api: scripted_apiserver.ScriptedApiServer, tmp_path: pathlib.Path
) -> None:
    keys_path = tmp_path / "keys.yaml"
    keys_path.write_text(keys_yaml(3))  # the mounted copy: without the key yet
    api.secrets["paris-keys"] = scripted_apiserver.secret("paris-keys", keys_yaml(4, KEY_SHA), "41")
    kubernetes = {**watch_settings(tmp_path).to_camel_dict(), "apiServer": api.url}
    cfg = build_config(
        openmeteo, auth={"required": True, "keysFile": str(keys_path), "kubernetes": kubernetes}
    )
    async with running(cfg) as (app, client):
        rt = app.state.runtime

        async def status() -> int:
            response = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
            return response.status_code

        await asyncio.wait_for(api.watching.wait(), 5)
        assert await status() == 200  # from the watch, before the kubelet would have projected it
        await api.push(
            {"type": "MODIFIED", "object": scripted_apiserver.secret("paris-keys", keys_yaml(5), "42")}
        )
        await eventually(lambda: len(rt.keyring) == 0)
        assert await status() == 403
        keys_path.write_text(keys_yaml(4, KEY_SHA))  # the file catches up with an older version
        await rt.parts.reloader.check_all()
        assert await status() == 403  # and changes nothing
        ready = (await client.get("/health/ready")).json()
        assert ready["status"] == "ok"
        watch = ready["checks"]["keys"]["watch"]
        assert watch["connected"] is True
        assert watch["namespace"] == "weather"
        assert watch["secrets"][0]["name"] == "paris-keys"
        assert watch["secrets"][0]["resourceVersion"] == "42"
        assert watch["secrets"][0]["keys"] == {"source": "watch", "revision": 5, "count": 0, "present": True}
        metrics = (await client.get("/metrics")).text
        assert "weather_proxy_keys_watch_connected 1.0" in metrics
        assert 'weather_proxy_keys_watch_events_total{type="modified"} 1.0' in metrics

    # Stopped: the watch is closed with the app.
    assert rt.parts.key_watch is not None
    assert not rt.parts.key_watch.connected


async def test_readiness_is_degraded_while_the_watch_is_down_and_the_file_still_applies(
    openmeteo: om.OpenMeteoEmulator, tmp_path: pathlib.Path
) -> None:
    keys_path = tmp_path / "keys.yaml"
    keys_path.write_text(keys_yaml(3))
    kubernetes = {**watch_settings(tmp_path).to_camel_dict(), "apiServer": "http://127.0.0.1:9"}
    cfg = build_config(
        openmeteo, auth={"required": True, "keysFile": str(keys_path), "kubernetes": kubernetes}
    )
    async with running(cfg) as (app, client):
        rt = app.state.runtime
        await eventually(lambda: rt.parts.key_watch.states["paris-keys"].error is not None)
        ready = (await client.get("/health/ready")).json()
        keys_path.write_text(keys_yaml(4, KEY_SHA))
        await rt.parts.reloader.check_all()
        allowed = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
    assert ready["status"] == "degraded"
    assert ready["checks"]["keys"]["ok"] is False
    assert ready["checks"]["keys"]["watch"]["connected"] is False
    assert allowed.status_code == 200


# -- expiry and the end of a rotation's grace need no change of keys.yaml --------------------------


def test_expiry_and_the_end_of_a_rotation_grace_are_refused_at_request_time() -> None:
    """The proxy compares expiresAt with its clock on every request: no reload is needed.

    The operator writes a rotated key's old hash as a ``#previous`` entry whose expiresAt is
    the end of the grace period (weather_operator.keys.KeyRecord.entries), so the end of the
    grace is an expiry too.
    """
    from weather_operator import keys as operator_keys

    now = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
    record = operator_keys.KeyRecord(
        id="weather/team-a",
        proxy="paris",
        sha256=keys.hash_key("new"),
        expires_at=now + datetime.timedelta(hours=1),
        previous_sha256=keys.hash_key("old"),
        previous_expires_at=now + datetime.timedelta(seconds=30),
    )
    ring = keys.KeyRing(operator_keys.keys_file([record], now))
    limits = config_mod.RateLimit()

    def status(key: str, at: datetime.datetime) -> int:
        try:
            ring.authenticate(key, required=True, limits=limits, client_address="x", now=at.timestamp())
        except keys.Refused as refused:
            return deps.refusal_problem(refused).status
        return 200

    just_before, just_after = datetime.timedelta(milliseconds=-1), datetime.timedelta(0)
    grace_end, expiry = now + datetime.timedelta(seconds=30), now + datetime.timedelta(hours=1)
    assert status("old", grace_end + just_before) == 200
    assert status("old", grace_end + just_after) == 403
    assert status("new", expiry + just_before) == 200
    assert status("new", expiry + just_after) == 403
