"""Every image the local cluster runs, built on this machine without a registry.

``python -m devcluster.images build [NAME ...]`` makes OCI archives under
``~/.cache/weather-proxy-fleet/images/`` (``$WPF_IMAGES_CACHE`` overrides the folder):

* ``localhost/wpf/python:3.11-bookworm``: a Debian bookworm root filesystem made by
  ``mmdebstrap`` (python3.11, venv, CA certificates, tzdata), the base of the Dockerfiles;
* the proxy, the operator and the Open-Meteo emulator, from their Dockerfiles with
  ``buildah`` (vfs storage, chroot isolation, ``--build-arg BASE_IMAGE=`` the image above);
* Redis from Debian's ``redis-server``, PostgreSQL (a fleet's usage history) from Debian's
  ``postgresql-15``; the CRI sandbox (``pause``) from Kubernetes'
  ``pause.c``; CoreDNS and metrics-server from their Go modules (``hack/images/*/go.mod``).

Each archive is named by a sha256 over what the image is made of (recipe, Dockerfile,
the files the build context sends after ``.dockerignore``, build arguments, the base's
key, Go module files, toolchain version), so a second run with nothing changed builds
nothing. ``python -m devcluster.images import --address SOCK`` imports them into a
containerd under the names the kubelet looks up (``docker.io/...`` for short names).

Debian package updates do not change a key: ``build --rebuild base`` makes a fresh base.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from weather_proxy import version

REPO = Path(__file__).resolve().parent.parent
HACK = REPO / "hack" / "images"
ENV_CACHE = "WPF_IMAGES_CACHE"
# Bumped when the way an image is made changes in a way the inputs below do not show.
RECIPE = "wpf-images/1"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
SOURCE_LABEL = "https://github.com/weather-proxy/weather-proxy-fleet"

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
HOST_CA_BUNDLE = Path(os.environ.get("WPF_IMAGES_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclasses.dataclass(frozen=True)
class ImageNames:
    """The image references as containerd stores them (normalised, what CRI looks up)."""

    BASE: str = "localhost/wpf/python:3.11-bookworm"
    PROXY: str = f"ghcr.io/weather-proxy/proxy:{version.VERSION}"
    OPERATOR: str = f"ghcr.io/weather-proxy/operator:{version.VERSION}"
    EMULATOR: str = "docker.io/weather-proxy/openmeteo-emulator:e2e"
    REDIS: str = "localhost/wpf/redis:7.0-bookworm"
    POSTGRES: str = "localhost/wpf/postgres:15-bookworm"
    PAUSE: str = "localhost/wpf/pause:3.10"
    COREDNS: str = "localhost/wpf/coredns:1.15.0"
    METRICS_SERVER: str = "localhost/wpf/metrics-server:0.9.0"


IMAGE_NAMES = ImageNames()
BASE = IMAGE_NAMES.BASE
PROXY = IMAGE_NAMES.PROXY
OPERATOR = IMAGE_NAMES.OPERATOR
EMULATOR = IMAGE_NAMES.EMULATOR
REDIS = IMAGE_NAMES.REDIS
POSTGRES = IMAGE_NAMES.POSTGRES
PAUSE = IMAGE_NAMES.PAUSE
COREDNS = IMAGE_NAMES.COREDNS
METRICS_SERVER = IMAGE_NAMES.METRICS_SERVER
# What a node runs (the base is only a build input).
CLUSTER_IMAGES: tuple[str, ...] = (PROXY, OPERATOR, EMULATOR, REDIS, POSTGRES, PAUSE, COREDNS, METRICS_SERVER)


# --------------------------------------------------------------------------- names


def normalize_ref(ref: str) -> str:
    """The fully qualified form of an image reference, as containerd/CRI store it.

    ``redis`` -> ``docker.io/library/redis:latest``; ``weather-proxy/x:e2e`` ->
    ``docker.io/weather-proxy/x:e2e``; ``ghcr.io/a/b:1`` and ``localhost/a:1`` stay.
    """
    name, _, digest = ref.partition("@")
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}"
        first, _, rest = name.partition("/")
    if first == "docker.io" and "/" not in rest:
        name = f"docker.io/library/{rest}"
    last = name.rsplit("/", 1)[-1]
    if not digest and ":" not in last:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def slug(ref: str) -> str:
    """A file-name form of an image reference."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", ref).strip("-")


