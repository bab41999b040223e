"""The pre-commit configuration works offline: local hooks only, each calling an existing tool."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from tests.unit.delivery import support


@pytest.fixture(scope="module")
def hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load((support.REPO / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "a remote hook repo needs the internet"
    found: list[dict[str, Any]] = config["repos"][0]["hooks"]
    return found


def test_required_hooks_are_configured(hooks: list[dict[str, Any]]) -> None:
    ids = {hook["id"] for hook in hooks}
    assert {"ruff", "ruff-format", "mypy", "bandit", "hadolint", "check-yaml", "end-of-file-fixer"} <= ids


def test_every_hook_calls_a_tool_of_the_virtualenv(hooks: list[dict[str, Any]]) -> None:
    for hook in hooks:
        assert hook["language"] == "system"
        executable = shlex.split(hook["entry"])[0]
        assert executable.startswith(".venv/bin/"), hook["id"]
        name = executable.removeprefix(".venv/bin/")
        support.require_tool(name)


def test_hadolint_hook_matches_every_dockerfile(hooks: list[dict[str, Any]]) -> None:
    (hadolint,) = [hook for hook in hooks if hook["id"] == "hadolint"]
    pattern = re.compile(hadolint["files"])
    for path in ("Dockerfile.proxy", "Dockerfile.operator", "e2e/Dockerfile.emulator"):
        assert pattern.search(path), path
    assert not pattern.search("e2e/Dockerfile.emulator.dockerignore")
