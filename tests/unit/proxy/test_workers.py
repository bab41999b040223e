"""``workers``: its default from the container's CPU (cgroup v1 and v2 files, the request), its overrides."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from weather_proxy import __main__ as cli
from weather_proxy import config as config_mod
from weather_proxy import cpus, settings


def _cgroup_v1(root: pathlib.Path, quota: int, period: int = 100_000) -> pathlib.Path:
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


def _cgroup_v2(root: pathlib.Path, text: str) -> pathlib.Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text + "\n")
    return root


@pytest.fixture
def many_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 16)


@pytest.mark.usefixtures("many_cpus")
@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [(200_000, 100_000, 2), (150_000, 100_000, 2), (50_000, 100_000, 1), (400_000, 100_000, 4)],
)
def test_a_cgroup_v1_quota_gives_one_worker_per_cpu_rounded_up(
    tmp_path: pathlib.Path, quota: int, period: int, expected: int
) -> None:
    root = _cgroup_v1(tmp_path, quota, period)
    assert cpus.cgroup_limit(root) == quota / period
    assert cpus.default_workers(None, root) == expected


@pytest.mark.usefixtures("many_cpus")
def test_a_cgroup_v2_cpu_max_gives_the_limit_and_max_means_none(tmp_path: pathlib.Path) -> None:
    assert cpus.default_workers(None, _cgroup_v2(tmp_path / "limited", "300000 100000")) == 3
    unlimited = _cgroup_v2(tmp_path / "unlimited", "max 100000")
    assert cpus.cgroup_limit(unlimited) is None
    assert cpus.default_workers(None, unlimited) == 1


@pytest.mark.usefixtures("many_cpus")
def test_without_a_limit_the_request_decides_else_one(tmp_path: pathlib.Path) -> None:
    unlimited = _cgroup_v1(tmp_path, -1)
    assert cpus.cgroup_limit(unlimited) is None
    assert cpus.default_workers(None, unlimited) == 1
    assert cpus.default_workers(2500, unlimited) == 3
    assert cpus.default_workers(250, unlimited) == 1
    assert cpus.default_workers(None, tmp_path / "no-cgroup-files") == 1
    # A limit wins over the request.
    assert cpus.default_workers(4000, _cgroup_v1(tmp_path / "l", 100_000)) == 1


def test_the_usable_cpus_bound_the_default(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2)
    assert cpus.default_workers(None, _cgroup_v1(tmp_path, 800_000)) == 2


def test_a_bad_request_env_names_the_variable(tmp_path: pathlib.Path) -> None:
    with pytest.raises(config_mod.ConfigError, match=f"^{settings.ENV_CPU_REQUEST}: must be a whole number"):
        settings.ProxySettings.from_env({settings.ENV_CPU_REQUEST: "2 cores"})


def test_this_machine_gives_at_least_one() -> None:
    assert 1 <= cpus.default_workers() <= cpus.usable_cpus()


def _args(workers: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(workers=workers)


def test_flag_then_env_then_config_then_cpu() -> None:
    cfg = config_mod.ProxyConfig.model_validate({"workers": 3})
    four = settings.ProxySettings.from_env({settings.ENV_WORKERS: "4"})
    assert cli.workers(_args(5), cfg, four) == 5
    assert cli.workers(_args(), cfg, four) == 4
    assert cli.workers(_args(), cfg, settings.ProxySettings.from_env({})) == 3
    assert (
        cli.workers(_args(), config_mod.ProxyConfig(), settings.ProxySettings.from_env({}))
        == cpus.default_workers()
    )


def test_bad_worker_counts_are_refused_naming_where() -> None:
    with pytest.raises(config_mod.ConfigError, match="--workers"):
        cli.workers(_args(0), config_mod.ProxyConfig(), settings.ProxySettings.from_env({}))
    for bad in ("two", "0", "1_000", " +3"):
        with pytest.raises(
            config_mod.ConfigError, match=f"^{settings.ENV_WORKERS}: must be a whole number >= 1"
        ):
            settings.ProxySettings.from_env({settings.ENV_WORKERS: bad})


def test_config_workers_is_validated_and_left_out_when_default() -> None:
    with pytest.raises(ValueError, match="workers"):
        config_mod.ProxyConfig.model_validate({"workers": 0})
    assert "workers" not in config_mod.ProxyConfig().to_camel_dict()
    assert config_mod.ProxyConfig.model_validate({"workers": 2}).to_camel_dict()["workers"] == 2


def test_server_is_uvicorn_unless_granian_is_asked_for() -> None:
    assert config_mod.ProxyConfig().server is config_mod.Server.UVICORN
    assert "server" not in config_mod.ProxyConfig().to_camel_dict()  # files rendered before stay the same
    chosen = config_mod.ProxyConfig.model_validate({"server": "granian"})
    assert chosen.to_camel_dict()["server"] == "granian"
    with pytest.raises(ValueError, match="server"):
        config_mod.ProxyConfig.model_validate({"server": "gunicorn"})
