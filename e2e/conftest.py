"""Fixtures of the kind e2e suite: images, a kind cluster, the operator, the emulator, a fleet.

Run with ``pytest e2e --with-e2e`` (``make e2e``). Without ``--with-e2e`` every test is
skipped; without a reachable container engine every test is skipped with one line
saying so. When a test fails, the operator's logs, the Events and the custom
resources are printed (pytest shows them under the failing test).
"""

from __future__ import annotations

import base64
import contextlib
import pathlib
import shutil
import subprocess
from collections.abc import Generator, Iterator
from typing import Any

import pytest
import yaml
from pytest_kind import KindCluster  # type: ignore[import-untyped]

from e2e import cluster as kube
from tests import conftest as suite_conftest

REPO = pathlib.Path(__file__).resolve().parents[1]
OPERATOR_IMAGE = "ghcr.io/weather-proxy/operator:0.1.0"
PROXY_IMAGE = "ghcr.io/weather-proxy/proxy:0.1.0"
EMULATOR_IMAGE = "weather-proxy/openmeteo-emulator:e2e"
NAMESPACE = "weather"
READY_TIMEOUT = 300.0
FAILED_KEY = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    # `pytest e2e` does not load tests/conftest.py: define its --with-e2e here too.
    # With `pytest tests e2e`, tests/conftest.py has already added it: argparse raises ValueError.
    with contextlib.suppress(ValueError):
        suite_conftest.pytest_addoption(parser)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suite_conftest.pytest_collection_modifyitems(config, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    item.stash.setdefault(FAILED_KEY, False)
    if report.failed:
        item.stash[FAILED_KEY] = True
    return report


@pytest.fixture(scope="session")
def kind(request: pytest.FixtureRequest) -> Iterator[KindCluster]:
    """A kind cluster with the three images loaded; skipped where no container engine runs."""
    problem = kube.container_engine_problem()
    if problem:
        pytest.skip(problem)
    kind_bin = request.config.getoption("kind_bin") or shutil.which("kind")
    kubectl_bin = request.config.getoption("kind_kubectl_bin") or shutil.which("kubectl")
    cluster = KindCluster(
        request.config.getoption("cluster_name"),
        image=request.config.getoption("kind_image"),
        kind_path=pathlib.Path(kind_bin) if kind_bin else None,
        kubectl_path=pathlib.Path(kubectl_bin) if kubectl_bin else None,
    )
    cluster.create()
    kube.docker_build(str(REPO / "Dockerfile.operator"), OPERATOR_IMAGE, str(REPO))
    kube.docker_build(str(REPO / "Dockerfile.proxy"), PROXY_IMAGE, str(REPO))
    kube.docker_build(str(REPO / "e2e" / "Dockerfile.emulator"), EMULATOR_IMAGE, str(REPO))
    for image in (OPERATOR_IMAGE, PROXY_IMAGE, EMULATOR_IMAGE):
        cluster.load_docker_image(image)
    yield cluster
    if not request.config.getoption("keep_cluster"):
        cluster.delete()


@pytest.fixture(scope="session")
def operator(kind: KindCluster) -> KindCluster:
    """manifests/base installed and the operator rolled out."""
    # CRDs first: the base also holds objects of these kinds (the ClusterKopfPeering).
    kind.kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
    for crd in ("kopf.dev_clusterkopfpeerings.yaml", "kopf.dev_kopfpeerings.yaml"):
        kind.kubectl("apply", "--server-side", "-f", str(REPO / "manifests" / "base" / crd))
    kind.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    kind.kubectl("apply", "--server-side", "-k", str(REPO / "manifests" / "base"))
    kind.kubectl("-n", "weather-system", "rollout", "status", "deployment/weather-operator", "--timeout=300s")
    kind.kubectl("apply", "-k", str(REPO / "manifests" / "samples" / "namespace"))
    return kind


@pytest.fixture(scope="session")
def emulator(operator: KindCluster) -> dict[str, str]:
    """The Open-Meteo emulator in the cluster; returns the upstream URLs to configure."""
    manifest = yaml.safe_load_all((REPO / "e2e" / "manifests" / "openmeteo-emulator.yaml").read_text())
    kube.apply(operator, [doc for doc in manifest if doc])
    operator.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/openmeteo", "--timeout=180s")
    base = f"http://openmeteo.{NAMESPACE}.svc:8080"
    return {"geocodingUrl": f"{base}/v1/search", "forecastUrl": f"{base}/v1/forecast"}


def dev_fleet(name: str, upstream: dict[str, str]) -> dict[str, Any]:
    """The dev overlay's WeatherProxy, renamed and pointed at the in-cluster emulator."""
    path = REPO / "manifests" / "samples" / "dev" / "weatherproxy.dev_v1alpha1_weatherproxy-dev.yaml"
    proxy: dict[str, Any] = yaml.safe_load(path.read_text())
    proxy["metadata"] = {"name": name, "namespace": NAMESPACE}
    proxy["spec"]["image"] = PROXY_IMAGE
    proxy["spec"]["upstream"] = {**proxy["spec"].get("upstream", {}), **upstream}
    return proxy


def wait_ready(cluster: KindCluster, resource: str, timeout: float = READY_TIMEOUT) -> None:
    cluster.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", resource, f"--timeout={int(timeout)}s")


@pytest.fixture(scope="session")
def fleet(operator: KindCluster, emulator: dict[str, str]) -> str:
    """A Ready dev WeatherProxy named ``paris``; returns its name."""
    kube.apply(operator, dev_fleet("paris", emulator))
    wait_ready(operator, "weatherproxy/paris")
    return "paris"


def create_key(cluster: KindCluster, proxy: str, name: str) -> str:
    """Apply an ApiKey for ``proxy``, wait for Ready, return its plaintext from its Secret."""
    kube.apply(
        cluster,
        {
            "apiVersion": "weatherproxy.dev/v1alpha1",
            "kind": "ApiKey",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"proxyRef": {"name": proxy}, "description": "e2e"},
        },
    )
    wait_ready(cluster, f"apikey/{name}")
    secret_name = kube.kubectl_json(cluster, "-n", NAMESPACE, "get", f"apikey/{name}")["status"]["secretName"]
    secret = kube.kubectl_json(cluster, "-n", NAMESPACE, "get", f"secret/{secret_name}")
    return base64.b64decode(secret["data"]["apiKey"]).decode()


