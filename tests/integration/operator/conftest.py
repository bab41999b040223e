"""Fixtures of the operator integration suite: a real kube-apiserver, the CRDs, the operator.

* ``crds``: the generated CRDs applied once per session (server-side) and Established.
* ``operator``: the operator as a subprocess for the module (short drift/recheck
  intervals); its log is kept in a file and printed when a test fails.
* ``cluster``: a fresh namespace per test (deleted afterwards, without waiting).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster import controlplane
from hack import kubectl as kubectl_
from hack import operator_process
from tests.integration.operator import fleet

# Short intervals so drift repair and monitoring re-checks happen within a test's poll bound.
OPERATOR_SETTINGS = {
    "WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS": "3",
    "WEATHER_OPERATOR_DRIFT_IDLE_SECONDS": "1",
    "WEATHER_OPERATOR_MONITORING_RECHECK_SECONDS": "2",
    "WEATHER_OPERATOR_KEY_RECHECK_SECONDS": "2",
    "WEATHER_OPERATOR_RETRY_DELAY_SECONDS": "1",
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report gets the operator log and the namespace's Events and objects."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.when == "call" and report.failed and "cluster" in funcargs:
        report.sections.append(("operator diagnostics", _diagnostics(funcargs)))
    return report


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> kubectl_.Kubectl:
    return kubectl_.Kubectl(kubeconfig)


@pytest.fixture(scope="session")
def pods_can_run(kube_controlplane: controlplane.KubeControlPlane, kubectl: kubectl_.Kubectl) -> bool:
    """Whether kube-scheduler + kwok run fake nodes (pods then become Running and Ready)."""
    cp = kube_controlplane.controlplane
    if cp is not None:
        kwok = bool(cp.kwok)
    else:
        state = kube_controlplane.kubeconfig.parent / "state.json"
        kwok = state.is_file() and bool(json.loads(state.read_text()).get("kwok"))
    if kwok:
        kubectl.apply(controlplane.fake_node_manifest())
    elif os.environ.get("CI") == "true":
        # CI builds kwok with the control plane: readiness must be tested for real there.
        pytest.fail("kube-scheduler + kwok are not running: pods cannot become Ready (see .controlplane/)")
    return kwok


@pytest.fixture(scope="session")
def crds(kubectl: kubectl_.Kubectl) -> list[str]:
    """The project's CRDs, installed server-side and Established."""
    return kubectl.install_crds()


@pytest.fixture(scope="module")
def operator(
    kubeconfig: Path, crds: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[operator_process.OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = operator_process.OperatorProcess(kubeconfig, log, settings=OPERATOR_SETTINGS).start()
    try:
        yield proc
    finally:
        proc.stop()


def _namespace_name(node_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, kubectl: kubectl_.Kubectl, crds: list[str]
) -> Iterator[fleet.Cluster]:
    """A fresh namespace; on failure the operator log and the namespace's Events are printed."""
    name = _namespace_name(request.node.name)
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield fleet.Cluster(kubectl, name)
    if os.environ.get("WPF_KEEP_NAMESPACES") != "1":
        kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def _diagnostics(funcargs: dict[str, Any]) -> str:
    cluster: fleet.Cluster = funcargs["cluster"]
    kubectl, namespace = cluster.kubectl, cluster.namespace
    sections = []
    proc = funcargs.get("operator")
    if isinstance(proc, operator_process.OperatorProcess):
        sections.append(f"---- operator log ({proc.log_path}) ----\n{proc.log_tail(120)}")
    sections.append(
        f"---- events in {namespace} ----\n"
        + kubectl.run("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
    )
    sections.append(
        f"---- objects in {namespace} ----\n"
        + kubectl.run("get", "all,cm,secret,wp,wpk,hpa,pdb,netpol,ingress", "-n", namespace, check=False)
    )
    return "\n".join(sections)
