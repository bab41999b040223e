"""Golden files: the exact objects a renderer produces, as readable YAML under tests/golden/.

Refresh after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/operator/render``
and review the diff like code.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import yaml

GOLDEN_DIR = pathlib.Path(__file__).resolve().parents[3] / "golden"


def _update() -> bool:
    return os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (config.yaml, PromQL) as literal blocks, so they read as written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)


def check_case(case: str, files: dict[str, str]) -> None:
    """Compare ``files`` (name -> text) with tests/golden/<case>/, or rewrite it under UPDATE_GOLDEN=1."""
    directory = GOLDEN_DIR / case
    if _update():
        directory.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in directory.iterdir()} - set(files):
            (directory / stale).unlink()
        for name, text in files.items():
            (directory / name).write_text(text, encoding="utf-8")
        return
    hint = "run `UPDATE_GOLDEN=1 pytest tests/unit/operator/render` and review the diff"
    assert directory.is_dir(), f"no golden files for case {case!r}: {hint}"
    on_disk = {p.name for p in directory.iterdir()}
    assert on_disk == set(files), f"golden files of {case!r} differ in name: {hint}"
    for name, text in files.items():
        expected = (directory / name).read_text(encoding="utf-8")
        assert text == expected, f"tests/golden/{case}/{name} differs: {hint}"
