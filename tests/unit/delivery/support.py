"""Shared helpers of the delivery tests: repository paths, external tools, kustomize builds."""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
ENVIRONMENTS = ("dev", "staging", "production")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Path of an executable (the venv's bin first); skip when missing locally, fail in CI."""
    venv_bin = pathlib.Path(sys.executable).parent / name
    found = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (hack/system-packages.sh {name} installs it)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def overlay_dirs() -> list[pathlib.Path]:
    """manifests/overlays/<env> for every environment: what Argo CD deploys, one per cluster."""
    return [MANIFESTS / "overlays" / env for env in ENVIRONMENTS]


def kustomization_dirs() -> list[pathlib.Path]:
    """Every directory under manifests/ holding a buildable kustomization (Components excluded)."""
    dirs = []
    for path in sorted(MANIFESTS.rglob("kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind", "Kustomization") == "Kustomization":
            dirs.append(path.parent)
    return dirs


@functools.cache
def kustomize_build(directory: pathlib.Path) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize DIR` renders (cached: builds take ~0.1 s each)."""
    kubectl = require_tool("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory.relative_to(REPO)} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    matches = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]
