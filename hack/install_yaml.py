"""``dist/install.yaml``: the kustomize build of ``manifests/base``, pointed at one image registry.

``python3 hack/install_yaml.py --registry REGISTRY --tag TAG`` prints the build with the
operator's image set to ``REGISTRY/operator:TAG`` and the operator's default proxy image
(``WEATHER_OPERATOR_DEFAULT_IMAGE``, for fleets whose ``spec.image`` is unset) to
``REGISTRY/proxy:TAG``: the names ``make push REGISTRY=... TAG=...`` pushed. ``make release``
runs it; with the defaults (the project's registry and version) the output is the plain
build. The overlay that does it lives in a temporary folder for the build, naming the base by
a relative path (kustomize refuses an absolute one). Standard library only: CI's chart job
runs it with the system's Python, without the project installed (YAML is written as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404 - kubectl is run with an argument list, never a shell
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "manifests" / "base"
DEFAULT_REGISTRY = "ghcr.io/weather-proxy"
OPERATOR_IMAGE = f"{DEFAULT_REGISTRY}/operator"
DEFAULT_IMAGE_VARIABLE = "WEATHER_OPERATOR_DEFAULT_IMAGE"
# The operator's Deployment in manifests/base (a test checks these against the file).
DEPLOYMENT = {"name": "weather-operator", "namespace": "weather-system"}
CONTAINER = "operator"


def kustomization(registry: str, tag: str, base: str) -> dict[str, object]:
    """The overlay of ``base`` (a path relative to it) that points both images at ``registry``."""
    registry = registry.rstrip("/")
    env = [{"name": DEFAULT_IMAGE_VARIABLE, "value": f"{registry}/proxy:{tag}"}]
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": DEPLOYMENT,
        "spec": {"template": {"spec": {"containers": [{"name": CONTAINER, "env": env}]}}},
    }
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [base],
        "images": [{"name": OPERATOR_IMAGE, "newName": f"{registry}/operator", "newTag": tag}],
        "patches": [{"patch": json.dumps(patch)}],
    }


def build(registry: str, tag: str, kubectl: str = "kubectl") -> str:
    """The install bundle for ``registry`` and ``tag`` (``kubectl kustomize``'s output)."""
    if not registry.strip("/") or "://" in registry:
        raise ValueError(f"REGISTRY {registry!r} must be a registry path such as registry.example.com/wpf")
    if not tag or any(c in tag for c in ":/@"):
        raise ValueError(f"TAG {tag!r} is not an image tag (letters, digits, '.', '_' or '-')")
    with tempfile.TemporaryDirectory(prefix="install-yaml-") as overlay:
        relative = os.path.relpath(BASE, overlay)
        (Path(overlay) / "kustomization.yaml").write_text(
            json.dumps(kustomization(registry, tag, relative), indent=2)
        )
        done = subprocess.run(  # noqa: S603  # nosec B603 - fixed argument list
            [kubectl, "kustomize", overlay], capture_output=True, text=True, check=False, timeout=120
        )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize failed: {done.stderr.strip()}")
    return done.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/install_yaml.py", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--registry", default=DEFAULT_REGISTRY, help=f"default: {DEFAULT_REGISTRY}")
    parser.add_argument("--tag", required=True, help="the images' tag (make release: the project's version)")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(build(args.registry, args.tag))
    except (ValueError, RuntimeError) as exc:
        print(f"install.yaml: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