# --------------------------------------------------------------------------- .dockerignore


@dataclasses.dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]
    depth: int


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher's translation of a pattern to a regular expression."""
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
                if i + 1 < len(pattern) and pattern[i + 1] == "/":
                    i += 1
                    out += "(.*/)?"
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape(ch)
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out += f"[{body}]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


class DockerIgnore:
    """The rules of a ``.dockerignore``, matched as Docker and buildah match them.

    The last matching pattern wins, ``!`` re-includes, and a pattern matching a parent
    directory of a path matches the path. Walking prunes an excluded directory unless a
    ``!`` pattern names something under it (Docker's own shortcut).
    """

    def __init__(self, text: str) -> None:
        self.patterns: list[_Pattern] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            cleaned = os.path.normpath(line).lstrip("/")
            if cleaned in ("", "."):
                continue
            self.patterns.append(
                _Pattern(cleaned, exclusion, _pattern_regex(cleaned), len(cleaned.split("/")))
            )

    def excluded(self, path: str) -> bool:
        path = os.path.normpath(path).lstrip("/")
        parents = path.split("/")[:-1]
        verdict = False
        for pattern in self.patterns:
            match = bool(pattern.regex.match(path))
            if not match and parents and pattern.depth <= len(parents):
                match = bool(pattern.regex.match("/".join(parents[: pattern.depth])))
            if match:
                verdict = not pattern.exclusion
        return verdict

    def _may_include_under(self, directory: str) -> bool:
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def files(self, root: Path) -> list[str]:
        """The files (and symlinks) under ``root`` that reach the build context, sorted."""
        found: list[str] = []
        for current, dirs, names in os.walk(root):
            rel_dir = os.path.relpath(current, root)
            rel_dir = "" if rel_dir == "." else rel_dir
            keep: list[str] = []
            for name in sorted(dirs):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if (root / rel).is_symlink():
                    if not self.excluded(rel):
                        found.append(rel)
                elif not self.excluded(rel) or self._may_include_under(rel):
                    keep.append(name)
            dirs[:] = keep
            for name in names:
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if not self.excluded(rel):
                    found.append(rel)
        return sorted(found)


