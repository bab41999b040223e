"""devcluster.images without buildah: names, .dockerignore rules, cache keys, archives."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from devcluster import images


@pytest.mark.parametrize(
    ("ref", "normalised"),
    [
        ("redis", "docker.io/library/redis:latest"),
        ("redis:7", "docker.io/library/redis:7"),
        ("weather-proxy/openmeteo-emulator:e2e", "docker.io/weather-proxy/openmeteo-emulator:e2e"),
        ("docker.io/redis:7", "docker.io/library/redis:7"),
        ("ghcr.io/weather-proxy/proxy:0.1.0", "ghcr.io/weather-proxy/proxy:0.1.0"),
        ("localhost/wpf/pause:3.10", "localhost/wpf/pause:3.10"),
        ("localhost:5000/x/y", "localhost:5000/x/y:latest"),
        ("a/b@sha256:" + "0" * 64, "docker.io/a/b@sha256:" + "0" * 64),
    ],
)
def test_normalize_ref(ref: str, normalised: str) -> None:
    assert images.normalize_ref(ref) == normalised


def test_the_constants_are_normalised_and_each_has_a_recipe() -> None:
    for ref in (images.BASE, *images.CLUSTER_IMAGES):
        assert images.normalize_ref(ref) == ref
        assert ref in images.SPECS
    assert images.EMULATOR == "docker.io/weather-proxy/openmeteo-emulator:e2e"
    assert images.resolve("weather-proxy/openmeteo-emulator:e2e") == images.EMULATOR
    assert images.resolve("proxy") == images.PROXY
    with pytest.raises(KeyError):
        images.resolve("nginx")


def test_slugs_are_file_names() -> None:
    assert images.slug(images.EMULATOR) == "docker.io-weather-proxy-openmeteo-emulator-e2e"
    assert len({images.slug(ref) for ref in images.SPECS}) == len(images.SPECS)


@pytest.mark.parametrize(
    ("folder", "module", "ref"),
    [
        ("coredns", "github.com/coredns/coredns", images.COREDNS),
        ("metrics-server", "sigs.k8s.io/metrics-server", images.METRICS_SERVER),
    ],
)
def test_go_image_tags_follow_the_go_mod_pins(folder: str, module: str, ref: str) -> None:
    assert ref.endswith(":" + images.go_module_version(folder, module).removeprefix("v"))


def test_the_emulator_installs_aiohttp_at_the_locked_version() -> None:
    text = (images.REPO / "e2e" / "Dockerfile.emulator").read_text()
    assert "COPY constraints.txt /tmp/constraints.txt" in text
    assert "pip install --no-cache-dir -c /tmp/constraints.txt aiohttp\n" in text
    assert re.search(r"^aiohttp==\S+", (images.REPO / "constraints.txt").read_text(), re.MULTILINE)


RULES = "*\n!pyproject.toml\n!proxy/\n**/__pycache__\n**/*.pyc\n"


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    write(
        tmp_path,
        {
            "pyproject.toml": "[project]\n",
            "proxy/pkg/mod.py": "x = 1\n",
            "proxy/pkg/__pycache__/mod.cpython-311.pyc": "junk",
            "tests/test_x.py": "",
            ".venv/lib/site.py": "",
            "Dockerfile": "FROM scratch\n",
        },
    )
    return tmp_path


def test_dockerignore_allow_list(context: Path) -> None:
    rules = images.DockerIgnore(RULES)
    assert rules.files(context) == ["proxy/pkg/mod.py", "pyproject.toml"]
    assert rules.excluded("tests/test_x.py")
    assert rules.excluded(".venv/lib/site.py")
    assert not rules.excluded("proxy/pkg/mod.py")
    assert rules.excluded("proxy/pkg/__pycache__/mod.cpython-311.pyc")


def test_the_emulator_context_is_the_emulator_and_the_lock_only() -> None:
    ignore = (images.REPO / "e2e" / "Dockerfile.emulator.dockerignore").read_text()
    files = images.DockerIgnore(ignore).files(images.REPO)
    assert files == ["constraints.txt", "devcluster/__init__.py", "devcluster/openmeteo.py"]


def test_the_proxy_context_holds_the_packages_not_the_tests() -> None:
    files = images.DockerIgnore((images.REPO / ".dockerignore").read_text()).files(images.REPO)
    assert "pyproject.toml" in files
    assert any(f.startswith("proxy/") for f in files)
    assert any(f.startswith("operator/") for f in files)
    assert not [f for f in files if f.startswith(("tests/", ".venv/", ".git/")) or "__pycache__" in f]


def test_context_digest_follows_the_included_files_only(context: Path) -> None:
    first = images.context_digest(context, RULES)
    assert images.context_digest(context, RULES) == first
    (context / "tests" / "test_x.py").write_text("changed")
    (context / "proxy/pkg/__pycache__/mod.cpython-311.pyc").write_text("other junk")
    assert images.context_digest(context, RULES) == first
    (context / "proxy" / "pkg" / "mod.py").write_text("x = 2\n")
    assert images.context_digest(context, RULES) != first
    (context / "proxy" / "pkg" / "mod.py").write_text("x = 1\n")
    assert images.context_digest(context, RULES) == first
    (context / "proxy" / "pkg" / "mod.py").chmod(0o755)
    assert images.context_digest(context, RULES) != first


def test_dockerfile_image_key(context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (context / ".dockerignore").write_text(RULES)
    monkeypatch.setattr(images, "REPO", context)
    spec = images.DockerfileSpec(ref="docker.io/x/y:1", short="y", dockerfile="Dockerfile")
    monkeypatch.setitem(images.SPECS, spec.ref, spec)

    def key() -> str:
        return images.Builder().key(spec.ref)

    first = key()
    assert key() == first
    (context / "tests" / "test_x.py").write_text("not in the context")
    assert key() == first
    (context / "proxy" / "pkg" / "mod.py").write_text("x = 3\n")
    second = key()
    assert second != first
    (context / "Dockerfile").write_text("FROM scratch\nUSER 1\n")
    assert key() not in (first, second)

    other_args = images.DockerfileSpec(
        ref=spec.ref, short="y", dockerfile="Dockerfile", build_args=(("VERSION", "2"),)
    )
    monkeypatch.setitem(images.SPECS, spec.ref, other_args)
    assert key() != second


def test_base_key_feeds_the_dockerfile_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    before = images.Builder().key(images.PROXY)
    base = images.SPECS[images.BASE]
    assert isinstance(base, images.DebianSpec)
    changed = images.DebianSpec(
        ref=base.ref,
        short=base.short,
        variant=base.variant,
        packages=(*base.packages, "curl"),
        hooks=base.hooks,
        config=base.config,
    )
    monkeypatch.setitem(images.SPECS, images.BASE, changed)
    assert images.Builder().key(images.PROXY) != before


def test_archive_paths_live_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(images.ENV_CACHE, str(tmp_path))
    archive = images.Builder().archive(images.PROXY)
    assert archive.parent == tmp_path / "images"
    assert re.fullmatch(r"ghcr\.io-weather-proxy-proxy-0\.1\.0-[0-9a-f]{16}\.oci\.tar", archive.name)


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_archive_ref_names_and_config_digest(tmp_path: Path) -> None:
    config = "sha256:" + "c" * 64
    manifest = json.dumps({"config": {"digest": config}}).encode()
    index = {
        "manifests": [
            {
                "digest": "sha256:" + "a" * 64,
                "annotations": {images.REF_NAME_ANNOTATION: images.EMULATOR},
            }
        ]
    }
    archive = tmp_path / "x.oci.tar"
    with tarfile.open(archive, "w") as tar:
        add(tar, "index.json", json.dumps(index).encode())
        add(tar, "blobs/sha256/" + "a" * 64, manifest)
    assert images.archive_ref_names(archive) == [images.EMULATOR]
    assert images.archive_config_digest(archive) == "c" * 64
