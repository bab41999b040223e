"""The GitHub Actions workflow: the same make targets as .ci/run, pinned actions, images on tags.

The hosted run cannot happen on this machine; what can be checked here is: actionlint (with
shellcheck on every ``run:`` script) passes, every make target the workflow calls exists, it
calls every target .ci/run calls, and the image job builds both architectures with SBOM and
provenance attestations and pushes only for ``v*`` tags.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.unit.delivery import support

WORKFLOW = support.REPO / ".github" / "workflows" / "ci.yml"
MAKE_CALL = re.compile(r"\bmake[ \t]+(?:--no-print-directory[ \t]+|-s[ \t]+)*((?:[\w./-]+[ \t]*)+)")


@functools.cache
def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def jobs() -> dict[str, Any]:
    found: dict[str, Any] = workflow()["jobs"]
    return found


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = jobs()[job]["steps"]
    return found


def make_targets(text: str) -> set[str]:
    targets: set[str] = set()
    for found in MAKE_CALL.finditer(text):
        targets.update(
            word for word in found.group(1).split() if "=" not in word and not word.startswith("-")
        )
    return targets


def workflow_make_targets() -> set[str]:
    return set().union(*(make_targets(step.get("run", "")) for job in jobs() for step in steps(job)))


def makefile_targets() -> set[str]:
    text = (support.REPO / "Makefile").read_text()
    return set(re.findall(r"^([\w./$()-]+):", text, re.MULTILINE)) | {
        "$(VENV)/.installed",
        ".venv/.installed",
    }


def test_the_workflow_runs_on_pushes_tags_and_pull_requests_with_read_only_defaults() -> None:
    triggers = workflow()[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    assert "pull_request" in triggers
    assert workflow()["permissions"] == {"contents": "read"}
    assert {"lint", "test", "test-minimums", "sdk", "e2e", "chart", "images"} <= set(jobs())


def test_every_action_is_pinned_by_its_major_version() -> None:
    for job in jobs():
        for step in steps(job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"{job}: {step['uses']}"


def test_it_calls_the_make_targets_of_ci_run_and_only_existing_ones() -> None:
    called = workflow_make_targets()
    assert called <= makefile_targets(), f"no such make target: {called - makefile_targets()}"
    ci_run = make_targets((support.REPO / ".ci" / "run").read_text())
    assert ci_run <= called, f".ci/run calls {ci_run - called}, the workflow does not"
    assert {"lint", "test", "test-minimums", "sdk-test", "e2e"} <= called


def test_images_are_multi_arch_with_attestations_and_pushed_only_for_tags() -> None:
    job = jobs()["images"]
    assert set(job["strategy"]["matrix"]["image"]) == {"proxy", "operator"}
    assert job["permissions"]["packages"] == "write"
    assert "startsWith(github.ref, 'refs/tags/v')" in job["env"]["PUSH"]
    (build,) = [s for s in steps("images") if s.get("uses", "").startswith("docker/build-push-action@")]
    options = build["with"]
    assert options["platforms"] == "linux/amd64,linux/arm64"
    assert options["sbom"] is True
    assert options["provenance"] == "mode=max"
    assert options["push"] == "${{ env.PUSH == 'true' }}"
    assert options["file"] == "Dockerfile.${{ matrix.image }}"
    for image in job["strategy"]["matrix"]["image"]:
        assert (support.REPO / f"Dockerfile.{image}").is_file()
    (login,) = [s for s in steps("images") if s.get("uses", "").startswith("docker/login-action@")]
    assert login["if"] == "env.PUSH == 'true'"
    (meta,) = [s for s in steps("images") if s.get("uses", "").startswith("docker/metadata-action@")]
    assert meta["with"]["images"].startswith("ghcr.io/")


def test_the_chart_job_lints_the_chart_and_builds_the_release_bundle() -> None:
    runs = [s.get("run", "") for s in steps("chart")]
    assert "make --no-print-directory chart-lint" in runs
    assert "make --no-print-directory release" in runs
    (upload,) = [s for s in steps("chart") if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "dist/"


def actionlint() -> str | None:
    """The binary `make workflow-lint` builds (or one on PATH), if there is one yet."""
    version = re.search(
        r"^ACTIONLINT_VERSION \?= (\S+)$", (support.REPO / "Makefile").read_text(), re.MULTILINE
    )
    assert version, "Makefile: no ACTIONLINT_VERSION"
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    built = cache / "weather-proxy-fleet" / "tools" / f"actionlint-{version.group(1)}" / "actionlint"
    return str(built) if built.exists() else shutil.which("actionlint")


def test_actionlint_with_shellcheck_passes() -> None:
    # `make lint` (workflow-lint) is what enforces this, in .ci/run and the workflow's lint job;
    # here it runs wherever that target has already built the binary.
    binary = actionlint()
    if binary is None or shutil.which("shellcheck") is None:
        pytest.skip("actionlint or shellcheck not installed yet: `make workflow-lint` installs both")
    result = subprocess.run(
        [binary, "-no-color", str(WORKFLOW.relative_to(support.REPO))],
        cwd=support.REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
