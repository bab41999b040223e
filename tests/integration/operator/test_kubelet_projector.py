"""The dev stack's kubelet-style projection: atomic ``..data`` swaps, stale files removed.

Pure filesystem behaviour: no cluster needed.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from hack import kubelet_projector


def test_files_are_symlinks_through_data_and_swapped_atomically(tmp_path: Path) -> None:
    volume = kubelet_projector.ProjectedVolume(tmp_path / "vol")
    assert volume.current() == {}
    assert volume.write({"config.yaml": b"a: 1\n", "extra": b"x"})
    first_target = os.readlink(tmp_path / "vol" / "..data")
    assert (tmp_path / "vol" / "config.yaml").read_text() == "a: 1\n"
    assert os.readlink(tmp_path / "vol" / "config.yaml") == "..data/config.yaml"

    assert not volume.write({"config.yaml": b"a: 1\n", "extra": b"x"}), "same content: no swap"
    assert os.readlink(tmp_path / "vol" / "..data") == first_target

    assert volume.write({"config.yaml": b"a: 2\n"})
    assert os.readlink(tmp_path / "vol" / "..data") != first_target
    assert (tmp_path / "vol" / "config.yaml").read_text() == "a: 2\n"
    assert not (tmp_path / "vol" / "extra").exists(), "a key gone from the object is gone from the volume"
    assert not (tmp_path / "vol" / first_target).exists(), "the previous generation is removed"
    assert not (tmp_path / "vol" / "..data_tmp").exists()


def test_a_nested_volume_survives_the_parents_swap(tmp_path: Path) -> None:
    parent = kubelet_projector.ProjectedVolume(tmp_path / "etc")
    child = kubelet_projector.ProjectedVolume(tmp_path / "etc" / "keys")
    parent.write({"config.yaml": b"v1"})
    child.write({"keys.yaml": b"keys: []\n"})
    parent.write({"config.yaml": b"v2"})
    assert (tmp_path / "etc" / "keys" / "keys.yaml").read_text() == "keys: []\n"


def test_secret_data_is_base64_decoded_and_configmap_data_is_not() -> None:
    secret = {"kind": "Secret", "data": {"keys.yaml": base64.b64encode(b"keys: []\n").decode()}}
    config_map = {"kind": "ConfigMap", "data": {"config.yaml": "a: 1\n"}}
    assert kubelet_projector.object_files(secret) == {"keys.yaml": b"keys: []\n"}
    assert kubelet_projector.object_files(config_map) == {"config.yaml": b"a: 1\n"}
    assert kubelet_projector.object_files({"kind": "ConfigMap"}) == {}


def test_projector_applies_the_transform_and_counts_changes(tmp_path: Path) -> None:
    seen: list[str] = []
    projector = kubelet_projector.Projector(
        None,
        "ConfigMap",
        "ns",
        "cm",
        kubelet_projector.ProjectedVolume(tmp_path),
        transform=lambda name, content: content.upper(),
        on_change=seen.append,
    )
    assert projector.project({"data": {"f": "abc"}})
    assert not projector.project({"data": {"f": "abc"}})
    assert (tmp_path / "f").read_bytes() == b"ABC"
    assert projector.updates == 1
    assert seen == ["ConfigMap/cm"]