def context_digest(root: Path, ignore_text: str, *, always: Iterable[str] = ()) -> str:
    """sha256 over the paths, executable bits and contents of what the context sends."""
    digest = hashlib.sha256()
    for rel in sorted(set(DockerIgnore(ignore_text).files(root)) | set(always)):
        path = root / rel
        if path.is_symlink():
            kind, data = "l", os.readlink(path).encode()
        else:
            kind = "x" if os.access(path, os.X_OK) else "f"
            data = path.read_bytes()
        digest.update(f"{rel}\0{kind}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def _digest_json(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- plumbing


def cache_dir() -> Path:
    """The root of the image cache (archives, Go binaries, buildah's storage)."""
    override = os.environ.get(ENV_CACHE)
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "weather-proxy-fleet"


def archives_dir() -> Path:
    return cache_dir() / "images"


_START = time.monotonic()


def _log(message: str) -> None:
    print(f"[images {time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


class BuildError(RuntimeError):
    pass


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PATH", "")
    for extra in ("/usr/local/go/bin", "/usr/sbin", "/sbin"):
        if extra not in path.split(":") and Path(extra).is_dir():
            path = f"{path}:{extra}" if path else extra
    env["PATH"] = path
    return env


def _run(
    cmd: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    quiet: bool = False,
    capture: bool = False,
) -> str:
    """Run a command; its output goes to stderr (or is kept, and shown on failure)."""
    args = [str(c) for c in cmd]
    full_env = _tool_env()
    full_env.update(env or {})
    if capture or quiet:
        result = subprocess.run(
            args, cwd=cwd, env=full_env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-6000:] + result.stderr[-6000:])
            raise BuildError(f"{args[0]} exited with {result.returncode}: {' '.join(args)}")
        return result.stdout
    out: IO[str] | int = sys.stderr
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        out = subprocess.DEVNULL
    result2 = subprocess.run(
        args, cwd=cwd, env=full_env, stdout=out, stderr=out, check=False, stdin=subprocess.DEVNULL
    )
    if result2.returncode != 0:
        raise BuildError(f"{args[0]} exited with {result2.returncode}: {' '.join(args)}")
    return ""


def _require(tool: str) -> str:
    found = shutil.which(tool, path=_tool_env()["PATH"])
    if not found:
        raise BuildError(f"{tool!r} not found (Debian: apt-get install -y {tool})")
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path``: parallel callers build one at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for another image build ({path})...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Buildah:
    """buildah with its own vfs storage in the cache (never the system's)."""

    def __init__(self, root: Path, *, quiet: bool = False) -> None:
        self.root = root
        self.quiet = quiet

    def __call__(self, *args: str | Path, capture: bool = False) -> str:
        cmd: list[str | Path] = [
            _require("buildah"),
            "--root",
            self.root / "storage",
            "--runroot",
            self.root / "run",
            "--storage-driver",
            "vfs",
            *args,
        ]
        return _run(cmd, quiet=self.quiet, capture=capture)

    def image_id(self, ref: str) -> str | None:
        try:
            out = self("images", "--no-trunc", "--format", "{{.ID}}", ref, capture=True)
        except BuildError:
            return None
        ids = [line.strip().removeprefix("sha256:") for line in out.splitlines() if line.strip()]
        return ids[0] if ids else None

    def ensure_loaded(self, ref: str, archive: Path) -> None:
        """Make ``ref`` in the storage be the image of ``archive`` (pull it if not)."""
        wanted = archive_config_digest(archive)
        if self.image_id(ref) == wanted:
            return
        _log(f"loading {ref} into buildah's storage from {archive.name}")
        with contextlib.suppress(BuildError):
            self("rmi", "--force", ref, capture=True)
        self("pull", "--quiet", f"oci-archive:{archive}", capture=True)
        self("tag", wanted, ref, capture=True)

    def push(self, ref: str, archive: Path) -> None:
        archive.unlink(missing_ok=True)
        self("push", "--quiet", "--format", "oci", ref, f"oci-archive:{archive}:{ref}", capture=True)

    def commit_scratch(
        self, ref: str, *, add: Sequence[tuple[Path, str]], config: ImageConfig, extract: bool = False
    ) -> None:
        """An image from scratch with ``add`` = (source, destination) pairs and ``config``."""
        container = self("from", "--quiet", "scratch", capture=True).strip()
        try:
            for source, destination in add:
                self("add" if extract else "copy", container, source, destination, capture=True)
            self("config", *config.buildah_args(), container, capture=True)
            self("commit", "--quiet", "--format", "oci", "--rm", container, ref, capture=True)
        except BaseException:
            with contextlib.suppress(BuildError):
                self("rm", container, capture=True)
            raise


def _read_blob(tar: tarfile.TarFile, digest: str) -> Any:
    member = tar.extractfile("blobs/" + digest.replace(":", "/"))
    if member is None:
        raise BuildError(f"blob {digest} missing")
    return json.load(member)


def _archive_index(archive: Path) -> tuple[list[str], str]:
    """(ref names, config digest hex) of an OCI archive's single image."""
    with tarfile.open(archive) as tar:
        index_file = tar.extractfile("index.json")
        if index_file is None:
            raise BuildError(f"{archive}: no index.json")
        index = json.load(index_file)
        manifests = index.get("manifests", [])
        if not manifests:
            raise BuildError(f"{archive}: empty index")
        names = [
            m["annotations"][REF_NAME_ANNOTATION]
            for m in manifests
            if REF_NAME_ANNOTATION in m.get("annotations", {})
        ]
        manifest = _read_blob(tar, manifests[0]["digest"])
        config = str(manifest["config"]["digest"])
    return names, config.removeprefix("sha256:")


def archive_config_digest(archive: Path) -> str:
    return _archive_index(archive)[1]


def archive_ref_names(archive: Path) -> list[str]:
    return _archive_index(archive)[0]


# --------------------------------------------------------------------------- image recipes


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """What ``buildah config`` sets on an image made without a Dockerfile."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""
    env: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def buildah_args(self) -> list[str]:
        args: list[str] = []
        if self.entrypoint:
            args += ["--entrypoint", json.dumps(list(self.entrypoint))]
        if self.cmd:
            args += ["--cmd", json.dumps(list(self.cmd))]
        if self.user:
            args += ["--user", self.user]
        if self.workdir:
            args += ["--workingdir", self.workdir]
        for item in self.env:
            args += ["--env", item]
        for port in self.ports:
            args += ["--port", port]
        for key, value in self.labels:
            args += ["--label", f"{key}={value}"]
        return args

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _labels(title: str, description: str, version: str) -> tuple[tuple[str, str], ...]:
    return (
        ("org.opencontainers.image.title", title),
        ("org.opencontainers.image.description", description),
        ("org.opencontainers.image.source", SOURCE_LABEL),
        ("org.opencontainers.image.version", version),
    )


class Spec(Protocol):
    @property
    def ref(self) -> str: ...

    @property
    def short(self) -> str: ...

    def deps(self) -> tuple[str, ...]: ...

    def inputs(self, builder: Builder) -> dict[str, Any]: ...

    def build(self, builder: Builder, archive: Path) -> None: ...


# Keep man pages, docs (but the copyright files), info and translations out of the images.
_DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/bash-completion/*",
)
# Sets up the merged /usr and installs usr-is-merged (else apt picks usrmerge, and perl with it).
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
_CLEANUP_HOOK = (
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old'
    ' "$1"/var/cache/ldconfig/aux-cache "$1"/var/log/* "$1"/tmp/* "$1"/var/tmp/*'
)


@dataclasses.dataclass(frozen=True)
class DebianSpec:
    """A root filesystem from Debian packages (mmdebstrap), committed as one layer."""

    ref: str
    short: str
    variant: str
    packages: tuple[str, ...]
    hooks: tuple[str, ...]
    config: ImageConfig

    def deps(self) -> tuple[str, ...]:
        return ()

    def inputs(self, builder: Builder) -> dict[str, Any]:
        return {
            "kind": "debian",
            "suite": DEBIAN_SUITE,
            "mirror": DEBIAN_MIRROR,
            "variant": self.variant,
            "hooks-dir": MERGED_USR_HOOKS,
            "packages": list(self.packages),
            "dpkg": list(_DPKG_EXCLUDES),
            "hooks": [*self.hooks, _CLEANUP_HOOK],
            "config": self.config.as_json(),
        }

    def build(self, builder: Builder, archive: Path) -> None:
        rootfs = archive.with_suffix(".rootfs.tar")
        cmd: list[str | Path] = [
            _require("mmdebstrap"),
            f"--variant={self.variant}",
            "--mode=root",
            "--format=tar",
            "--skip=output/dev",
            f"--hook-dir={MERGED_USR_HOOKS}",
            "--include=" + ",".join(self.packages),
            *(f"--dpkgopt={opt}" for opt in _DPKG_EXCLUDES),
            *(f"--customize-hook={hook}" for hook in (*self.hooks, _CLEANUP_HOOK)),
            DEBIAN_SUITE,
            rootfs,
            DEBIAN_MIRROR,
        ]
        try:
            _log(f"{self.short}: mmdebstrap {DEBIAN_SUITE} ({', '.join(self.packages)})")
            _run(cmd, quiet=builder.quiet)
            _log(f"{self.short}: committing the root filesystem ({rootfs.stat().st_size >> 20} MiB)")
            builder.buildah.commit_scratch(self.ref, add=[(rootfs, "/")], config=self.config, extract=True)
        finally:
            rootfs.unlink(missing_ok=True)
        builder.buildah.push(self.ref, archive)


@dataclasses.dataclass(frozen=True)
class DockerfileSpec:
    """An image from one of the repository's Dockerfiles, on the local Debian base."""

    ref: str
    short: str
    dockerfile: str  # relative to REPO (the build context)
    build_args: tuple[tuple[str, str], ...] = ()
    base: str = BASE

    def ignore_file(self) -> Path:
        """The ignore file buildah reads: ``<Dockerfile>.dockerignore`` if any, else ``.dockerignore``."""
        specific = REPO / f"{self.dockerfile}.dockerignore"
        return specific if specific.exists() else REPO / ".dockerignore"

    def deps(self) -> tuple[str, ...]:
        return (self.base,)

    def all_build_args(self) -> list[tuple[str, str]]:
        return [("BASE_IMAGE", self.base), *self.build_args]

    def inputs(self, builder: Builder) -> dict[str, Any]:
        ignore = self.ignore_file()
        return {
            "kind": "dockerfile",
            "dockerfile": _file_digest(REPO / self.dockerfile),
            "ignore": ignore.relative_to(REPO).as_posix(),
            "context": context_digest(REPO, ignore.read_text(), always=[self.dockerfile]),
            "build_args": self.all_build_args(),
            "base": builder.key(self.base),
        }

    def build(self, builder: Builder, archive: Path) -> None:
        builder.buildah.ensure_loaded(self.base, builder.archive(self.base))
        args: list[str | Path] = [
            "build",
            "--isolation",
            "chroot",
            "--pull=never",
            "--format",
            "oci",
            "--layers=false",
            "-f",
            REPO / self.dockerfile,
            "--ignorefile",
            self.ignore_file(),
            "-t",
            self.ref,
        ]
        for key, value in self.all_build_args():
            args += ["--build-arg", f"{key}={value}"]
        # RUN steps (pip) trust what this machine trusts (an egress proxy's CA, say): the
        # host bundle is bind-mounted over the image's for the build, never committed.
        if HOST_CA_BUNDLE.is_file():
            args += ["--volume", f"{HOST_CA_BUNDLE}:{IMAGE_CA_BUNDLE}:ro"]
        _log(f"{self.short}: buildah build -f {self.dockerfile} (base {self.base})")
        builder.buildah(*args, REPO)
        builder.buildah.push(self.ref, archive)


@dataclasses.dataclass(frozen=True)
class BinarySpec:
    """An image FROM scratch holding one static binary built here (Go module or C)."""

    ref: str
    short: str
    binary: str  # the file name, installed as /<binary>
    config: ImageConfig
    go_module: str = ""  # a folder under hack/images with go.mod, go.sum, main.go
    ldflags: str = "-s -w"

    def deps(self) -> tuple[str, ...]:
        return ()

    def _source_inputs(self, builder: Builder) -> dict[str, Any]:
        if self.go_module:
            folder = HACK / self.go_module
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".go", ".mod", ".sum"))
            return {
                "go": builder.go_version(),
                "files": {p.name: _file_digest(p) for p in files},
                "ldflags": self.ldflags,
                "cgo": "0",
            }
        source = pause_source()
        return {"gcc": builder.gcc_version(), "pause.c": _file_digest(source), "cflags": list(PAUSE_CFLAGS)}

    def inputs(self, builder: Builder) -> dict[str, Any]:
        return {"kind": "binary", "binary": self.binary, "config": self.config.as_json()} | {
            "source": self._source_inputs(builder)
        }

    def compile(self, builder: Builder, key: str) -> Path:
        out_dir = cache_dir() / "images" / "bin" / f"{self.binary}-{key[:16]}"
        out = out_dir / self.binary
        if out.exists():
            return out
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f".{self.binary}.tmp"
        if self.go_module:
            _log(f"{self.short}: go build in hack/images/{self.go_module} (a cold build takes minutes)")
            _run(
                ["go", "build", "-mod=readonly", "-trimpath", f"-ldflags={self.ldflags}", "-o", tmp, "."],
                cwd=HACK / self.go_module,
                env={"CGO_ENABLED": "0"},
                quiet=builder.quiet,
            )
        else:
            _require("gcc")
            source = pause_source()
            _log(f"{self.short}: gcc {' '.join(PAUSE_CFLAGS)} {source}")
            _run(["gcc", *PAUSE_CFLAGS, "-o", tmp, source], quiet=builder.quiet)
            _run(["strip", tmp], quiet=builder.quiet)
        tmp.rename(out)
        return out

    def build(self, builder: Builder, archive: Path) -> None:
        binary = self.compile(builder, builder.key(self.ref))
        _log(f"{self.short}: image FROM scratch with /{self.binary} ({binary.stat().st_size >> 20} MiB)")
        builder.buildah.commit_scratch(self.ref, add=[(binary, f"/{self.binary}")], config=self.config)
        builder.buildah.push(self.ref, archive)


