"""Fixtures of the e2e suite: a cluster whose pods really run, the install, a fleet.

``pytest e2e --with-e2e`` (``make e2e``). The cluster is kind where a container engine
runs, and otherwise the real single-node cluster of :mod:`devcluster.node` (containerd,
kubelet, kube-proxy, kube-router, CoreDNS, metrics-server, a log store; images built on this
machine by :mod:`devcluster.images`). On a machine of this project's kind the suite never skips:
under ``CI=true`` a cluster that cannot start fails the run.

The install is the README's: the CRDs, then ``kubectl apply --server-side -k`` of an
overlay (``e2e/overlay``: the dev overlay with the local images, the in-cluster Open-Meteo
emulator as upstream, Redis persistence on). After a failed test the operator's and the
proxies' logs, the Events and ``kubectl describe`` of the fleet are printed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import subprocess
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from e2e import cluster as k
from weather_proxy import contract

REPO = pathlib.Path(__file__).resolve().parents[1]
NAMESPACE = "weather"
OPERATOR_NAMESPACE = "weather-system"
FLEET = "paris"
READY_TIMEOUT = 300.0
FAILED_KEY = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--with-e2e",
        action="store_true",
        default=False,
        help="run the kind-based end-to-end tests (need a container engine)",
    )
    # pytest-kind (a dev dependency) defines --keep-cluster too; add it only where it does not.
    try:
        parser.addoption("--keep-cluster", action="store_true", help="leave the e2e cluster running")
    except ValueError:
        return


# The README's quick start first, on a cluster nothing was installed on; then the session's one
# fleet goes through these in turn: serve, then keys, then disruptions.
MODULE_ORDER = ("test_quick_start", "test_fleet", "test_keys", "test_disruption")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--with-e2e"):
        skip = pytest.mark.skip(reason="e2e tests are opt-in: pass --with-e2e (or run `make e2e`)")
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)

    # In a run of tests/ and e2e/ together the e2e tests come last: they are the slowest and
    # depend on everything else being right.
    def rank(item: pytest.Item) -> int:
        if "e2e" not in item.keywords:
            return -1
        module = item.path.stem
        return MODULE_ORDER.index(module) if module in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=rank)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The timings and load figures of the run, whatever pytest captured."""
    if k.MEASURED:
        terminalreporter.write_sep("=", "e2e measurements")
        for line in k.MEASURED:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    item.stash.setdefault(FAILED_KEY, False)
    if report.failed:
        item.stash[FAILED_KEY] = True
    return report


