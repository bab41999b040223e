"""The client SDKs and the Postman package carry the project's version (pyproject.toml).

Each toolchain wants the version in its own file (package.json, a Go constant, the Python
package); this keeps those copies equal to the one source.
"""

from __future__ import annotations

import json
import pathlib
import re
import tomllib

import pytest

import weather_proxy_client

REPO = pathlib.Path(__file__).resolve().parents[3]
PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_python_sdk_has_the_project_version() -> None:
    assert weather_proxy_client.__version__ == PROJECT_VERSION
    sdk_project = tomllib.loads((REPO / "sdk/python/pyproject.toml").read_text())["project"]
    assert sdk_project["dynamic"] == ["version"]  # read from weather_proxy_client._version


@pytest.mark.parametrize("package", ["sdk/typescript", "postman"])
def test_each_node_package_and_its_lockfile_have_the_project_version(package: str) -> None:
    manifest = json.loads((REPO / package / "package.json").read_text())
    lock = json.loads((REPO / package / "package-lock.json").read_text())
    assert manifest["version"] == PROJECT_VERSION
    assert lock["version"] == PROJECT_VERSION
    assert lock["packages"][""]["version"] == PROJECT_VERSION


def test_the_go_sdk_has_the_project_version() -> None:
    source = (REPO / "sdk/go/client.go").read_text()
    found = re.search(r'^const Version = "([^"]+)"', source, re.MULTILINE)
    assert found is not None, "sdk/go/client.go: no `const Version = ...`"
    assert found.group(1) == PROJECT_VERSION