PAUSE_CFLAGS = ("-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.10-wpf")


def _kubernetes_version() -> str:
    text = (REPO / "hack" / "controlplane" / "go.mod").read_text()
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise BuildError("k8s.io/kubernetes not found in hack/controlplane/go.mod")
    return match.group(1)


def pause_source() -> Path:
    """Kubernetes' build/pause/linux/pause.c from the Go module cache (downloaded if absent)."""
    version = _kubernetes_version()
    modcache = os.environ.get("GOMODCACHE") or str(
        Path(os.environ.get("GOPATH") or Path.home() / "go") / "pkg/mod"
    )
    source = Path(modcache) / f"k8s.io/kubernetes@{version}/build/pause/linux/pause.c"
    if source.exists():
        return source
    _log(f"pause: go mod download k8s.io/kubernetes@{version}")
    out = _run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        cwd=REPO / "hack" / "controlplane",
        capture=True,
    )
    source = Path(json.loads(out)["Dir"]) / "build/pause/linux/pause.c"
    if not source.exists():
        raise BuildError(f"{source} not found")
    return source


def go_module_version(folder: str, module: str) -> str:
    """The version of ``module`` required by hack/images/<folder>/go.mod."""
    for line in (HACK / folder / "go.mod").read_text().splitlines():
        words = line.replace("require", "").split()
        if len(words) >= 2 and words[0] == module:
            return words[1]
    raise BuildError(f"{module} not in hack/images/{folder}/go.mod")


