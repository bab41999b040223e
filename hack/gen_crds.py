"""Regenerate crds/ and the references from the pydantic models.

crds/*.yaml and docs/api-reference.md come from operator/weather_operator/api,
docs/config-reference.md (config.yaml and keys.yaml) from proxy/weather_proxy/config.py.

python hack/gen_crds.py            # write crds/*.yaml, docs/api-reference.md, docs/config-reference.md
python hack/gen_crds.py --check    # exit 1 (and name the files) when one of them is stale
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from weather_operator.api import crd, reference
from weather_proxy import runtime

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRDS_DIR = ROOT / "crds"
REFERENCE = ROOT / "docs" / "api-reference.md"
CONFIG_REFERENCE = ROOT / "docs" / "config-reference.md"


def _is_stale(path: pathlib.Path, text: str) -> bool:
    return not path.exists() or path.read_text(encoding="utf-8") != text


def reference_is_stale(path: pathlib.Path = REFERENCE) -> bool:
    """True when the committed reference differs from what the models generate."""
    return _is_stale(path, reference.document())


def config_reference() -> str:
    """docs/config-reference.md: config.yaml and keys.yaml, fields the proxy reads only at start marked."""
    return reference.config_document(runtime.RESTART_FIELDS)


def config_reference_is_stale(path: pathlib.Path = CONFIG_REFERENCE) -> bool:
    """True when the committed config.yaml/keys.yaml reference differs from what the models generate."""
    return _is_stale(path, config_reference())


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
    parser.add_argument("--check", action="store_true", help="fail when an output is stale")
    parser.add_argument("--dir", type=pathlib.Path, default=CRDS_DIR, help="output folder (default: crds/)")
    parser.add_argument("--reference", type=pathlib.Path, default=REFERENCE, help="reference Markdown file")
    parser.add_argument(
        "--config-reference",
        type=pathlib.Path,
        default=CONFIG_REFERENCE,
        help="config.yaml/keys.yaml reference Markdown file (default: docs/config-reference.md)",
    )
    args = parser.parse_args(argv)
    documents = ((args.reference, reference.document()), (args.config_reference, config_reference()))
    if args.check:
        stale = [str(args.dir / name) for name in stale_files(args.dir)]
        stale += [str(path) for path, text in documents if _is_stale(path, text)]
        for name in stale:
            print(f"{name}: stale; run `python hack/gen_crds.py`", file=sys.stderr)
        return 1 if stale else 0
    for name in write(args.dir):
        print(f"wrote {args.dir / name}")
    for path, text in documents:
        if _is_stale(path, text):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