def _real_node(request: pytest.FixtureRequest) -> Iterator[k.Kube]:
    from devcluster import node

    problems = node.preflight()
    if problems:
        reason = "e2e: this machine can run neither kind (no container engine) nor a real node: " + "; ".join(
            problems
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    state_dir = REPO / ".e2e-cluster"
    if state_dir.exists():
        from devcluster.cli import down

        down(state_dir)
    cluster = node.Cluster(state_dir=state_dir)
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    try:
        yield k.Kube(
            cluster.kubeconfig, host_reaches_services=True, name="real node", log_store=node.LOG_STORE_URL
        )
    finally:
        if not request.config.getoption("--keep-cluster", default=False):
            cluster.stop()
        else:
            print(f"\nkept the e2e cluster: export KUBECONFIG={cluster.kubeconfig}")


def _kind(request: pytest.FixtureRequest) -> Iterator[k.Kube]:
    from pytest_kind import KindCluster  # type: ignore[import-untyped]

    from devcluster import images

    cluster = KindCluster("weather-proxy-e2e")
    cluster.create()
    try:
        for built in images.build_images(list(images.CLUSTER_IMAGES)):
            subprocess.run(
                ["kind", "load", "image-archive", str(built.archive), "--name", cluster.name], check=True
            )
        yield k.Kube(cluster.kubeconfig_path, host_reaches_services=False, name="kind")
    finally:
        if not request.config.getoption("--keep-cluster", default=False):
            cluster.delete()


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[k.Kube]:
    """A cluster whose pods run: kind with a container engine, the real node otherwise."""
    if k.container_engine_problem() is None:
        yield from _kind(request)
    else:
        yield from _real_node(request)


@pytest.fixture(scope="session")
def installed(kube: k.Kube) -> k.Kube:
    """The CRDs, then the overlay, as the README installs them; operator and emulator rolled out."""
    kube.kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
    base = REPO / "manifests" / "base"
    kube.kubectl(
        "apply",
        "--server-side",
        "-f",
        str(base / "kopf.dev_clusterkopfpeerings.yaml"),
        "-f",
        str(base / "kopf.dev_kopfpeerings.yaml"),
    )
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    kube.kubectl("apply", "--server-side", "-k", str(REPO / "e2e" / "overlay"))
    kube.kubectl(
        "-n", OPERATOR_NAMESPACE, "rollout", "status", "deployment/weather-operator", "--timeout=300s"
    )
    kube.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/openmeteo", "--timeout=180s")
    return kube


@contextlib.contextmanager
def operator_paused(kube: k.Kube, timeout: float = READY_TIMEOUT) -> Iterator[None]:
    """Scale the kustomize-installed operator (if any) to 0 for the block, then back."""
    found = kube.kubectl(
        "-n", OPERATOR_NAMESPACE, "get", "deployment/weather-operator", "--ignore-not-found", "-o", "json"
    )
    replicas = json.loads(found)["spec"]["replicas"] if found.strip() else None
    if replicas:
        kube.kubectl("-n", OPERATOR_NAMESPACE, "scale", "deployment/weather-operator", "--replicas=0")
        kube.kubectl(
            "-n", OPERATOR_NAMESPACE, "wait", "--for=delete", "pod", "-l",
            "app.kubernetes.io/name=weather-operator", f"--timeout={int(timeout)}s",
        )  # fmt: skip
    try:
        yield
    finally:
        if replicas:
            kube.kubectl(
                "-n", OPERATOR_NAMESPACE, "scale", "deployment/weather-operator", f"--replicas={replicas}"
            )
            kube.kubectl(
                "-n",
                OPERATOR_NAMESPACE,
                "rollout",
                "status",
                "deployment/weather-operator",
                f"--timeout={int(timeout)}s",
            )


@contextlib.contextmanager
def probe_pod(kube: k.Kube, name: str, fleet: str = FLEET) -> Iterator[str]:
    """A pod of the fleet's namespace in the fleet's proxy image that is not the fleet's (no label of it).

    Restricted like the fleet's own pods; it sleeps, and tests ``kubectl exec`` Python in it.
    Deleted when the block ends.
    """
    deployment = kube.json("-n", NAMESPACE, "get", f"deployment/{fleet}")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": name}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "probe",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-c", "import time; time.sleep(3600)"],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        }
    )
    try:
        wait_ready(kube, f"pod/{name}", timeout=120)
        yield name
    finally:
        kube.kubectl("-n", NAMESPACE, "delete", "pod", name, "--wait=false", check=False)


def wait_ready(kube: k.Kube, resource: str, timeout: float = READY_TIMEOUT) -> None:
    kube.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", resource, f"--timeout={int(timeout)}s")


@pytest.fixture(scope="session")
def fleet(installed: k.Kube) -> str:
    """The overlay's WeatherProxy ``paris``, Ready from its pods' real readiness probes."""
    wait_ready(installed, f"weatherproxy/{FLEET}")
    return FLEET


def patch_fleet(kube: k.Kube, fleet: str, spec: dict[str, Any]) -> None:
    """A JSON merge patch of the WeatherProxy's spec, as ``kubectl patch --type=merge``."""
    kube.kubectl(
        "-n", NAMESPACE, "patch", f"weatherproxy/{fleet}", "--type=merge", "-p", json.dumps({"spec": spec})
    )


READINESS = (
    "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/health/ready').read().decode())"
)


def readiness(kube: k.Kube, pod: str) -> dict[str, Any]:
    """The proxy's own readiness document, read inside the pod (docs/contracts.md, HTTP API)."""
    doc: dict[str, Any] = json.loads(
        kube.kubectl("-n", NAMESPACE, "exec", pod, "--", "python", "-c", READINESS)
    )
    return doc


def key_of(kube: k.Kube, apikey: str) -> str:
    """The plaintext of an ApiKey, from its own Secret (its name in status.secretName)."""
    secret_name = kube.json("-n", NAMESPACE, "get", f"apikey/{apikey}")["status"]["secretName"]
    secret = kube.json("-n", NAMESPACE, "get", f"secret/{secret_name}")
    return base64.b64decode(secret["data"][contract.APIKEY_SECRET_KEY]).decode()