SPECS: dict[str, Spec] = {
    spec.ref: spec
    for spec in (
        DebianSpec(
            ref=BASE,
            short="base",
            variant="apt",
            packages=("python3.11", "python3-venv", "ca-certificates", "tzdata"),
            hooks=('ln -sf /usr/bin/python3 "$1/usr/local/bin/python"',),
            config=ImageConfig(
                cmd=("python3",),
                env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"),
                labels=_labels("python", "Debian bookworm with python3.11 (python -m venv works)", "3.11"),
            ),
        ),
        DockerfileSpec(
            ref=PROXY,
            short="proxy",
            dockerfile="Dockerfile.proxy",
            build_args=(("VERSION", version.VERSION),),
        ),
        DockerfileSpec(
            ref=OPERATOR,
            short="operator",
            dockerfile="Dockerfile.operator",
            build_args=(("VERSION", version.VERSION),),
        ),
        DockerfileSpec(ref=EMULATOR, short="emulator", dockerfile="e2e/Dockerfile.emulator"),
        DebianSpec(
            ref=REDIS,
            short="redis",
            variant="essential",
            packages=("redis-server", "redis-tools"),
            # The operator runs it as 999:999 with a read-only root and /data mounted.
            hooks=('mkdir -p "$1/data" && chown 999:999 "$1/data" && chmod 0750 "$1/data"',),
            config=ImageConfig(
                cmd=("redis-server", "--dir", "/data"),
                user="999:999",
                workdir="/data",
                ports=("6379",),
                env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
                labels=_labels("redis", "Debian bookworm's redis-server and redis-cli", "7.0"),
            ),
        ),
        DebianSpec(
            ref=POSTGRES,
            short="postgres",
            variant="essential",
            packages=("postgresql-15",),
            hooks=(
                # The package's own cluster is not wanted: the pod initialises its volume.
                'rm -rf "$1/var/lib/postgresql/15/main" "$1/etc/postgresql/15/main"',
                # The operator runs it as 999:999 (the official Debian-based images' postgres user):
                # initdb needs the uid in /etc/passwd.
                "sed -i 's/^postgres:x:[0-9]*:[0-9]*:/postgres:x:999:999:/' \"$1/etc/passwd\""
                " && sed -i 's/^postgres:x:[0-9]*:/postgres:x:999:/' \"$1/etc/group\""
                ' && chown -R 999:999 "$1/var/lib/postgresql"',
            ),
            config=ImageConfig(
                cmd=("postgres", "--version"),
                user="999:999",
                ports=("5432",),
                env=(
                    "PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8",
                ),
                labels=_labels(
                    "postgres", "Debian bookworm's PostgreSQL 15 (initdb, postgres, pg_isready)", "15"
                ),
            ),
        ),
        BinarySpec(
            ref=PAUSE,
            short="pause",
            binary="pause",
            config=ImageConfig(
                entrypoint=("/pause",),
                user="65535:65535",
                labels=_labels(
                    "pause", "Kubernetes pause (CRI sandbox), from build/pause/linux/pause.c", "3.10"
                ),
            ),
        ),
        BinarySpec(
            ref=COREDNS,
            short="coredns",
            binary="coredns",
            go_module="coredns",
            ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=v1.15.0",
            config=ImageConfig(
                entrypoint=("/coredns",),
                user="65532:65532",
                ports=("53/udp", "53/tcp", "9153/tcp"),
                labels=_labels("coredns", "CoreDNS built from its Go module", "1.15.0"),
            ),
        ),
        BinarySpec(
            ref=METRICS_SERVER,
            short="metrics-server",
            binary="metrics-server",
            go_module="metrics-server",
            ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=v0.9.0"
            " -X k8s.io/component-base/version.gitVersion=v0.9.0",
            config=ImageConfig(
                entrypoint=("/metrics-server",),
                user="65534:65534",
                ports=("10250/tcp",),
                labels=_labels("metrics-server", "metrics-server built from its Go module", "0.9.0"),
            ),
        ),
    )
}


