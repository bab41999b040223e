"""The sample resources: file names, namespace, and validity against the spec models."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from tests.unit.delivery import support

SAMPLES = support.MANIFESTS / "samples"
SAMPLE_FILES = sorted(p for p in SAMPLES.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: pathlib.Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.relative_to(SAMPLES).as_posix())
def test_file_is_named_group_version_kind(path: pathlib.Path) -> None:
    for obj in documents(path):
        group_version = obj["apiVersion"].replace("/", "_")
        if "/" not in obj["apiVersion"]:
            group_version = f"core_{group_version}"
        stem = f"{group_version}_{obj['kind'].lower()}"
        assert path.stem == stem or path.stem.startswith(f"{stem}-"), (
            f"{path.name}: expected {stem}[-<variant>]"
        )


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.relative_to(SAMPLES).as_posix())
def test_samples_live_in_the_weather_namespace(path: pathlib.Path) -> None:
    for obj in documents(path):
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "weather"
        else:
            assert obj["metadata"]["namespace"] == "weather"


def test_every_sample_file_is_used_by_a_kustomization() -> None:
    listed = set()
    for kustomization in SAMPLES.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text()).get("resources", []):
            listed.add((kustomization.parent / resource).resolve())
    assert set(SAMPLE_FILES) - listed == set()


def test_per_environment_variants_exist() -> None:
    for env in support.ENVIRONMENTS:
        assert (SAMPLES / env / f"weatherproxy.dev_v1alpha1_weatherproxy-{env}.yaml").is_file()
        assert (SAMPLES / env / "weatherproxy.dev_v1alpha1_apikey.yaml").is_file()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.relative_to(SAMPLES).as_posix())
def test_specs_validate_against_the_crd_models(path: pathlib.Path) -> None:
    weatherproxy = pytest.importorskip("weather_operator.api.weatherproxy")
    apikey = pytest.importorskip("weather_operator.api.apikey")
    models = {"WeatherProxy": weatherproxy.WeatherProxySpec, "ApiKey": apikey.ApiKeySpec}
    for obj in documents(path):
        if obj["kind"] in models:
            assert obj["apiVersion"] == "weatherproxy.dev/v1alpha1"
            models[obj["kind"]].model_validate(obj["spec"])


def test_env_sample_follows_its_environment() -> None:
    for env in support.ENVIRONMENTS:
        (proxy,) = documents(SAMPLES / env / f"weatherproxy.dev_v1alpha1_weatherproxy-{env}.yaml")
        assert proxy["spec"]["environment"] == env
    dev = documents(SAMPLES / "dev" / "weatherproxy.dev_v1alpha1_weatherproxy-dev.yaml")[0]["spec"]
    production = documents(SAMPLES / "production" / "weatherproxy.dev_v1alpha1_weatherproxy-production.yaml")
    assert dev["autoscaling"]["enabled"] is False
    assert production[0]["spec"]["autoscaling"]["minReplicas"] > dev["replicas"]
