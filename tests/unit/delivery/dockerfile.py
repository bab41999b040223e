"""A small Dockerfile reader: instructions with their stage, continuations joined.

Enough for static checks of our own Dockerfiles (not a full BuildKit frontend):
comments and parser directives are dropped, ``\\`` continuations are joined
(comment lines inside a continuation are skipped, as Docker does).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import pathlib
import shlex


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    arguments: str
    line: int


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [ins for ins in self.instructions if ins.keyword == keyword]


def parse_instructions(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical = " ".join(part for part in pending if part)
        pending = []
        keyword, _, arguments = logical.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    if pending:
        raise ValueError(f"line {start}: continuation runs past the end of the file")
    return instructions


def parse_stages(text: str) -> list[Stage]:
    """The stages; a FROM's ``${ARG}`` is the default of the global ARG (no --build-arg given)."""
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for ins in parse_instructions(text):
        if ins.keyword == "FROM":
            words = ins.arguments.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            base = words[0]
            for arg, default in global_args.items():
                base = base.replace(f"${{{arg}}}", default).replace(f"${arg}", default)
            stages.append(Stage(base=base, name=name, instructions=[]))
        elif stages:
            stages[-1].instructions.append(ins)
        elif ins.keyword == "ARG":
            arg, _, default = ins.arguments.partition("=")
            global_args[arg.strip()] = default.strip()
        else:
            raise ValueError(f"line {ins.line}: {ins.keyword} before the first FROM")
    return stages


def exec_form(arguments: str) -> list[str] | None:
    """The list of a JSON (exec) form argument, or None for the shell form."""
    if not arguments.startswith("["):
        return None
    value = json.loads(arguments)
    assert isinstance(value, list)
    return [str(item) for item in value]


@dataclasses.dataclass(frozen=True)
class Copy:
    sources: list[str]
    destination: str
    from_stage: str | None


def parse_copy(ins: Instruction) -> Copy:
    rest = ins.arguments
    flags: list[str] = []
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.lstrip()
    form = exec_form(rest)
    paths = form if form is not None else shlex.split(rest)
    from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    return Copy(sources=paths[:-1], destination=paths[-1], from_stage=from_stage)


def labels(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for ins in stage.all("LABEL"):
        for word in shlex.split(ins.arguments):
            key, _, value = word.partition("=")
            found[key] = value
    return found


class DockerIgnore:
    """The .dockerignore rules: the last matching pattern wins; `!` re-includes.

    A path is also excluded when one of its parent directories is (Docker matches
    the parents too), unless a later negation re-includes the path itself.
    """

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = line[1:].strip() if negated else line
            self.rules.append((negated, pattern.strip("/").removeprefix("./")))

    @staticmethod
    def _matches(pattern: str, path: str) -> bool:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            parts = path.split("/")
            return any(fnmatch.fnmatchcase("/".join(parts[i:]), tail) for i in range(len(parts)))
        return fnmatch.fnmatchcase(path, pattern)

    def excluded(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        verdict = False
        for negated, pattern in self.rules:
            if any(self._matches(pattern, candidate) for candidate in candidates):
                verdict = not negated
        return verdict

    def included_files(self, root: pathlib.Path, source: str) -> list[pathlib.Path]:
        """The files of ``source`` (a file or a directory) that reach the build context."""
        target = root / source
        files = [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()]
        return [f for f in files if not self.excluded(f.relative_to(root).as_posix())]
