"""The chart's values: documented (values.yaml comments, README.md table) and checked (values.schema.json).

Helm validates the merged values against ``values.schema.json`` on install, upgrade,
template and lint. Its objects refuse unknown keys, so a misspelt key fails instead of being
silently ignored, and an ``if``/``then`` refuses ``replicaCount > 1`` with peering off (every
replica would then be active). ``values.yaml``, the schema and the README's table must name
the same keys, and the table the same defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from testbed import helm

VALUES_TEXT = (helm.CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((helm.CHART / "values.schema.json").read_text())
README = (helm.CHART / "README.md").read_text()
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(\s|$)")
TABLE_ROW = re.compile(r"^\|\s*`(?P<key>[^`]+)`\s*\|\s*(?P<default>[^|]*?)\s*\|\s*(?P<description>.+?)\s*\|$")
# Keys the schema accepts that values.yaml does not set: a parent chart's globals.
SCHEMA_ONLY = {"global"}


def value_paths(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every key of values.yaml, parents before their children."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from value_paths(value, path)


def is_leaf(value: Any) -> bool:
    return not (isinstance(value, dict) and value)


def commented_keys(text: str) -> dict[str, bool]:
    """Each key of a YAML mapping file (dotted, by indentation) and whether a comment documents it.

    A key is documented by the comment line right above it (no blank line between) or by a
    comment at the end of its own line.
    """
    lines = text.splitlines()
    stack: list[tuple[int, str]] = []
    found: dict[str, bool] = {}
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        above = lines[number - 1].strip() if number else ""
        found[".".join(key for _, key in stack)] = above.startswith("#") or " #" in line
    return found


def readme_table() -> dict[str, tuple[str, str]]:
    rows = {}
    section = README.split("## Values", 1)[1]
    for line in section.splitlines():
        match = TABLE_ROW.match(line)
        if match and match["key"] != "key":
            assert match["key"] not in rows, f"README.md: {match['key']} twice"
            rows[match["key"]] = (match["default"].strip(), match["description"].strip())
    return rows


def schema_node(path: str) -> dict[str, Any] | None:
    """The schema of a dotted key: a property, or a map's values (``additionalProperties``)."""
    node: dict[str, Any] | None = SCHEMA
    for key in path.split("."):
        assert node is not None
        if "$ref" in node:
            node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
        assert node is not None
        values = node.get("additionalProperties")
        node = node.get("properties", {}).get(key, values if isinstance(values, dict) else None)
        if node is None:
            return None
    if "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def schema_objects(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from schema_objects(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from schema_objects(node[key], f"{path}[{key}]")
    for key, child in node.get("definitions", {}).items():
        yield from schema_objects(child, f"#{key}")


def _refused(*args: str) -> str:
    done = helm.run(*args, check=False)
    assert done.returncode != 0, f"helm {' '.join(args)} accepted it:\n{done.stdout[:500]}"
    output = done.stderr + done.stdout  # lint reports on stdout, template on stderr
    assert "values don't meet the specifications of the schema" in output, output
    return output


# --- values.yaml, README.md, values.schema.json agree ---------------------------------------------


def test_the_comment_parser_sees_every_key_of_values_yaml() -> None:
    assert list(commented_keys(VALUES_TEXT)) == [path for path, _ in value_paths(VALUES)]


def test_every_key_of_values_yaml_has_a_comment() -> None:
    missing = [key for key, commented in commented_keys(VALUES_TEXT).items() if not commented]
    assert not missing, f"values.yaml keys without a comment right above them: {missing}"


def test_every_key_of_values_yaml_is_in_the_readme_table_with_its_default() -> None:
    table = readme_table()
    for path, value in value_paths(VALUES):
        assert path in table, f"README.md: no row for `{path}`"
        default, description = table[path]
        assert description, path
        if is_leaf(value):
            found = re.fullmatch(r"`(.*)`", default)
            assert found, f"README.md: `{path}`: the default cell should be `{json.dumps(value)}`"
            assert yaml.safe_load(found.group(1)) == value, f"README.md: `{path}` default {default}"
    stale = sorted(set(table) - {path for path, _ in value_paths(VALUES)})
    assert not stale, f"README.md describes keys values.yaml does not have: {stale}"


