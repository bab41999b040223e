"""The lowest versions pyproject.toml allows, as pins: the constraints of ``make test-minimums``.

``python -m hack.dependencies minimums [--output FILE]`` writes ``name==lower-bound`` for each
requirement of the project and of every extra (the ``>=`` of its specifier), with its
environment marker. ``make test-minimums`` installs the project with them into a fresh
virtualenv, wheels only, and runs the unit tests there: a minimum that the code outgrew
then fails a test instead of a user's install. Transitive dependencies are left to the
resolver (they get their newest versions that fit).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys
import tomllib
from collections.abc import Iterator, Sequence

REPO = pathlib.Path(__file__).resolve().parents[1]
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<spec>[^;]*?)\s*"
    r"(?:;\s*(?P<marker>.+?))?\s*$"
)
LOWER_BOUND = re.compile(r">=\s*([^,\s]+)")


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One line of ``dependencies`` or of an extra, as far as the pins need it."""

    name: str
    extras: tuple[str, ...]
    specifier: str
    marker: str | None
    group: str  # "dependencies" or the extra's name

    @property
    def key(self) -> str:
        """The name as package indexes compare it (PEP 503)."""
        return canonical(self.name)

    @property
    def lower_bound(self) -> str | None:
        found = LOWER_BOUND.search(self.specifier)
        return found.group(1) if found else None


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(line: str, group: str) -> Requirement:
    found = REQUIREMENT.match(line)
    if not found:
        raise ValueError(f"{group}: cannot read the requirement {line!r}")
    extras = tuple(e.strip() for e in (found.group("extras") or "").split(",") if e.strip())
    return Requirement(found.group("name"), extras, found.group("spec"), found.group("marker"), group)


def requirements(pyproject: pathlib.Path = REPO / "pyproject.toml") -> Iterator[Requirement]:
    """Every requirement of the project and its extras, self-references (``project[extra]``) left out."""
    project = tomllib.loads(pyproject.read_text())["project"]
    own = canonical(project["name"])
    groups = {"dependencies": project.get("dependencies", []), **project.get("optional-dependencies", {})}
    for group, lines in groups.items():
        for line in lines:
            requirement = parse(line, group)
            if requirement.key != own:
                yield requirement


def minimum_pins(pyproject: pathlib.Path = REPO / "pyproject.toml") -> list[str]:
    """``name==lower-bound[ ; marker]`` for every requirement that has a lower bound, sorted by name."""
    pins: dict[str, str] = {}
    for requirement in requirements(pyproject):
        bound = requirement.lower_bound
        if bound is None:
            continue
        pin = f"{requirement.key}=={bound}"
        if requirement.marker:
            pin += f" ; {requirement.marker}"
        previous = pins.setdefault(requirement.key, pin)
        if previous != pin:
            raise ValueError(f"{requirement.name}: two lower bounds ({previous} and {pin})")
    return [pins[key] for key in sorted(pins)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.dependencies", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    minimums = commands.add_parser("minimums", help="write the lower bounds as pins (a constraints file)")
    minimums.add_argument("--output", type=pathlib.Path, help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    text = (
        "# The lowest versions pyproject.toml allows (python -m hack.dependencies minimums).\n"
        + "\n".join(minimum_pins())
        + "\n"
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
