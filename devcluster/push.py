"""Push the images ``make images`` built to a registry of your own (``make push REGISTRY=...``).

``python -m devcluster.push --registry REGISTRY [--tag TAG] [NAME ...]`` takes the OCI archives
of the project's images (the proxy and the operator by default) from the image cache
(``devcluster.images``; built first when missing), loads each into buildah's storage there and
``buildah push``-es it as ``REGISTRY/<name>:TAG``: ``ghcr.io/weather-proxy/proxy:0.1.0`` becomes
``registry.example.com/wpf/proxy:0.1.0`` with ``--registry registry.example.com/wpf``. Those
are the names the chart (``image.registry``) and ``make release REGISTRY=...`` point at.

REGISTRY is a registry path (the ``docker://`` transport) or any other destination transport
buildah knows: ``oci:/srv/images`` writes an OCI layout per image (``/srv/images/proxy``, tag
as its reference) with no registry at all. Credentials are buildah's own: ``buildah login
REGISTRY`` first, or ``REGISTRY_AUTH_FILE``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devcluster import images
from weather_proxy import version

PUSHED = ("proxy", "operator")
"""What ``make push`` pushes: the images a cluster pulls from the project (Redis and PostgreSQL
come from Docker Hub unless a fleet's spec names others)."""
TRANSPORTS = ("docker://", "oci:", "oci-archive:", "dir:", "docker-archive:", "containers-storage:")


def repository(ref: str) -> str:
    """The last path element of an image reference: ``ghcr.io/weather-proxy/proxy:0.1.0`` -> ``proxy``."""
    name = images.normalize_ref(ref).partition("@")[0]
    return name.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def destination(ref: str, registry: str, tag: str) -> str:
    """Where ``ref`` goes: ``docker://REGISTRY/<repository>:TAG`` (or REGISTRY's own transport)."""
    if not registry.strip("/"):
        raise ValueError("REGISTRY must not be empty (e.g. registry.example.com/weather-proxy)")
    if not tag or ":" in tag or "/" in tag or "@" in tag:
        raise ValueError(f"TAG {tag!r} is not an image tag (letters, digits, '.', '_' or '-')")
    transport = "" if registry.startswith(TRANSPORTS) else "docker://"
    return f"{transport}{registry.rstrip('/')}/{repository(ref)}:{tag}"


def push(
    archives: Sequence[tuple[str, Path]],
    registry: str,
    tag: str,
    *,
    tls_verify: bool = True,
    buildah: images.Buildah | None = None,
) -> list[str]:
    """Push each (reference, archive) to ``registry`` under ``tag``; the destinations with their digests."""
    tool = buildah or images.Buildah(images.cache_dir() / "buildah", quiet=True)
    pushed: list[str] = []
    for ref, archive in archives:
        target = destination(ref, registry, tag)
        for local in ("oci:", "dir:"):
            if target.startswith(local):  # buildah makes the layout, not the folders above it
                Path(target.removeprefix(local)).parent.mkdir(parents=True, exist_ok=True)
        tool.ensure_loaded(ref, archive)
        digest_file = archive.with_name(f".{archive.name}.pushed-digest")
        try:
            tool(
                "push",
                "--quiet",
                f"--tls-verify={str(tls_verify).lower()}",
                "--digestfile",
                digest_file,
                ref,
                target,
                capture=True,
            )
            digest = digest_file.read_text().strip() if digest_file.exists() else ""
        finally:
            digest_file.unlink(missing_ok=True)
        pushed.append(f"{target}@{digest}" if digest else target)
    return pushed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.push", description=__doc__.split("\n")[0])
    parser.add_argument(
        "names", nargs="*", default=list(PUSHED), help=f"images (default: {' '.join(PUSHED)})"
    )
    parser.add_argument("--registry", required=True, help="e.g. registry.example.com/weather-proxy")
    parser.add_argument("--tag", default=version.VERSION, help="default: the project's version")
    parser.add_argument(
        "--tls-verify", default="true", choices=("true", "false"), help="false for a plain-HTTP registry"
    )
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            destination(images.resolve(name), args.registry, args.tag)  # refuse a bad value before building
        built = images.build_images(args.names, quiet=True)
        archives = [(image.name, image.archive) for image in built]
        for line in push(archives, args.registry, args.tag, tls_verify=args.tls_verify == "true"):
            print(line, flush=True)
    except (images.BuildError, KeyError, ValueError) as exc:
        print(f"push: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
