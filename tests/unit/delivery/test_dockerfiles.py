"""The container images, checked without a container engine: structure, context, hadolint."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess

import pytest

from tests.unit.delivery import dockerfile, support

IMAGES = {
    # Dockerfile: (extra installed, console script, the CMD it must run)
    "Dockerfile.proxy": (
        "proxy",
        "weather-proxy",
        ["weather-proxy", "--config", "/etc/weather-proxy/config.yaml"],
    ),
    "Dockerfile.operator": ("operator", "weather-operator", ["weather-operator"]),
}
OCI_LABELS = ("title", "description", "source", "licenses", "version")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|apt-get|apk|python3-dev|libc6-dev)\b")
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")


def stages(name: str) -> list[dockerfile.Stage]:
    return dockerfile.parse_stages((support.REPO / name).read_text())


@pytest.fixture(scope="module")
def dockerignore() -> dockerfile.DockerIgnore:
    return dockerfile.DockerIgnore((support.REPO / ".dockerignore").read_text())


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_multi_stage_on_the_same_pinned_slim_base(name: str) -> None:
    builder, final = stages(name)
    assert builder.name == "builder"
    assert PINNED_PYTHON.match(builder.base), builder.base
    assert final.base == builder.base
    for stage in (builder, final):
        assert not stage.base.endswith(":latest")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_builder_installs_the_package_with_its_extra_into_a_venv(name: str) -> None:
    extra = IMAGES[name][0]
    builder = stages(name)[0]
    runs = " ".join(ins.arguments for ins in builder.all("RUN"))
    assert "python -m venv /opt/venv" in runs
    assert f'pip install --no-cache-dir -c constraints.txt ".[{extra}]"' in runs  # the lock
    assert any("PATH=/opt/venv/bin:$PATH" in ins.arguments for ins in builder.all("ENV"))


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_final_stage_copies_only_the_venv_and_has_no_build_tools(name: str) -> None:
    final = stages(name)[-1]
    copies = [dockerfile.parse_copy(ins) for ins in final.all("COPY") + final.all("ADD")]
    assert copies == [
        dockerfile.Copy(sources=["/opt/venv"], destination="/opt/venv", from_stage="builder"),
        # The builder's passwd and group, with the entry of UID 10001.
        dockerfile.Copy(sources=["/etc/passwd", "/etc/group"], destination="/etc/", from_stage="builder"),
    ]
    for ins in final.instructions:
        assert not BUILD_TOOLS.search(ins.arguments), f"line {ins.line}: build tooling in the final stage"
    assert not final.all("RUN"), "the final stage needs no RUN: everything is built in the builder"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_final_stage_runs_as_numeric_non_root_and_read_only_friendly(name: str) -> None:
    final = stages(name)[-1]
    users = final.all("USER")
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].arguments.partition(":")
    assert uid == "10001", "USER must be numeric (runAsNonRoot checks it) and 10001"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    env = " ".join(ins.arguments for ins in final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env, "libraries that write to $HOME must land on the writable /tmp"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_final_stage_exposes_8080_labels_and_command(name: str) -> None:
    _, script, command = IMAGES[name]
    final = stages(name)[-1]
    assert [ins.arguments for ins in final.all("EXPOSE")] == ["8080"]
    found = dockerfile.labels(final)
    for label in OCI_LABELS:
        assert found.get(f"org.opencontainers.image.{label}"), f"missing OCI label {label}"
    assert found["org.opencontainers.image.version"] == "${VERSION}"
    assert "VERSION=" in " ".join(ins.arguments for ins in final.all("ARG"))
    cmd = final.all("CMD")
    assert len(cmd) == 1
    assert dockerfile.exec_form(cmd[0].arguments) == command
    assert command[0] == script


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_every_copy_source_reaches_the_build_context(
    name: str, dockerignore: dockerfile.DockerIgnore
) -> None:
    for stage in stages(name):
        for ins in stage.all("COPY"):
            copy = dockerfile.parse_copy(ins)
            if copy.from_stage:
                continue
            for source in copy.sources:
                assert (support.REPO / source).exists(), f"{name}:{ins.line}: {source} does not exist"
                assert dockerignore.included_files(support.REPO, source), (
                    f"{name}:{ins.line}: {source} is excluded by .dockerignore"
                )


def test_dockerignore_keeps_caches_and_the_rest_of_the_repo_out(
    dockerignore: dockerfile.DockerIgnore,
) -> None:
    assert not dockerignore.excluded("pyproject.toml")
    assert not dockerignore.excluded("proxy/weather_proxy/config.py")
    assert dockerignore.excluded("proxy/weather_proxy/__pycache__/config.cpython-311.pyc")
    assert dockerignore.excluded(".venv/bin/python")
    assert dockerignore.excluded(".git/HEAD")
    assert dockerignore.excluded("tests/conftest.py")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_console_script_of_the_command_resolves(name: str) -> None:
    script = IMAGES[name][1]
    (entry_point,) = importlib.metadata.entry_points(group="console_scripts", name=script)
    try:
        main = entry_point.load()
    except ModuleNotFoundError as exc:
        # The entry module is written by another team; skip until it lands, never in CI.
        if support.in_ci():
            raise
        pytest.skip(f"{entry_point.value}: {exc}")
    assert callable(main)


@pytest.mark.parametrize("name", [*sorted(IMAGES), "e2e/Dockerfile.emulator"])
def test_hadolint_passes(name: str) -> None:
    hadolint = support.require_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--config", str(support.REPO / ".hadolint.yaml"), str(support.REPO / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class TestParser:
    """The reader itself, on inputs our Dockerfiles do not exercise."""

    def test_continuations_comments_and_stage_names(self) -> None:
        text = (
            "# syntax=docker/dockerfile:1\nARG BASE=x\nFROM --platform=$BUILDPLATFORM a:1 AS one\n"
            "RUN echo a \\\n  # dropped\n  && echo b\n\nFROM b:2\nUSER 1:1\n"
        )
        one, two = dockerfile.parse_stages(text)
        assert (one.base, one.name, two.base, two.name) == ("a:1", "one", "b:2", None)
        assert one.all("RUN")[0].arguments == "echo a && echo b"
        assert one.all("RUN")[0].line == 4

    def test_dangling_continuation_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="continuation"):
            dockerfile.parse_instructions("FROM a:1\nRUN x \\\n")

    def test_instruction_before_from_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="before the first FROM"):
            dockerfile.parse_stages("RUN x\nFROM a:1\n")

    def test_copy_forms(self) -> None:
        ins = dockerfile.Instruction("COPY", '--chown=1:1 ["a b", "c", "/dst/"]', 1)
        assert dockerfile.parse_copy(ins) == dockerfile.Copy(["a b", "c"], "/dst/", None)

    def test_dockerignore_negation_order(self) -> None:
        ignore = dockerfile.DockerIgnore("*\n!src/\nsrc/secret.txt\n!src/secret.txt\nsrc/**/*.tmp\n")
        assert not ignore.excluded("src/a.py")
        assert not ignore.excluded("src/secret.txt")
        assert ignore.excluded("src/deep/x.tmp")
        assert ignore.excluded("other/file")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_uid_10001_has_a_passwd_entry(name: str) -> None:
    """Kopf's getpass.getuser() raises KeyError for a UID without one (found on a real node)."""
    builder = stages(name)[0]
    runs = " ".join(ins.arguments for ins in builder.all("RUN"))
    assert 'echo "weather:x:10001:10001:' in runs
    assert ">> /etc/passwd" in runs
    assert 'echo "weather:x:10001:" >> /etc/group' in runs
