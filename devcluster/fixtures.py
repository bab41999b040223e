"""Pytest fixtures of the development tooling: the session's control plane and the emulator.

``tests/conftest.py`` imports them; the control plane is started once per session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.controlplane import (
    ENV_EXISTING_KUBECONFIG,
    ENV_FAKE_NODES,
    ENV_LOG_DIR,
    BinariesUnavailable,
    ControlPlane,
    ControlPlaneError,
    ensure_binaries,
    read_state,
    truthy,
)
from devcluster.openmeteo import OpenMeteoEmulator


@dataclasses.dataclass(frozen=True)
class KubeControlPlane:
    """What the ``kube_controlplane`` fixture yields."""

    kubeconfig: Path
    server: str
    reused: bool
    kwok: bool = False  # kube-scheduler + kwok run: pods on fake nodes become Ready
    controlplane: ControlPlane | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}


def _server_from_kubeconfig(path: Path) -> str:
    import yaml  # project dependency

    cfg = yaml.safe_load(path.read_text())
    ctx_name = cfg.get("current-context")
    ctx = next((c["context"] for c in cfg.get("contexts", []) if c["name"] == ctx_name), None)
    cluster_name = ctx["cluster"] if ctx else cfg["clusters"][0]["name"]
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == cluster_name)
    return str(cluster["server"])


@contextlib.contextmanager
def _capture_disabled(config: Any) -> Iterator[None]:
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


_prebuild_error: ControlPlaneError | None = None
_prebuilt_bin_dir: Path | None = None


def pytest_collection_finish(session: Any) -> None:
    """Build the binaries (if needed) once collection is done, before any test runs.

    A cold build takes minutes; done here it is not charged to the first test's
    pytest-timeout. Only when a collected test uses ``kube_controlplane`` and no
    existing cluster is given. Errors are reported by the fixture.
    """
    global _prebuild_error, _prebuilt_bin_dir
    if os.environ.get(ENV_EXISTING_KUBECONFIG) or session.config.option.collectonly:
        return
    if not any("kube_controlplane" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    try:
        with _capture_disabled(session.config):
            _prebuilt_bin_dir = ensure_binaries()
    except ControlPlaneError as exc:
        _prebuild_error = exc


@pytest.fixture(scope="session")
def kube_controlplane(request: pytest.FixtureRequest) -> Iterator[KubeControlPlane]:
    """A running control plane for the whole session.

    Reuses the cluster of ``$WPF_KUBECONFIG`` if set; otherwise builds (if
    needed) and starts a private one in a temp dir, stopped at session end (its logs
    copied to ``$WPF_CONTROLPLANE_LOG_DIR`` first, when set).
    """
    existing = os.environ.get(ENV_EXISTING_KUBECONFIG)
    if existing:
        path = Path(existing).expanduser().resolve()
        if not path.is_file():
            pytest.fail(f"{ENV_EXISTING_KUBECONFIG}={existing}: no such kubeconfig", pytrace=False)
        # A cluster from `python -m devcluster up` has state.json next to it.
        _, state = read_state(path.parent)
        kwok = bool(state.get("kwok")) and Path(state.get("kubeconfig", "")) == path
        yield KubeControlPlane(kubeconfig=path, server=_server_from_kubeconfig(path), reused=True, kwok=kwok)
        return
    try:
        if _prebuild_error is not None:
            raise _prebuild_error
        bin_dir = _prebuilt_bin_dir
        if bin_dir is None:
            with _capture_disabled(request.config):
                bin_dir = ensure_binaries()
    except BinariesUnavailable as exc:
        if truthy(os.environ.get("CI")):
            pytest.fail(f"control plane unavailable in CI: {exc}", pytrace=False)
        pytest.skip(f"control plane unavailable: {exc}")
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)
    log_dir = os.environ.get(ENV_LOG_DIR)
    cp = ControlPlane(
        bin_dir=bin_dir,
        fake_nodes=int(os.environ.get(ENV_FAKE_NODES, "0") or 0),
        log_copy_dir=Path(log_dir).resolve() if log_dir else None,
    )
    try:
        cp.start()
    except ControlPlaneError as exc:
        pytest.fail(f"control plane failed to start: {exc}", pytrace=False)
    try:
        yield KubeControlPlane(
            kubeconfig=cp.kubeconfig, server=cp.server, reused=False, kwok=bool(cp.kwok), controlplane=cp
        )
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubeconfig(kube_controlplane: KubeControlPlane) -> Path:
    """Path of an admin kubeconfig for the session's control plane."""
    return kube_controlplane.kubeconfig


@pytest.fixture
def openmeteo() -> Iterator[OpenMeteoEmulator]:
    """A fresh, running Open-Meteo emulator (geocoding and forecast on two loopback ports)."""
    emulator = OpenMeteoEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()
