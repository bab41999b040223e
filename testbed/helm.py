"""The chart's tools for tests: the helm binary `make helm` builds, and rendering the chart.

The binary is the one the Makefile builds from the Go module ``helm.sh/helm/v3`` (its
``HELM_VERSION``, cached under ``~/.cache/weather-proxy-fleet/tools``), or one on PATH.
Without it a test skips locally and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess  # nosec B404 - runs helm with an argument list, never a shell
import tomllib
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "weather-operator"
# The release name and namespace under which the chart renders what manifests/base holds.
BASE_RELEASE = "weather-operator"
BASE_NAMESPACE = "weather-system"
# Labels Helm charts carry and the kustomize base does not (the release's bookkeeping).
HELM_ONLY_LABELS = frozenset(
    {
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "helm.sh/chart",
    }
)


def project_version() -> str:
    """pyproject.toml's version, the one source of the chart's version and appVersion."""
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def helm_version() -> str:
    found = re.search(r"^HELM_VERSION \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert found, "Makefile: no HELM_VERSION"
    return found.group(1)


def kubernetes_minor() -> int:
    """The minor version of the control plane here (hack/controlplane/go.mod): helm is built for it."""
    go_mod = (REPO / "hack" / "controlplane" / "go.mod").read_text()
    found = re.search(r"^\s*k8s\.io/kubernetes v1\.(\d+)\.", go_mod, re.MULTILINE)
    assert found, "hack/controlplane/go.mod: no k8s.io/kubernetes"
    return int(found.group(1))


def kube_version() -> list[str]:
    """``--kube-version`` of the control plane here: any helm then renders as the one `make helm` builds."""
    return ["--kube-version", f"1.{kubernetes_minor()}.0"]


def binary() -> str:
    """The helm `make helm` built (or one on PATH); skip locally, fail in CI, when there is none."""
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    built = (
        cache / "weather-proxy-fleet" / "tools" / f"helm-{helm_version()}-k8s1.{kubernetes_minor()}" / "helm"
    )
    if built.exists():
        return str(built)
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    message = "helm is not built yet: `make helm` builds it from the Go module helm.sh/helm/v3"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # helm and an argument list built by the tests
        [binary(), *args], capture_output=True, text=True, check=False, timeout=timeout, cwd=REPO
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return done


def set_args(values: Mapping[str, Any]) -> list[str]:
    """``--set-json key=value`` per value (nested keys dotted), so types survive."""
    return [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]


def template_text(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = BASE_RELEASE,
    namespace: str = BASE_NAMESPACE,
    include_crds: bool = False,
) -> str:
    args = [
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        *kube_version(),
        *set_args(values or {}),
    ]
    if include_crds:
        args.append("--include-crds")
    return run(*args).stdout


def template(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = BASE_RELEASE,
    namespace: str = BASE_NAMESPACE,
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    """The objects ``helm template`` renders."""
    text = template_text(values, release=release, namespace=namespace, include_crds=include_crds)
    return [doc for doc in yaml.safe_load_all(text) if doc]
