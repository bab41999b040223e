"""The chart installed with ``helm install`` on a cluster whose pods run, then uninstalled.

The operator image is the one built on this machine (``make images``), which the chart's
default image (``ghcr.io/weather-proxy/operator:<appVersion>``) names. The release watches
one namespace of its own (``watchNamespace``), so it peers through a KopfPeering there and
touches nothing of the session's fleet; while it runs, the session's kustomize-installed
operator (when an earlier e2e module installed it) is scaled to zero so that one operator
reconciles the sample, and scaled back afterwards. Everything the test creates is removed:
the release, the sample, both namespaces, and the CRDs when they were not there before.
"""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any

import pytest

from e2e import cluster as k
from e2e import conftest as fx
from testbed import helm

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "helm-e2e"
RELEASE_NAMESPACE = "weather-helm-system"
WATCHED = "weather-helm"
FLEET = "helm-sample"
OPERATOR = f"{RELEASE}-weather-operator"
CRDS = ("weatherproxies.weatherproxy.dev", "apikeys.weatherproxy.dev")
TIMEOUT = 300


def run_helm(kube: k.Kube, *args: str, timeout: float = TIMEOUT + 60) -> str:
    done = helm.run("--kubeconfig", str(kube.kubeconfig), *args, timeout=timeout)
    return done.stdout


def sample_fleet() -> dict[str, Any]:
    """A small fleet: one proxy pod and a managed Redis from the locally built image.

    Its proxy runs under granian (``spec.server``), the other server the image offers: Ready
    means granian answered the pod's real probes on this node.
    """
    return {
        "apiVersion": "weatherproxy.dev/v1alpha1",
        "kind": "WeatherProxy",
        "metadata": {"name": FLEET, "namespace": WATCHED},
        "spec": {
            "replicas": 1,
            "server": "granian",
            "redis": {"managed": {"image": "localhost/wpf/redis:7.0-bookworm"}},
        },
    }


def crds_present(kube: k.Kube) -> set[str]:
    out = kube.kubectl("get", "crd", *CRDS, "--ignore-not-found", "-o", "name")
    return {line.split("/", 1)[1] for line in out.split()}


def test_helm_install_reconciles_a_fleet_then_uninstalls(kube: k.Kube) -> None:
    crds_before = crds_present(kube)
    kube.kubectl("create", "namespace", WATCHED)
    try:
        with fx.operator_paused(kube, TIMEOUT):
            out = run_helm(
                kube, "install", RELEASE, str(helm.CHART),
                "--namespace", RELEASE_NAMESPACE, "--create-namespace",
                "--set", f"watchNamespace={WATCHED}", "--wait", f"--timeout={TIMEOUT}s",
            )  # fmt: skip
            assert "STATUS: deployed" in out, out
            assert f"watching namespace {WATCHED}" in out  # NOTES.txt
            assert crds_present(kube) == set(CRDS)
            deployment = kube.json("-n", RELEASE_NAMESPACE, "get", f"deployment/{OPERATOR}")
            assert deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"] == 2
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert container["image"] == f"ghcr.io/weather-proxy/operator:{helm.project_version()}"

            kube.apply(sample_fleet())
            kube.kubectl(
                "-n",
                WATCHED,
                "wait",
                "--for=condition=Ready",
                f"weatherproxy/{FLEET}",
                f"--timeout={TIMEOUT}s",
            )
            status = kube.json("-n", WATCHED, "get", f"weatherproxy/{FLEET}")["status"]
            assert status["readyReplicas"] >= 1, status
            # The operator's own objects: the chart's peering object, in the watched namespace.
            assert kube.kubectl("-n", WATCHED, "get", f"kopfpeering/{OPERATOR}", "-o", "name").strip()
            proxy = kube.json("-n", WATCHED, "get", f"deployment/{FLEET}")
            assert proxy["metadata"]["ownerReferences"][0]["kind"] == "WeatherProxy"
            rendered = kube.json("-n", WATCHED, "get", f"configmap/{FLEET}-config")["data"]["config.yaml"]
            assert "server: granian" in rendered, rendered

            kube.kubectl(
                "-n", WATCHED, "delete", f"weatherproxy/{FLEET}", "--wait=true", f"--timeout={TIMEOUT}s"
            )
            out = run_helm(kube, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait")
            assert f'release "{RELEASE}" uninstalled' in out, out
            assert not kube.kubectl(
                "get", f"clusterrole/{OPERATOR}", "--ignore-not-found", "-o", "name"
            ).strip()
            assert not kube.kubectl(
                "-n", RELEASE_NAMESPACE, "get", f"deployment/{OPERATOR}", "--ignore-not-found", "-o", "name"
            ).strip()
            # Helm keeps the CRDs of crds/ (the README's uninstall section): the custom resources survive.
            assert crds_present(kube) == set(CRDS)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, AssertionError):
            run_helm(
                kube, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", "--ignore-not-found"
            )
        for namespace in (WATCHED, RELEASE_NAMESPACE):
            kube.kubectl(
                "delete", "namespace", namespace, "--ignore-not-found", "--wait=true", f"--timeout={TIMEOUT}s"
            )
        created = set(CRDS) - crds_before
        if created:
            kube.kubectl("delete", "crd", *sorted(created), "--ignore-not-found", "--wait=true")
