"""Turn a pydantic model's JSON schema into a Kubernetes *structural* OpenAPI v3 schema.

Kubernetes rejects or mangles what pydantic emits by default, so this module:

* inlines every ``$ref`` (structural schemas have no references);
* turns ``Optional[X]`` (``anyOf: [X, {type: null}]``) into ``X`` with ``nullable: true``
  and refuses any other ``anyOf`` of types;
* drops ``title``, ``additionalProperties: false`` (unknown fields are pruned anyway)
  and every ``default`` (defaults live in the presets, so GitOps tools see no drift),
  except a default marked with ``x-weatherproxy-keep-default``;
* rewrites JSON-Schema-2020 ``exclusiveMinimum: N`` into OpenAPI 3.0's
  ``minimum: N, exclusiveMinimum: true``.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

KEEP_DEFAULT = "x-weatherproxy-keep-default"

_DROPPED = frozenset({"title", "$defs"})


class SchemaError(ValueError):
    """The model cannot be expressed as a structural schema."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model (validation aliases, i.e. camelCase)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = raw.get("$defs", {})
    return _convert(raw, defs, path=model.__name__)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node["$ref"]
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise SchemaError(f"unsupported $ref {ref!r}")
    target: dict[str, Any] = copy.deepcopy(defs[ref[len(prefix) :]])
    # Keywords beside the $ref (the field's description, json_schema_extra) win over the target's.
    target.update({k: v for k, v in node.items() if k != "$ref"})
    return target


def _collapse_optional(node: dict[str, Any], path: str) -> dict[str, Any]:
    branches = node["anyOf"]
    not_null = [b for b in branches if b != {"type": "null"}]
    if len(not_null) != 1:
        raise SchemaError(f"{path}: anyOf of several types is not structural: {branches}")
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    branch = dict(not_null[0])
    # The field's own keywords (description, default) go on top of the branch.
    branch.update(merged)
    if len(not_null) != len(branches):
        branch["nullable"] = True
    return branch


def _convert(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    while "$ref" in node or "anyOf" in node:
        node = _resolve(node, defs) if "$ref" in node else _collapse_optional(node, path)
    if "allOf" in node or "oneOf" in node:
        raise SchemaError(f"{path}: allOf/oneOf are not supported")

    keep_default = bool(node.get(KEEP_DEFAULT))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key == KEEP_DEFAULT:
            continue
        if key == "default" and not keep_default:
            continue
        if key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, defs, f"{path}.*")
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
            continue
        if key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
            continue
        out[key] = value

    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaError(f"{path}: every structural schema node needs a type")
    return out
