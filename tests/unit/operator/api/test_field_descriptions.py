"""Every field of the CRDs (and of config.yaml and keys.yaml) says what it is.

``kubectl explain`` and docs/api-reference.md show a field's ``description``; one without
leaves the reader guessing. The walk covers both kinds, every version, every property
at any depth, array items and map values (``additionalProperties``). A field gets its
description from ``Field(description=...)`` (or, for a list's items or a map's values, from
the annotated item type); a model's docstring shows on the fields that hold it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from weather_operator.api import crd, schema
from weather_proxy import config

# The only node Kubernetes forbids a description on: a CRD's root ``metadata`` may say
# nothing but ``type: object`` (structural schema rule: "must not specify anything other
# than name and generateName").
EXEMPT = frozenset({".metadata"})


def undescribed(node: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths below ``node`` (``.spec.a``, ``.spec.list[]``, ``.spec.map.*``) without a description."""
    children: list[tuple[str, Any]] = [
        (f"{path}.{name}", sub) for name, sub in node.get("properties", {}).items()
    ]
    if isinstance(node.get("items"), dict):
        children.append((f"{path}[]", node["items"]))
    if isinstance(node.get("additionalProperties"), dict):
        children.append((f"{path}.*", node["additionalProperties"]))
    for child_path, child in children:
        if not str(child.get("description", "")).strip() and child_path not in EXEMPT:
            yield child_path
        yield from undescribed(child, child_path)


def crd_schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind/version, openAPIV3Schema)`` of every version of every generated CRD."""
    for text in crd.documents().values():
        doc = yaml.safe_load(text)
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        for version in doc["spec"]["versions"]:
            yield f"{doc['spec']['names']['kind']}/{version['name']}", version["schema"]["openAPIV3Schema"]


SCHEMAS = dict(crd_schemas())


def test_both_kinds_are_walked() -> None:
    assert {name.split("/")[0] for name in SCHEMAS} == {kind.kind for kind in crd.KINDS}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_crd_field_has_a_description(name: str) -> None:
    root = SCHEMAS[name]
    assert root.get("description"), f"{name}: the root schema has no description"
    missing = list(undescribed(root))
    assert not missing, f"{name}: {len(missing)} schema nodes without a description:\n" + "\n".join(missing)


@pytest.mark.parametrize("model", [config.ProxyConfig, config.KeysFile], ids=lambda m: m.__name__)
def test_every_config_file_field_has_a_description(model: type[config.ConfigModel]) -> None:
    missing = list(undescribed(schema.structural_schema(model)))
    assert not missing, f"{model.__name__}: fields without a description:\n" + "\n".join(missing)


def test_the_walk_sees_nested_properties_items_and_map_values() -> None:
    node = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "description": "d",
                "properties": {
                    "list": {
                        "type": "array",
                        "description": "d",
                        "items": {"type": "object", "properties": {"deep": {"type": "string"}}},
                    },
                    "map": {"type": "object", "description": "d", "additionalProperties": {"type": "string"}},
                    "fine": {"type": "string", "description": "d"},
                    "blank": {"type": "string", "description": " "},
                },
            },
        },
    }
    assert list(undescribed(node)) == [
        ".spec.list[]",
        ".spec.list[].deep",
        ".spec.map.*",
        ".spec.blank",
    ]