def _bases() -> set[str]:
    return {dep for spec in SPECS.values() for dep in spec.deps()}


ALIASES: dict[str, str] = {spec.short: ref for ref, spec in SPECS.items()} | {"python": BASE}


def resolve(name: str) -> str:
    """The image reference of a short name (``proxy``), a reference, or a short reference."""
    if name in ALIASES:
        return ALIASES[name]
    if name in SPECS:
        return name
    normalised = normalize_ref(name)
    if normalised in SPECS:
        return normalised
    raise KeyError(f"unknown image {name!r}; known: {', '.join(ALIASES)}")


# --------------------------------------------------------------------------- build


@dataclasses.dataclass(frozen=True)
class BuiltImage:
    name: str  # the normalised reference (what containerd lists)
    archive: Path
    key: str
    cached: bool
    seconds: float = 0.0


class Builder:
    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.buildah = Buildah(cache_dir() / "buildah", quiet=quiet)
        self._keys: dict[str, str] = {}
        self._go_version: str | None = None
        self._gcc_version: str | None = None

    def go_version(self) -> str:
        if self._go_version is None:
            self._go_version = _run(["go", "env", "GOVERSION"], capture=True).strip()
        return self._go_version

    def gcc_version(self) -> str:
        if self._gcc_version is None:
            self._gcc_version = _run(["gcc", "-dumpfullversion"], capture=True).strip()
        return self._gcc_version

    def key(self, ref: str) -> str:
        if ref not in self._keys:
            spec = SPECS[ref]
            self._keys[ref] = _digest_json({"recipe": RECIPE, "ref": ref, "inputs": spec.inputs(self)})
        return self._keys[ref]

    def archive(self, ref: str) -> Path:
        return archives_dir() / f"{slug(ref)}-{self.key(ref)[:16]}.oci.tar"

    def ensure(self, ref: str, *, rebuild: bool = False) -> BuiltImage:
        started = time.monotonic()
        archive = self.archive(ref)
        if archive.exists() and not rebuild:
            return BuiltImage(ref, archive, self.key(ref), cached=True, seconds=time.monotonic() - started)
        with _locked(archives_dir() / ".build.lock"):
            if archive.exists() and not rebuild:  # another caller built it meanwhile
                return BuiltImage(ref, archive, self.key(ref), True, time.monotonic() - started)
            spec = SPECS[ref]
            for dep in spec.deps():
                self.ensure(dep)
            _log(f"building {ref} (key {self.key(ref)[:16]})")
            archive.parent.mkdir(parents=True, exist_ok=True)
            partial = archive.with_name(f".{archive.name}.partial")
            partial.unlink(missing_ok=True)
            try:
                spec.build(self, partial)
                partial.rename(archive)
            finally:
                partial.unlink(missing_ok=True)
                if ref not in _bases():  # bases stay in buildah's storage for the images on them
                    with contextlib.suppress(BuildError):
                        self.buildah("rmi", ref, capture=True)
            _prune(ref, keep=archive)
            seconds = time.monotonic() - started
            _log(f"built {ref}: {archive} ({archive.stat().st_size / 2**20:.1f} MiB, {seconds:.0f}s)")
            return BuiltImage(ref, archive, self.key(ref), cached=False, seconds=seconds)


