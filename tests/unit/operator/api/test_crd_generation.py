"""The CRDs are generated from the models, structural, and committed as generated."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from weather_operator.api import constants, crd, reference, schema

ROOT = pathlib.Path(__file__).resolve().parents[4]
CRDS_DIR = ROOT / "crds"


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _nodes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, f"{path}[{i}]")


def _schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Only the schema nodes (properties, items, additionalProperties), not CEL rule dicts."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _schema_nodes(sub, f"{path}.{name}")
    if "items" in node:
        yield from _schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _schema_nodes(node["additionalProperties"], f"{path}.*")


@pytest.fixture(params=crd.KINDS, ids=lambda k: k.kind)
def kind(request: pytest.FixtureRequest) -> crd.Kind:
    return request.param  # type: ignore[no-any-return]


def test_committed_crds_equal_what_the_models_generate() -> None:
    for name, text in crd.documents().items():
        committed = (CRDS_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"crds/{name} is stale: run `python hack/gen_crds.py`"


def test_gen_crds_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path: pathlib.Path) -> None:
    script = str(ROOT / "hack" / "gen_crds.py")
    crds_dir, reference_file = tmp_path / "crds", tmp_path / "docs" / "api-reference.md"
    paths = ["--dir", str(crds_dir), "--reference", str(reference_file)]
    check = [sys.executable, script, "--check", *paths]
    stale = subprocess.run(check, capture_output=True, text=True, check=False)
    assert stale.returncode == 1
    assert "weatherproxy.dev_weatherproxies.yaml: stale" in stale.stderr
    assert "api-reference.md: stale" in stale.stderr
    subprocess.run([sys.executable, script, *paths], check=True, capture_output=True)
    assert sorted(p.name for p in crds_dir.iterdir()) == sorted(crd.documents())
    assert reference_file.read_text(encoding="utf-8") == reference.document()
    assert subprocess.run(check, capture_output=True, check=False).returncode == 0


def test_committed_reference_equals_what_the_models_generate() -> None:
    committed = (ROOT / "docs" / "api-reference.md").read_text(encoding="utf-8")
    assert committed == reference.document(), "docs/api-reference.md is stale: run `python hack/gen_crds.py`"


def test_reference_lists_every_spec_field_rule_and_preset() -> None:
    text = reference.document()
    assert "| `spec.autoscaling.minReplicas` | integer | ≥ 1; ≤ 100; optional |" in text
    assert "| `spec.upstream.timeoutSeconds` | number | > 0; ≤ 120 |" in text
    assert "| `spec.proxyRef.name` | string | required;" in text
    assert "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas" in text
    assert "| autoscaling | off | 2 to 4 | 2 to 10 |" in text
    assert "### ApiKey `.status`" in text


def test_kustomization_lists_both_crds() -> None:
    kustomization = yaml.safe_load(crd.documents()["kustomization.yaml"])
    assert kustomization["resources"] == [
        "weatherproxy.dev_weatherproxies.yaml",
        "weatherproxy.dev_apikeys.yaml",
    ]


def test_names_scope_and_categories(kind: crd.Kind) -> None:
    doc = crd.crd(kind)
    assert doc["metadata"]["name"] == f"{kind.plural}.weatherproxy.dev"
    spec = doc["spec"]
    assert spec["group"] == constants.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["weather"]
    assert spec["names"]["shortNames"] == list(kind.short_names)
    [version] = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"]["status"] == {}


def test_short_names() -> None:
    assert crd.crd(crd.WEATHERPROXY)["spec"]["names"]["shortNames"] == ["wp"]
    assert crd.crd(crd.APIKEY)["spec"]["names"]["shortNames"] == ["wpk"]


def test_weatherproxy_has_the_scale_subresource() -> None:
    [version] = crd.crd(crd.WEATHERPROXY)["spec"]["versions"]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "scale" not in crd.crd(crd.APIKEY)["spec"]["versions"][0]["subresources"]


@pytest.mark.parametrize(
    ("kind_", "columns"),
    [
        (crd.WEATHERPROXY, ["Ready", "Replicas", "Keys", "Environment", "Endpoint", "Age"]),
        (crd.APIKEY, ["Proxy", "Ready", "Expires", "Prefix", "Age"]),
    ],
)
def test_printer_columns(kind_: crd.Kind, columns: list[str]) -> None:
    [version] = crd.crd(kind_)["spec"]["versions"]
    printed = version["additionalPrinterColumns"]
    assert [c["name"] for c in printed] == columns
    ready = next(c for c in printed if c["name"] == "Ready")
    assert ready["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'


def test_schema_is_structural(kind: crd.Kind) -> None:
    root = crd.open_api_schema(kind)
    for path, node in _nodes(root):
        assert "$ref" not in node, path
        assert "anyOf" not in node, path
        assert "oneOf" not in node, path
        assert "allOf" not in node, path
        assert "title" not in node, path
    for path, node in _schema_nodes(root):
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, path
        assert node.get("additionalProperties") is not False, path
        if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(
            node["exclusiveMinimum"], bool
        ):
            pytest.fail(f"{path}: exclusiveMinimum must be a boolean in OpenAPI v3.0")


def test_maps_only_where_intended(kind: crd.Kind) -> None:
    maps = {
        path.rsplit(".", 1)[-1]
        for path, node in _schema_nodes(crd.open_api_schema(kind))
        if isinstance(node.get("additionalProperties"), dict)
    }
    assert maps <= {"annotations", "requests", "limits", "labels"}


def test_no_defaults_but_the_environment() -> None:
    defaulted = [
        path for path, node in _schema_nodes(crd.open_api_schema(crd.WEATHERPROXY)) if "default" in node
    ]
    assert defaulted == [".spec.environment"]
    assert not [p for p, n in _schema_nodes(crd.open_api_schema(crd.APIKEY)) if "default" in n]


def test_optional_fields_are_nullable_and_descriptions_come_from_fields() -> None:
    spec = crd.open_api_schema(crd.WEATHERPROXY)["properties"]["spec"]
    assert spec["properties"]["replicas"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
        "nullable": True,
        "description": "Replica count when autoscaling is off (scale subresource).",
    }
    disruption = spec["properties"]["disruption"]["properties"]
    assert disruption["minAvailable"]["x-kubernetes-int-or-string"] is True


def test_conditions_are_a_list_map_keyed_on_type(kind: crd.Kind) -> None:
    status = crd.open_api_schema(kind)["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


def test_status_fields() -> None:
    wp = crd.open_api_schema(crd.WEATHERPROXY)["properties"]["status"]["properties"]
    assert set(wp) == {
        "observedGeneration",
        "replicas",
        "readyReplicas",
        "selector",
        "apiKeys",
        "endpoint",
        "configHash",
        "conditions",
        "rollout",
    }
    key = crd.open_api_schema(crd.APIKEY)["properties"]["status"]["properties"]
    assert {"secretName", "keyPrefix", "expiresAt", "expired", "rotation", "conditions"} <= set(key)


def test_apikey_requires_spec_and_proxy_ref_name() -> None:
    root = crd.open_api_schema(crd.APIKEY)
    assert root["required"] == ["spec"]
    spec = root["properties"]["spec"]
    assert spec["required"] == ["proxyRef"]
    assert spec["properties"]["proxyRef"]["required"] == ["name"]
    assert spec["properties"]["expiresAt"]["format"] == "date-time"


def test_every_cel_rule_compiles_and_its_message_names_a_spec_field(kind: crd.Kind) -> None:
    from tests.unit.operator.api import cel_eval

    rules = [
        rule
        for _, node in _schema_nodes(crd.open_api_schema(kind))
        for rule in node.get("x-kubernetes-validations", [])
    ]
    if kind is crd.WEATHERPROXY:
        assert len(rules) >= 5
    for rule in rules:
        cel_eval.compile_rule(rule["rule"])
        assert rule["message"].startswith("spec."), rule


def test_other_anyof_is_refused() -> None:
    from pydantic import BaseModel

    class Ambiguous(BaseModel):
        value: int | str

    with pytest.raises(schema.SchemaError, match="anyOf of several types"):
        schema.structural_schema(Ambiguous)


def test_typeless_node_is_refused() -> None:
    from pydantic import BaseModel

    class Anything(BaseModel):
        value: Any

    with pytest.raises(schema.SchemaError, match="needs a type"):
        schema.structural_schema(Anything)
