"""The Argo CD bootstrap: project, per-environment Applications and the argocd-cm health keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.delivery import support

ARGOCD = support.MANIFESTS / "argocd"


@pytest.fixture(scope="module")
def objects() -> tuple[dict[str, Any], ...]:
    return support.kustomize_build(ARGOCD)


def test_health_keys_carry_the_lua_files_verbatim(objects: tuple[dict[str, Any], ...]) -> None:
    constants = pytest.importorskip("weather_operator.api.constants")
    cm = support.one(objects, "ConfigMap", "argocd-cm")
    assert cm["metadata"]["namespace"] == "argocd"
    prefix = f"resource.customizations.health.{constants.GROUP}_"
    assert cm["data"] == {
        prefix + constants.WEATHERPROXY_KIND: (ARGOCD / "health" / "weatherproxy.lua").read_text(),
        prefix + constants.APIKEY_KIND: (ARGOCD / "health" / "apikey.lua").read_text(),
    }


@pytest.mark.parametrize("env", support.ENVIRONMENTS)
def test_application_per_environment(objects: tuple[dict[str, Any], ...], env: str) -> None:
    app = support.one(objects, "Application", f"weather-proxy-{env}")
    source = app["spec"]["source"]
    assert source["path"] == f"manifests/overlays/{env}"
    assert (support.REPO / source["path"] / "kustomization.yaml").is_file()
    sync = app["spec"]["syncPolicy"]
    assert "ServerSideApply=true" in sync["syncOptions"]
    assert app["metadata"]["annotations"]["argocd.argoproj.io/compare-options"] == "ServerSideDiff=true"
    assert sync["automated"]["selfHeal"] is True
    assert sync["automated"]["prune"] is (env != "production")
    project = support.one(objects, "AppProject", app["spec"]["project"])
    assert source["repoURL"] in project["spec"]["sourceRepos"]
    assert app["spec"]["destination"]["name"] in {d["name"] for d in project["spec"]["destinations"]}


@pytest.mark.parametrize("env", support.ENVIRONMENTS)
def test_project_allows_every_kind_the_overlay_deploys(objects: tuple[dict[str, Any], ...], env: str) -> None:
    project = support.one(objects, "AppProject", "weather-proxy")["spec"]
    cluster = {(k["group"], k["kind"]) for k in project["clusterResourceWhitelist"]}
    namespaced = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
    for obj in support.kustomize_build(support.MANIFESTS / "overlays" / env):
        group = obj["apiVersion"].rpartition("/")[0]
        allowed = namespaced if obj["metadata"].get("namespace") else cluster
        assert (group, obj["kind"]) in allowed, (
            f"{obj['kind']} ({group or 'core'}) is not allowed by the project"
        )