def _prune(ref: str, *, keep: Path, retain: int = 3) -> None:
    """Drop all but the newest ``retain`` archives of ``ref`` (other keys)."""
    pattern = re.compile(re.escape(slug(ref)) + r"-[0-9a-f]{16}\.oci\.tar$")
    others = sorted(
        (p for p in keep.parent.iterdir() if pattern.match(p.name) and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in others[retain - 1 :]:
        old.unlink(missing_ok=True)


def build_images(
    names: Iterable[str] | None = None, *, rebuild: Iterable[str] = (), quiet: bool = False
) -> list[BuiltImage]:
    """Build (or find in the cache) the named images; all of them when ``names`` is None.

    ``names`` are short names (``proxy``, ``redis``...) or references. ``rebuild`` forces
    a fresh build of those even when their archive exists.
    """
    refs = [resolve(n) for n in names] if names else list(SPECS)
    forced = {resolve(n) for n in rebuild}
    builder = Builder(quiet=quiet)
    return [builder.ensure(ref, rebuild=ref in forced) for ref in refs]


# --------------------------------------------------------------------------- import


def tag_images(tags: Mapping[str, str], *, address: str, namespace: str = "k8s.io", ctr: str = "ctr") -> None:
    """``ctr images tag`` each image (key) under a second name (value) in the containerd at ``address``."""
    binary = shutil.which(ctr, path=_tool_env()["PATH"]) or ctr
    base = [binary, "--address", address, "--namespace", namespace]
    for source, target in tags.items():
        _log(f"tagging {source} as {target}")
        _run([*base, "images", "tag", "--force", normalize_ref(source), normalize_ref(target)], capture=True)


def import_images(
    archives: Iterable[Path | BuiltImage],
    *,
    address: str,
    namespace: str = "k8s.io",
    snapshotter: str | None = None,
    ctr: str = "ctr",
) -> list[str]:
    """``ctr images import`` each archive into the containerd at ``address``.

    The archives name their image with the ``org.opencontainers.image.ref.name``
    annotation in its normalised form, so containerd stores exactly that name. Returns
    the names, each checked to be listed by ``ctr images ls`` afterwards.
    """
    binary = shutil.which(ctr, path=_tool_env()["PATH"]) or ctr
    base = [binary, "--address", address, "--namespace", namespace]
    names: list[str] = []
    for item in archives:
        archive = item.archive if isinstance(item, BuiltImage) else Path(item)
        refs = archive_ref_names(archive)
        if not refs:
            raise BuildError(f"{archive}: no {REF_NAME_ANNOTATION} annotation")
        cmd = [*base, "images", "import"]
        if snapshotter:
            cmd += ["--snapshotter", snapshotter]
        _log(f"importing {', '.join(refs)} into {address} ({namespace})")
        _run([*cmd, str(archive)], capture=True)
        names += refs
    listed = set(_run([*base, "images", "ls", "-q"], capture=True).split())
    missing = [n for n in names if n not in listed]
    if missing:
        raise BuildError(f"not listed by containerd after the import: {', '.join(missing)}")
    return names


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.images", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the images (all by default) into the archive cache")
    build.add_argument("names", nargs="*", help=f"short names ({', '.join(ALIASES)}) or references")
    build.add_argument(
        "--rebuild", action="append", default=[], metavar="NAME", help="build NAME even if cached"
    )
    build.add_argument("-q", "--quiet", action="store_true", help="show tool output only on failure")
    imp = sub.add_parser("import", help="build if needed, then import into a containerd")
    imp.add_argument("names", nargs="*", help="default: every image a node runs (not the base)")
    imp.add_argument("--address", required=True, help="containerd socket")
    imp.add_argument("--namespace", default="k8s.io")
    imp.add_argument("--snapshotter", default=None)
    imp.add_argument("-q", "--quiet", action="store_true")
    sub.add_parser("list", help="name, key and archive of each image (nothing is built)")
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            builder = Builder()
            for ref, spec in SPECS.items():
                archive = builder.archive(ref)
                state = "cached" if archive.exists() else "missing"
                print(f"{spec.short:15} {ref:50} {state:8} {archive}")
            return 0
        if args.command == "build":
            for image in build_images(args.names or None, rebuild=args.rebuild, quiet=args.quiet):
                state = "cached" if image.cached else "built"
                print(f"{image.name:50} {image.archive} {state:6} {image.seconds:7.1f}s", flush=True)
            return 0
        images = build_images(args.names or CLUSTER_IMAGES, quiet=args.quiet)
        for name in import_images(
            images, address=args.address, namespace=args.namespace, snapshotter=args.snapshotter
        ):
            print(name)
        return 0
    except (BuildError, KeyError) as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
