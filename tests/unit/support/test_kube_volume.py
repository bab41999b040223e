"""KubeVolume updates files like the kubelet does: one atomic ``..data`` symlink swap."""

from __future__ import annotations

import os
import pathlib

from testbed import proxy_process


def test_first_write_creates_data_link_and_file_links(tmp_path: pathlib.Path) -> None:
    volume = proxy_process.KubeVolume(tmp_path / "keys")
    volume.write({"keys.yaml": "keys: []\n"})
    visible = volume.file("keys.yaml")
    assert visible.is_symlink()
    assert os.readlink(visible) == "..data/keys.yaml"
    assert (volume.path / "..data").is_symlink()
    assert visible.read_text() == "keys: []\n"


def test_update_swaps_the_data_link_and_removes_the_old_dir(tmp_path: pathlib.Path) -> None:
    volume = proxy_process.KubeVolume(tmp_path / "keys")
    volume.write({"keys.yaml": "one"})
    first = os.readlink(volume.path / "..data")
    volume.write({"keys.yaml": "two"})
    second = os.readlink(volume.path / "..data")
    assert first != second
    assert not (volume.path / first).exists()
    assert volume.file("keys.yaml").read_text() == "two"
    assert sorted(p.name for p in volume.path.iterdir()) == sorted(["..data", "keys.yaml", second])


def test_key_entry_holds_only_the_hash() -> None:
    entry = proxy_process.key_entry("weather/team-a", "test")
    assert entry.sha256 == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert "test" not in proxy_process.to_yaml(entry).replace("weather/team-a", "")
