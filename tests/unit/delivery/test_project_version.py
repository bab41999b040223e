"""One version, pyproject.toml's: what reads it at run time, and the copies that cannot.

The programs read it through :mod:`weather_proxy.version` (the CLIs' ``--version``, the
OpenAPI document, the default proxy image, the local image builds). Image tags in YAML
manifests and Dockerfile defaults cannot: every one is checked here against pyproject.toml.
The SDKs' copies are checked by ``test_sdk_versions.py``.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import re
import subprocess
import tomllib

import pytest
import yaml

from devcluster import images
from tests.unit.delivery import support
from weather_operator.api import constants
from weather_proxy import __main__ as proxy_cli
from weather_proxy import app as app_mod
from weather_proxy import config as config_mod
from weather_proxy import settings, version

PROJECT_VERSION = tomllib.loads((support.REPO / "pyproject.toml").read_text())["project"]["version"]
OUR_IMAGE = re.compile(r"ghcr\.io/weather-proxy/(proxy|operator):([^\s\"'`|,)]+)")
# Snapshots and fixtures pin an image on purpose, so that a release does not rewrite them.
PINNED_ON_PURPOSE = ("tests/", "CHANGELOG.md")


def test_the_programs_read_pyprojects_version() -> None:
    assert version.VERSION == PROJECT_VERSION
    proxy_image, operator_image = (
        f"ghcr.io/weather-proxy/{name}:{PROJECT_VERSION}" for name in ("proxy", "operator")
    )
    assert proxy_image == constants.DEFAULT_PROXY_IMAGE
    assert (proxy_image, operator_image) == (images.PROXY, images.OPERATOR)
    for ref in (images.PROXY, images.OPERATOR):
        spec = images.SPECS[ref]
        assert isinstance(spec, images.DockerfileSpec)
        assert dict(spec.build_args)["VERSION"] == PROJECT_VERSION


def test_a_source_checkout_without_metadata_reads_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert version.read_version() == PROJECT_VERSION


def test_no_source_at_all_gives_a_version_that_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(version, "SOURCE_PYPROJECT", tmp_path / "pyproject.toml")
    assert version.read_version() == "0+unknown"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "another-project"\nversion = "9.9"\n')
    assert version.read_version() == "0+unknown"


def test_weather_proxy_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        proxy_cli.parse_args(["--version"], settings.ProxySettings.from_env({}))
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"weather-proxy {PROJECT_VERSION}"


def test_the_openapi_document_carries_the_version() -> None:
    application = app_mod.create_app(config_mod.ProxyConfig())
    assert application.openapi()["info"]["version"] == PROJECT_VERSION


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=support.REPO, capture_output=True, check=False, timeout=30
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return [name for name in names if not name.startswith(PINNED_ON_PURPOSE)]


def test_every_tag_of_our_images_in_the_repository_is_the_projects() -> None:
    """Manifests, overlays, samples, docs, Dockerfile comments: no stale ``proxy:0.0.9`` anywhere."""
    stale = []
    for name in tracked_files():
        path = support.REPO / name
        if not path.is_file() or path.suffix in {".sum", ".lock"} or name.endswith("package-lock.json"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for found in OUR_IMAGE.finditer(text):
            if found.group(2) != PROJECT_VERSION and not found.group(2).startswith(("$", "{", "<")):
                line = text.count("\n", 0, found.start()) + 1
                stale.append(f"{name}:{line}: {found.group(0)}")
    assert not stale, f"image tags other than {PROJECT_VERSION}:\n" + "\n".join(stale)


@pytest.mark.parametrize("overlay", support.overlay_dirs(), ids=lambda d: d.name)
def test_each_overlay_pins_the_operator_image_to_the_version(overlay: pathlib.Path) -> None:
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    ours = [i for i in kustomization.get("images", []) if i["name"].startswith("ghcr.io/weather-proxy/")]
    assert ours, f"{overlay.name}: no images entry for ghcr.io/weather-proxy/*"
    for entry in ours:
        assert entry.get("newTag") == PROJECT_VERSION, entry


@pytest.mark.parametrize("name", ["Dockerfile.proxy", "Dockerfile.operator"])
def test_dockerfile_version_defaults_are_the_projects(name: str) -> None:
    text = (support.REPO / name).read_text()
    defaults = re.findall(r"^ARG VERSION=(\S+)$", text, re.MULTILINE)
    assert defaults == [PROJECT_VERSION]
    assert re.findall(r"--build-arg VERSION=(\S+)", text) == [PROJECT_VERSION]


def test_the_makefile_takes_the_version_from_pyproject() -> None:
    (line,) = [ln for ln in (support.REPO / "Makefile").read_text().splitlines() if ln.startswith("VERSION ")]
    assert "pyproject.toml" in line, line
    made = subprocess.run(
        ["make", "-s", "--no-print-directory", "print-version"],
        cwd=support.REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == PROJECT_VERSION


def test_the_changelog_has_a_section_for_the_version() -> None:
    changelog = (support.REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    heading = rf"^## \[{re.escape(PROJECT_VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$"
    assert re.search(heading, changelog, re.MULTILINE), f"CHANGELOG.md: no section for {PROJECT_VERSION}"