@pytest.fixture(scope="session")
def proxy_port(fleet: str, operator: KindCluster) -> Iterator[int]:
    """A local port forwarded to the fleet's Service (its name from status.endpoint)."""
    status = kube.kubectl_json(operator, "-n", NAMESPACE, "get", f"weatherproxy/{fleet}")["status"]
    service = status["endpoint"].split("//", 1)[1].split(".", 1)[0]
    with operator.port_forward(f"service/{service}", 8080, "-n", NAMESPACE) as port:
        yield port


@pytest.fixture(autouse=True)
def dump_cluster_state_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed e2e test: operator logs, Events and the custom resources, on stdout."""
    yield
    if not request.node.stash.get(FAILED_KEY, False) or "kind" not in request.fixturenames:
        return
    cluster: KindCluster = request.getfixturevalue("kind")
    for title, args in (
        ("operator logs", ("-n", "weather-system", "logs", "deployment/weather-operator", "--tail=400")),
        ("events", ("get", "events", "-A", "--sort-by=.lastTimestamp")),
        ("custom resources", ("get", "weatherproxies,apikeys", "-A", "-o", "yaml")),
        ("fleet objects", ("-n", NAMESPACE, "get", "all,configmaps,secrets", "-o", "wide")),
    ):
        try:
            output = cluster.kubectl(*args)
        except subprocess.CalledProcessError as exc:
            output = f"(kubectl failed: {exc})"
        print(f"\n===== {title} =====\n{output}")
