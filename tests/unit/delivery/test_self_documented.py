"""The project documents itself: no file points at a design document the repository does not hold.

Comments, docstrings and docs once cited sections of an outside design document by number; what
they pointed at is now docs/contracts.md: its section headings are the stable anchors.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.unit.delivery import support

# Spelled in two parts so that this file does not match itself.
OUTSIDE_REFERENCE = "DESIGN " + "\u00a7"
CONTRACTS = support.REPO / "docs" / "contracts.md"


def repository_files() -> list[str]:
    """Tracked files, and new ones not ignored (so a file about to be committed is checked too)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=support.REPO,
        capture_output=True,
        check=False,
        timeout=30,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return sorted({name for name in listed.stdout.decode().split("\0") if name})


def test_no_file_cites_the_outside_design_document() -> None:
    citing = []
    for name in repository_files():
        path = support.REPO / name
        if not path.is_file():
            continue
        if OUTSIDE_REFERENCE.encode() in path.read_bytes():
            citing.append(name)
    assert not citing, f"{OUTSIDE_REFERENCE} (point at docs/contracts.md instead) in: {citing}"


def test_every_pointer_to_the_contract_page_names_one_of_its_sections() -> None:
    """A pointer to docs/contracts.md (its name, a comma, a section) names one of its ``##`` headings."""
    headings = re.findall(r"^## (.+)$", CONTRACTS.read_text(), re.MULTILINE)
    pointers = 0
    wrong = []
    for name in repository_files():
        path = support.REPO / name
        if name == "docs/contracts.md" or not path.is_file() or path.suffix not in {".py", ".md", ".yaml"}:
            continue
        # A pointer may wrap onto the next comment line.
        text = re.sub(r"\s*\n\s*(?:#\s*)?", " ", path.read_text(encoding="utf-8", errors="replace"))
        for found in re.finditer(r"docs/contracts\.md, ", text):
            pointers += 1
            named = text[found.end() : found.end() + 60]
            if not any(named.startswith(heading) for heading in headings):
                wrong.append(f"{name}: {named!r}")
    assert pointers, "nothing points at a section of docs/contracts.md"
    assert not wrong, f"pointers to no ## heading of docs/contracts.md ({headings}): {wrong}"
