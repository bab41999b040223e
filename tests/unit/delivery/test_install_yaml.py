"""dist/install.yaml (``make release``, ``hack/install_yaml.py``): one REGISTRY points both images at it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from hack import install_yaml
from tests.unit.delivery import support
from weather_proxy import version


def deployment(text: str) -> dict[str, Any]:
    (found,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment"]
    return dict(found)


def operator_images(text: str) -> tuple[str, str]:
    (container,) = deployment(text)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    return container["image"], env["WEATHER_OPERATOR_DEFAULT_IMAGE"]


def test_the_defaults_give_the_plain_build_of_the_base() -> None:
    plain = subprocess.run(
        [support.require_tool("kubectl"), "kustomize", str(install_yaml.BASE)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert install_yaml.build(install_yaml.DEFAULT_REGISTRY, version.VERSION) == plain


def test_registry_and_tag_reach_the_operator_and_its_default_proxy_image() -> None:
    built = install_yaml.build("registry.example.com/wpf/", "dev")
    assert operator_images(built) == (
        "registry.example.com/wpf/operator:dev",
        "registry.example.com/wpf/proxy:dev",
    )
    # Everything else is the base's.
    others = [d for d in yaml.safe_load_all(built) if d and d["kind"] != "Deployment"]
    assert others == [o for o in support.kustomize_build(install_yaml.BASE) if o["kind"] != "Deployment"]


def test_the_patch_names_the_bases_deployment_and_container() -> None:
    base = deployment((install_yaml.BASE / "apps_v1_deployment.yaml").read_text())
    assert {k: base["metadata"][k] for k in ("name", "namespace")} == install_yaml.DEPLOYMENT
    assert [c["name"] for c in base["spec"]["template"]["spec"]["containers"]] == [install_yaml.CONTAINER]
    assert operator_images(yaml.safe_dump(base))[0] == f"{install_yaml.OPERATOR_IMAGE}:{version.VERSION}"


@pytest.mark.parametrize(
    ("registry", "tag", "field"),
    [
        ("docker://r.example", "1", "REGISTRY"),
        ("", "1", "REGISTRY"),
        ("r.example", "a:b", "TAG"),
        ("r", "", "TAG"),
    ],
)
def test_bad_values_are_refused_naming_them(registry: str, tag: str, field: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(support.REPO / "hack" / "install_yaml.py"),
            "--registry",
            registry,
            "--tag",
            tag,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert field in done.stderr
    assert not done.stdout


def test_make_release_builds_install_yaml_with_the_registry() -> None:
    dry = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",
            "release",
            "REGISTRY=r.example/x",
            "TAG=t1",
            "DIST=/tmp/dist-x",
        ],
        cwd=support.REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "hack/install_yaml.py --registry r.example/x --tag t1 > /tmp/dist-x/install.yaml" in dry