def test_the_schema_covers_every_value_and_no_other() -> None:
    for path, _ in value_paths(VALUES):
        assert schema_node(path) is not None, f"values.schema.json: no schema for `{path}`"
    assert set(SCHEMA["properties"]) - SCHEMA_ONLY == set(VALUES)


def test_every_schema_object_refuses_unknown_keys() -> None:
    for path, node in schema_objects(SCHEMA):
        if "properties" in node:
            assert node.get("additionalProperties") is False, (
                f"values.schema.json{path}: additionalProperties"
            )


def test_the_schema_is_draft_07_and_describes_every_top_level_value() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    for key, node in SCHEMA["properties"].items():
        target = schema_node(key)
        assert target is not None
        assert node.get("description") or target.get("description"), key


def test_the_readme_states_the_tested_minimum_kubernetes() -> None:
    minor = helm.kubernetes_minor()
    chart = yaml.safe_load((helm.CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">=1.{minor}.0-0"
    assert f"Kubernetes **1.{minor}** or later" in README
    assert f"`kubeVersion: >=1.{minor}.0-0`" in README


# --- helm enforces it ---------------------------------------------------------------------------


def test_lint_and_template_pass_with_the_default_values() -> None:
    lint = helm.run("lint", "--strict", str(helm.CHART), *helm.kube_version(), check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 chart(s) failed" in lint.stdout
    objects = helm.template()
    assert {o["kind"] for o in objects} >= {"Deployment", "ClusterRole", "ServiceAccount"}


@pytest.mark.parametrize(
    ("setting", "refused"),
    [
        ("replicaCont=2", "at '': additional properties 'replicaCont' not allowed"),
        ("image.tagg=1.0", "at '/image': additional properties 'tagg' not allowed"),
        ("metrics.serviceMonitor.intervall=1m", "additional properties 'intervall' not allowed"),
    ],
)
def test_a_misspelt_key_is_refused(setting: str, refused: str) -> None:
    for command in ("template", "lint"):
        args = ["x", str(helm.CHART)] if command == "template" else [str(helm.CHART)]
        assert refused in _refused(command, *args, *helm.kube_version(), "--set", setting)


def test_more_than_one_replica_without_peering_is_refused() -> None:
    stderr = _refused(
        "template", "x", str(helm.CHART), *helm.kube_version(),
        "--set", "peering.enabled=false", "--set", "replicaCount=2",
    )  # fmt: skip
    assert "at '/replicaCount': maximum: got 2, want 1" in stderr
    # peering.enabled=false alone keeps the default replicaCount (2): refused too.
    _refused("template", "x", str(helm.CHART), *helm.kube_version(), "--set", "peering.enabled=false")


@pytest.mark.parametrize(
    "values",
    [
        {"peering.enabled": False, "replicaCount": 1},
        {"peering.enabled": False, "replicaCount": 0},
        {"peering.enabled": True, "replicaCount": 3},
        {"peering.lifetimeSeconds": 30, "podDisruptionBudget.maxUnavailable": "50%"},
        {"extraEnv": [{"name": "A", "value": "1"}], "imagePullSecrets": [{"name": "regcred"}]},
        {"global": {"imageRegistry": "example"}},
    ],
    ids=["standalone-1", "standalone-0", "peering-3", "int-or-string", "lists", "global"],
)
def test_valid_values_are_accepted(values: dict[str, Any]) -> None:
    helm.template(values)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"),
        ({"replicaCount": -1}, "/replicaCount"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"metrics.port": 8080}, "/metrics/port"),
        ({"extraEnv": [{"value": "1"}]}, "/extraEnv/0"),
        ({"watchNamespace": "Not_A_Namespace"}, "/watchNamespace"),
    ],
    ids=["pull-policy", "negative-replicas", "log-format", "health-port", "env-without-name", "namespace"],
)
def test_bad_values_are_refused(values: dict[str, Any], where: str) -> None:
    stderr = _refused("template", "x", str(helm.CHART), *helm.kube_version(), *helm.set_args(values))
    assert f"at '{where}'" in stderr


def test_helm_show_readme_shows_the_values_table() -> None:
    shown = helm.run("show", "readme", str(helm.CHART)).stdout
    assert "## Values" in shown
    assert "| `replicaCount` | `2` |" in shown
