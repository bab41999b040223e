"""Rendered ServiceMonitor/PrometheusRule objects fit the test copies of the Prometheus Operator CRDs."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
import yaml

from tests.unit.operator.render import cases
from weather_operator.render import fleet

TEST_CRDS = pathlib.Path(__file__).resolve().parents[4] / "manifests" / "test-crds"


def _crd(kind: str) -> dict[str, Any]:
    for path in TEST_CRDS.glob("monitoring.coreos.com_*.yaml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if doc["spec"]["names"]["kind"] == kind:
            return doc  # type: ignore[no-any-return]
    raise AssertionError(f"no test CRD for {kind}")


def _check(schema: dict[str, Any], value: Any, path: str) -> None:
    """A small subset of OpenAPI validation: types, required, patterns (enough for these CRDs)."""
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), path
        for name in schema.get("required", []):
            assert name in value, f"{path}.{name} is required"
        if path.endswith(".metadata"):
            return  # ObjectMeta is validated by the API server itself, not by the CRD schema.
        for name, sub in value.items():
            if name in schema.get("properties", {}):
                _check(schema["properties"][name], sub, f"{path}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(schema["additionalProperties"], sub, f"{path}.{name}")
            else:
                assert schema.get("x-kubernetes-preserve-unknown-fields"), f"{path}.{name} would be pruned"
    elif kind == "array":
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), path
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), path


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PrometheusRule"])
def test_rendered_monitoring_objects_fit_the_crds(kind: str) -> None:
    crd = _crd(kind)
    result = fleet.render_fleet(cases.inputs("production-customised"))
    [obj] = [o for o in result.objects if o["kind"] == kind]
    [version] = crd["spec"]["versions"]
    assert obj["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    _check(version["schema"]["openAPIV3Schema"], obj, kind)
