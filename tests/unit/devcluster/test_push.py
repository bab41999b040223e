"""``make push`` (``devcluster.push``): where each image goes, and a real ``buildah push`` of an archive.

No container registry is reachable from these machines, so the push itself is checked with
buildah's ``oci:`` transport (an OCI layout on disk): the same ``buildah push`` of the same
archive, loaded the same way, to a destination that needs no network. A registry
(``docker://``) is only the destination's transport.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from devcluster import images, push
from tests.unit.delivery import support


@pytest.mark.parametrize(
    ("ref", "registry", "tag", "expected"),
    [
        (images.PROXY, "registry.example.com/wpf", "0.1.0", "docker://registry.example.com/wpf/proxy:0.1.0"),
        (images.OPERATOR, "localhost:5000/", "dev", "docker://localhost:5000/operator:dev"),
        (images.PROXY, "oci:/srv/images", "1.2", "oci:/srv/images/proxy:1.2"),
        ("redis", "r.example", "7", "docker://r.example/redis:7"),
    ],
)
def test_each_image_goes_to_the_registry_under_its_own_name(
    ref: str, registry: str, tag: str, expected: str
) -> None:
    assert push.destination(ref, registry, tag) == expected


@pytest.mark.parametrize(("registry", "tag", "word"), [("", "1", "REGISTRY"), ("r.example", "a/b", "TAG")])
def test_a_bad_registry_or_tag_is_refused_before_anything_is_built(
    registry: str, tag: str, word: str
) -> None:
    with pytest.raises(ValueError, match=word):
        push.destination(images.PROXY, registry, tag)
    assert push.main(["--registry", registry, "--tag", tag]) == 1


def test_make_push_pushes_the_proxy_and_the_operator_to_registry_and_tag() -> None:
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "push", "REGISTRY=r.example/wpf", "TAG=t1"],
        cwd=support.REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "-m devcluster.push --registry r.example/wpf --tag t1" in dry
    assert push.PUSHED == ("proxy", "operator")


def _blob(tar: tarfile.TarFile, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def tiny_archive(path: Path, ref: str) -> str:
    """An OCI archive of a one-file image named ``ref`` (as ``make images`` names them); its config digest."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as rootfs:
        _file(rootfs, "hello.txt", b"pushed by make push\n")
    layer_bytes = layer.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"]},
        }
    ).encode()
    with tarfile.open(path, "w") as tar:
        layer_desc = _blob(tar, layer_bytes)
        config_desc = _blob(tar, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
            }
        ).encode()
        manifest_desc = _blob(tar, manifest)
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    **manifest_desc,
                    "annotations": {images.REF_NAME_ANNOTATION: ref},
                }
            ],
        }
        _file(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _file(tar, "index.json", json.dumps(index).encode())
    return str(config_desc["digest"])


def test_buildah_pushes_the_archive_as_registry_name_and_tag(tmp_path: Path) -> None:
    if shutil.which("buildah") is None:
        pytest.fail("buildah is not installed (make node-packages installs it)")
    archive = tmp_path / "proxy.oci.tar"
    config_digest = tiny_archive(archive, images.PROXY)
    buildah = images.Buildah(tmp_path / "buildah", quiet=True)
    try:
        pushed = push.push(
            [(images.PROXY, archive)], f"oci:{tmp_path / 'registry'}", "9.9.9", buildah=buildah
        )
    finally:
        with contextlib.suppress(images.BuildError):
            buildah("rmi", "--all", "--force", capture=True)
    (line,) = pushed
    assert line.startswith(f"oci:{tmp_path / 'registry'}/proxy:9.9.9@sha256:")
    layout = tmp_path / "registry" / "proxy"
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m["annotations"][images.REF_NAME_ANNOTATION] == "9.9.9"]
    assert line.endswith(entry["digest"])  # the digest buildah reports is the pushed manifest's
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    assert manifest["config"]["digest"] == config_digest  # the very image make images built
