"""The operator's modules import one another without a cycle, and render/ stays pure.

The graph is read from the source (``ast``), not by importing: an edge goes from a module to
every ``weather_operator`` module it imports, ``from package import name`` counting as an
import of ``package.name`` when that is a module and of ``package`` otherwise.
"""

from __future__ import annotations

import ast
import pathlib

import weather_operator

ROOT = pathlib.Path(weather_operator.__file__).parent
PACKAGE = "weather_operator"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {imported for imported in found if imported in MODULES and imported != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles() -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    assert "weather_operator.render.deployment" in GRAPH["weather_operator.render.fleet"]
    assert len(GRAPH) > 40


def test_no_import_cycle() -> None:
    assert cycles() == []


def test_render_imports_no_client_controller_or_kopf() -> None:
    """Renderers are pure: typed spec in, plain dicts out (no API client, no queue, no Kopf)."""
    for name, path in MODULES.items():
        if not name.startswith(f"{PACKAGE}.render"):
            continue
        tree = ast.parse(path.read_text())
        nodes = list(ast.walk(tree))
        names = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in nodes if isinstance(node, ast.ImportFrom)}
        forbidden = {
            imported
            for imported in names | GRAPH[name]
            if imported.split(".")[0] in {"kopf", "kubernetes", "aiohttp", "secrets"}
            or imported.startswith((f"{PACKAGE}.controller", f"{PACKAGE}.handlers", f"{PACKAGE}.apply"))
        }
        assert not forbidden, f"{name} imports {sorted(forbidden)}"
