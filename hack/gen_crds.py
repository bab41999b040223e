"""Regenerate crds/ and docs/api-reference.md from the pydantic models in operator/weather_operator/api.

python hack/gen_crds.py            # write crds/*.yaml and docs/api-reference.md
python hack/gen_crds.py --check    # exit 1 (and name the files) when one of them is stale
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from weather_operator.api import crd, reference

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRDS_DIR = ROOT / "crds"
REFERENCE = ROOT / "docs" / "api-reference.md"


def reference_is_stale(path: pathlib.Path = REFERENCE) -> bool:
    """True when the committed reference differs from what the models generate."""
    return not path.exists() or path.read_text(encoding="utf-8") != reference.document()


def stale_files(directory: pathlib.Path) -> list[str]:
    """Names of the files in ``directory`` that differ from what the models generate."""
    stale = []
    for name, text in crd.documents().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write(directory: pathlib.Path) -> list[str]:
    """Write every generated file; returns the names of the files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = stale_files(directory)
    for name, text in crd.documents().items():
        (directory / name).write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail when crds/ differs from the models")
    parser.add_argument("--dir", type=pathlib.Path, default=CRDS_DIR, help="output folder (default: crds/)")
    parser.add_argument("--reference", type=pathlib.Path, default=REFERENCE, help="reference Markdown file")
    args = parser.parse_args(argv)
    if args.check:
        stale = [str(args.dir / name) for name in stale_files(args.dir)]
        if reference_is_stale(args.reference):
            stale.append(str(args.reference))
        for name in stale:
            print(f"{name}: stale; run `python hack/gen_crds.py`", file=sys.stderr)
        return 1 if stale else 0
    for name in write(args.dir):
        print(f"wrote {args.dir / name}")
    if reference_is_stale(args.reference):
        args.reference.parent.mkdir(parents=True, exist_ok=True)
        args.reference.write_text(reference.document(), encoding="utf-8")
        print(f"wrote {args.reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
