"""Config and keys files reload on change (incl. Kubernetes' ..data symlink swap), bad files kept out."""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Iterator

import pytest
import yaml

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import KEY, KEY_SHA, build_config, running
from weather_proxy import reload
from weather_proxy.observability import metrics as metrics_mod


def k8s_mount(root: pathlib.Path, name: str, text: str, version: int) -> pathlib.Path:
    """Write ``text`` the way the kubelet does: a timestamped dir, ``..data`` symlink, file symlink."""
    target = root / f"..v{version}"
    target.mkdir()
    (target / name).write_text(text)
    tmp = root / "..data_tmp"
    tmp.symlink_to(target.name)
    os.replace(tmp, root / "..data")
    link = root / name
    if not link.is_symlink():
        link.symlink_to(f"..data/{name}")
    return link


async def test_a_file_is_read_once_it_has_stopped_changing(tmp_path: pathlib.Path) -> None:
    # A file rewritten in place may be half-written: it is left for a later check until it is
    # ``settle`` seconds old, on the reload's clock (the file's mtime is set on the same clock).
    path = tmp_path / "keys.yaml"
    path.write_text("one")
    written = 1_800_000_000
    os.utime(path, ns=(written * 10**9, written * 10**9))
    now = [float(written)]
    seen: list[str] = []
    watched = reload.WatchedFile(
        "keys", path, lambda p: p.read_text(), seen.append, metrics_mod.Metrics(), clock=lambda: now[0]
    )
    now[0] += reload.SETTLE_SECONDS - 0.01
    assert await watched.check(settle=reload.SETTLE_SECONDS) is None  # may still be being written
    assert seen == []
    now[0] += 0.01
    assert await watched.check(settle=reload.SETTLE_SECONDS) is True
    assert seen == ["one"]
    assert watched.state.last_reload == "2027-01-15T08:00:00+00:00"  # stamped on the same clock


async def test_symlink_swap_and_bad_file(tmp_path: pathlib.Path) -> None:
    seen: list[str] = []
    metrics = metrics_mod.Metrics()
    path = k8s_mount(tmp_path, "value.txt", "one", 1)

    def load(p: pathlib.Path) -> str:
        text = p.read_text()
        if text == "bad":
            raise ValueError("bad: not allowed")
        return text

    watched = reload.WatchedFile("config", path, load, seen.append, metrics)
    watched.mark_loaded()
    assert await watched.check() is None  # unchanged
    k8s_mount(tmp_path, "value.txt", "two", 2)
    assert await watched.check() is True
    k8s_mount(tmp_path, "value.txt", "bad", 3)
    assert await watched.check() is False
    assert watched.state.ok is False
    assert "not allowed" in (watched.state.error or "")
    assert await watched.check() is None  # the same bad version is not retried in a loop
    k8s_mount(tmp_path, "value.txt", "four", 4)
    reloader = reload.Reloader()
    reloader.add(watched)
    await reloader.check_all()
    assert seen == ["two", "four"]
    assert watched.state.as_json()["ok"] is True
    assert metrics.config_reloads.labels("config", "failure")._value.get() == 1
    assert metrics.config_reloads.labels("config", "success")._value.get() == 2
    assert reload.fingerprint(tmp_path / "missing") is None


@pytest.fixture
def restore_log_levels() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("weather_proxy")
    levels = (root.level, ours.level)
    yield
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


@pytest.mark.usefixtures("restore_log_levels")
async def test_app_reloads_keys_and_config(openmeteo: om.OpenMeteoEmulator, tmp_path: pathlib.Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    keys_path = k8s_mount(keys_dir, "keys.yaml", "keys: []\n", 1)
    cfg = build_config(openmeteo, auth={"required": True, "keysFile": str(keys_path)})
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    cfg_path = k8s_mount(cfg_dir, "config.yaml", yaml.safe_dump(cfg.to_camel_dict()), 1)
    async with running(cfg, config_path=cfg_path) as (app, client):
        rt = app.state.runtime
        before = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
        k8s_mount(keys_dir, "keys.yaml", f"keys:\n  - id: ns/new\n    sha256: {KEY_SHA}\n", 2)
        changed = cfg.to_camel_dict()
        changed["cache"]["ttlSeconds"] = 42
        changed["listen"]["port"] = 9999  # restart-only: kept at its running value
        changed["observability"]["logLevel"] = "debug"
        k8s_mount(cfg_dir, "config.yaml", yaml.safe_dump(changed), 2)
        await rt.parts.reloader.check_all()
        after = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
        k8s_mount(keys_dir, "keys.yaml", "keys: [{id: x, sha256: NOT-HEX}]\n", 3)
        k8s_mount(cfg_dir, "config.yaml", "cache: {ttlSeconds: -1}\n", 3)
        await rt.parts.reloader.check_all()
        still = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
        ready = (await client.get("/health/ready")).json()
        metrics = (await client.get("/metrics")).text
    assert before.status_code == 403
    assert after.status_code == 200
    assert rt.config.cache.ttl_seconds == 42
    assert rt.config.listen.port == 8080
    assert still.status_code == 200  # last good keys kept
    assert ready["status"] == "degraded"
    assert ready["checks"]["keys"]["ok"] is False
    assert "sha256" in ready["checks"]["keys"]["error"]
    assert ready["checks"]["config"]["ok"] is False
    assert 'weather_proxy_config_reload_success{file="keys"} 0.0' in metrics
    assert 'weather_proxy_config_reload_total{file="config",result="success"} 1.0' in metrics


async def test_not_ready_when_auth_required_and_no_keys_file(
    openmeteo: om.OpenMeteoEmulator, tmp_path: pathlib.Path
) -> None:
    cfg = build_config(openmeteo, auth={"required": True, "keysFile": str(tmp_path / "absent.yaml")})
    async with running(cfg) as (_app, client):
        ready = await client.get("/health/ready")
        live = await client.get("/health/live")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert live.status_code == 200
