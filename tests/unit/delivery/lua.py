"""Run an Argo CD health script with a real Lua interpreter, the way Argo CD calls it.

Argo CD runs the script as a chunk with the resource in the global ``obj`` and takes
the table it returns. Two interpreters: lua5.4, the object handed over as a Lua table
literal; and gopher-lua (Lua 5.1), what Argo CD itself runs, through ``hack/luahealth``
(built by ``make luahealth``), which converts the object and reads the result as Argo
CD's util/lua does.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import subprocess
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
LUAHEALTH_SOURCES = tuple(REPO / "hack" / "luahealth" / name for name in ("go.mod", "go.sum", "main.go"))

HARNESS = """
obj = {obj}
local chunk = assert(loadfile({script}))
local hs = chunk()
io.write(string.format("%s\\n%s", tostring(hs.status), tostring(hs.message)))
"""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def lua_string(text: str) -> str:
    """A Lua 5.1 string literal: printable ASCII as is, every other byte as a decimal escape."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in {'"', "\\"}:
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def to_lua(value: Any) -> str:
    """A Lua table literal of a JSON-like Python value (None entries are simply absent)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, list | tuple):
        return "{" + ", ".join(to_lua(item) for item in value) + "}"
    if isinstance(value, dict):
        fields = [f"[{lua_string(str(k))}] = {to_lua(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(fields) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def run_health(lua: str, script: pathlib.Path, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) the script returns for ``obj``."""
    program = HARNESS.format(obj=to_lua(obj), script=lua_string(str(script)))
    result = subprocess.run(
        [lua, "-"], input=program, capture_output=True, text=True, check=False, timeout=30
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script.name} failed: {result.stderr}")
    status, _, message = result.stdout.partition("\n")
    return status, message


def luahealth_binary() -> str:
    """The gopher-lua runner ``make luahealth`` built from these sources; skip locally, fail in CI."""
    # The Makefile's key: sha256 of go.mod, go.sum and main.go, concatenated.
    key = hashlib.sha256(b"".join(p.read_bytes() for p in LUAHEALTH_SOURCES)).hexdigest()[:12]
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    built = cache / "weather-proxy-fleet" / "tools" / f"luahealth-{key}" / "luahealth"
    if built.exists():
        return str(built)
    message = "the gopher-lua runner is not built for these sources: `make luahealth` builds hack/luahealth"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def run_health_gopher(binary: str, script: pathlib.Path, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) Argo CD's gopher-lua VM gets from the script for ``obj`` (sent as JSON)."""
    result = subprocess.run(
        [binary, str(script)], input=json.dumps(obj), capture_output=True, text=True, check=False, timeout=30
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script.name} failed under gopher-lua: {result.stderr}")
    health = json.loads(result.stdout)
    return health.get("status", ""), health.get("message", "")


# Lua 5.2+ syntax and library that gopher-lua (Lua 5.1) does not have.
NOT_LUA_51 = {
    "goto": re.compile(r"\bgoto\b|::\w+::"),
    "integer division //": re.compile(r"//"),
    "bitwise operators": re.compile(r"(?<![~=<>])[&|](?!=)|<<|>>|~(?!=)"),
    "attribs <const>/<close>": re.compile(r"<\s*(const|close)\s*>"),
    "utf8 library": re.compile(r"\butf8\."),
    "table.unpack / table.move": re.compile(r"\btable\.(unpack|move)\b"),
    "math.tointeger / math.type": re.compile(r"\bmath\.(tointeger|type)\b"),
}


def strip_comments_and_strings(source: str) -> str:
    source = re.sub(r"--\[(=*)\[.*?\]\1\]", "", source, flags=re.S)
    source = re.sub(r"--[^\n]*", "", source)
    return re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', source)


def lua_51_violations(source: str) -> list[str]:
    code = strip_comments_and_strings(source)
    return [name for name, pattern in NOT_LUA_51.items() if pattern.search(code)]
