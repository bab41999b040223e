"""Active/passive HA through Kopf peering: two operator replicas, one works, the other takes over.

Runs ``python -m weather_operator`` (the ``weather-operator`` console script's module) twice
without ``--standalone``, as the operator Deployment does, with the ClusterKopfPeering from
manifests/base. The higher-priority replica handles every fleet; the standby pauses, and
resumes once the active replica's peering record expires after it was SIGKILLed.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack import kubectl as kubectl_
from hack import operator_process
from tests.integration.operator import fleet
from weather_operator.render import names

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.slow]

BASE = kubectl_.REPO_ROOT / "manifests" / "base"
LIFETIME_SECONDS = 5
RESUMING = "Resuming operations after the pause"
PAUSING = "Pausing operations in favour of"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def peering(kubectl: kubectl_.Kubectl) -> None:
    """Kopf's peering CRDs and the ClusterKopfPeering object, exactly as manifests/base ships them."""
    for crd in sorted(BASE.glob("kopf.dev_*kopfpeerings.yaml")):
        kubectl.install_crds(crd)
    kubectl.run("apply", "--server-side", "-f", str(BASE / "kopf.dev_v1_clusterkopfpeering.yaml"))


def _replica(kubeconfig: Path, log: Path, priority: int) -> operator_process.OperatorProcess:
    command = [
        sys.executable,
        "-m",
        "weather_operator",
        f"--liveness=http://127.0.0.1:{_free_port()}/healthz",
    ]
    settings = {
        "WEATHER_OPERATOR_PEERING_PRIORITY": str(priority),
        "WEATHER_OPERATOR_PEERING_LIFETIME_SECONDS": str(LIFETIME_SECONDS),
        "WEATHER_OPERATOR_LOG_FORMAT": "plain",
    }
    return operator_process.OperatorProcess(kubeconfig, log, settings=settings, command=command)


@pytest.fixture
def replicas(
    kubeconfig: Path, crds: list[str], peering: None, tmp_path: Path
) -> Iterator[tuple[operator_process.OperatorProcess, operator_process.OperatorProcess]]:
    active = _replica(kubeconfig, tmp_path / "active.log", priority=200)
    standby = _replica(kubeconfig, tmp_path / "standby.log", priority=100)
    try:
        yield active.start(), standby.start()
    finally:
        active.stop()
        standby.stop()


def _log(proc: operator_process.OperatorProcess) -> str:
    return proc.log_path.read_text(errors="replace")


def _paused(proc: operator_process.OperatorProcess) -> bool:
    """Kopf starts a replica paused; it logs each later switch. Paused = no resume since the last pause."""
    log = _log(proc)
    return log.rfind(RESUMING) < log.rfind(PAUSING) or RESUMING not in log


def _wait(proc: operator_process.OperatorProcess, what: str, probe: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail(f"{proc.log_path.name}: timed out waiting for {what}:\n{proc.log_tail(40)}")
        time.sleep(0.2)


def test_the_standby_pauses_then_takes_over_when_the_active_replica_dies(
    cluster: fleet.Cluster,
    replicas: tuple[operator_process.OperatorProcess, operator_process.OperatorProcess],
) -> None:
    active, standby = replicas
    # Both may resume for a moment while they start at once; then the lower priority pauses.
    _wait(active, "the active replica to resume", lambda: not _paused(active))
    _wait(standby, "the standby to pause", lambda: _paused(standby))

    cluster.apply(fleet.weather_proxy("first", cluster.namespace, environment="dev"))
    cluster.wait_for("deployment", names.deployment_name("first"))
    assert "[" + cluster.namespace + "/first]" in _log(active)
    assert "[" + cluster.namespace + "/first]" not in _log(standby), "a paused replica must not reconcile"

    active.kill()
    assert _paused(standby)
    _wait(standby, "the standby to take over", lambda: not _paused(standby), timeout=LIFETIME_SECONDS * 6)
    cluster.apply(fleet.weather_proxy("second", cluster.namespace, environment="dev"))
    cluster.wait_for("deployment", names.deployment_name("second"))
    assert "[" + cluster.namespace + "/second]" in _log(standby)