def apikey(name: str, proxy: str = FLEET, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "weatherproxy.dev/v1alpha1",
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"proxyRef": {"name": proxy}, "description": "e2e", **spec},
    }


def create_key(kube: k.Kube, name: str, proxy: str = FLEET) -> str:
    """Apply an ApiKey, wait for Ready, return its plaintext."""
    kube.apply(apikey(name, proxy))
    wait_ready(kube, f"apikey/{name}")
    return key_of(kube, name)


def erase_key(
    kube: k.Kube, name: str, proxy: str, *, timeout: float = 300, first_pod: bool = False
) -> dict[str, Any]:
    """Create then delete ApiKey ``name`` of ``proxy``: its history erasure Job, once it ended.

    Ended is Complete or Failed: a pod that fails is retried by the Job, so a Job that cannot
    reach PostgreSQL shows as failed pods first and Failed only after its backoff limit. With
    ``first_pod``, the first pod's outcome ends the wait (a pod a NetworkPolicy blocks fails).
    """
    selector = f"app.kubernetes.io/instance={proxy},app.kubernetes.io/component=history-eraser"
    before = {
        j["metadata"]["name"] for j in kube.json("-n", NAMESPACE, "get", "jobs", "-l", selector)["items"]
    }
    create_key(kube, name, proxy)
    kube.kubectl("-n", NAMESPACE, "delete", f"apikey/{name}", "--wait=true", "--timeout=60s")

    def ended() -> dict[str, Any] | None:
        for job in kube.json("-n", NAMESPACE, "get", "jobs", "-l", selector)["items"]:
            conditions = {c["type"]: c["status"] for c in job["status"].get("conditions", [])}
            pod_ended = first_pod and (job["status"].get("succeeded") or job["status"].get("failed"))
            if job["metadata"]["name"] not in before and (
                pod_ended or "True" in (conditions.get("Complete"), conditions.get("Failed"))
            ):
                found: dict[str, Any] = job
                return found
        return None

    return k.eventually(ended, timeout, f"{name}'s erasure Job to end", interval=2)


@pytest.fixture(scope="session")
def proxy_url(fleet: str, installed: k.Kube) -> Iterator[str]:
    """Base URL of the fleet's Service as the host reaches it (ClusterIP, or a port-forward on kind)."""
    status = installed.json("-n", NAMESPACE, "get", f"weatherproxy/{fleet}")["status"]
    service = status["endpoint"].split("//", 1)[1].split(".", 1)[0]
    if installed.host_reaches_services:
        yield installed.service_url(NAMESPACE, service)
    else:
        with installed.port_forward(f"service/{service}", 8080, NAMESPACE) as port:
            yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def dump_cluster_state_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed e2e test: operator and proxy logs, Events, describe, on stdout."""
    yield
    if not request.node.stash.get(FAILED_KEY, False) or "kube" not in request.fixturenames:
        return
    kube: k.Kube = request.getfixturevalue("kube")
    for title, args in (
        ("operator logs", ("-n", OPERATOR_NAMESPACE, "logs", "deployment/weather-operator", "--tail=300")),
        (
            "proxy logs",
            (
                "-n",
                NAMESPACE,
                "logs",
                "-l",
                "app.kubernetes.io/name=weather-proxy",
                "--tail=100",
                "--prefix",
                "--all-containers",
            ),
        ),
        ("events", ("get", "events", "-A", "--sort-by=.lastTimestamp")),
        ("custom resources", ("get", "weatherproxies,apikeys", "-A", "-o", "yaml")),
        ("describe fleet pods", ("-n", NAMESPACE, "describe", "pods")),
        ("fleet objects", ("-n", NAMESPACE, "get", "all,configmaps,secrets,pvc,pdb,hpa", "-o", "wide")),
        ("nodes", ("describe", "nodes")),
    ):
        try:
            output = kube.kubectl(*args, timeout=60)
        except subprocess.CalledProcessError as exc:
            output = f"(kubectl failed: {exc}: {exc.stderr})"
        print(f"\n===== {title} =====\n{output}")
