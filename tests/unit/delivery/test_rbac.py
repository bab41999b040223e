"""The operator's RBAC: least privilege, no wildcards, and everything the operator needs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.unit.delivery import support

# (apiGroup, resource, verb) the operator cannot work without.
REQUIRED = {
    # Kopf: peering, CRD scanning, cluster-wide namespace watching, events.
    *(("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")),
    *(("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")),
    *(("", "namespaces", v) for v in ("list", "watch")),
    ("", "events", "create"),
    # The custom resources, their status and (for blockOwnerDeletion) finalizers.
    *(
        ("weatherproxy.dev", r, v)
        for r, v in itertools.product(("weatherproxies", "apikeys"), ("get", "list", "watch", "patch"))
    ),
    ("weatherproxy.dev", "weatherproxies/status", "patch"),
    ("weatherproxy.dev", "apikeys/status", "patch"),
    ("weatherproxy.dev", "weatherproxies/finalizers", "update"),
    ("weatherproxy.dev", "apikeys/finalizers", "update"),
}
CHILD_KINDS = {
    "": ("configmaps", "secrets", "services"),
    "apps": ("deployments", "statefulsets"),
    "autoscaling": ("horizontalpodautoscalers",),
    "policy": ("poddisruptionbudgets",),
    "networking.k8s.io": ("networkpolicies", "ingresses"),
    "monitoring.coreos.com": ("servicemonitors", "prometheusrules"),
    # spec.logging.podLogs: a Grafana PodLogs.
    "monitoring.grafana.com": ("podlogs",),
    # The managed usage-history database as a CloudNativePG Cluster.
    "postgresql.cnpg.io": ("clusters",),
    # spec.tls mode CertManager: the proxies' Certificate.
    "cert-manager.io": ("certificates",),
    # The proxy pods' identity: a ServiceAccount whose Role reads the fleet's keys Secrets.
    "rbac.authorization.k8s.io": ("roles", "rolebindings"),
}
CHILD_KINDS[""] += ("serviceaccounts",)
# The pods of a child that is not ready, read for the reason its status gives (never written).
POD_READS = {("", "pods", v) for v in ("get", "list")}
# A deleted ApiKey's history erasure: a Job created once (never patched).
ERASURE_JOBS = {("batch", "jobs", v) for v in ("get", "list", "watch", "create", "delete")}
# spec.tls.issuerRef: whether the Issuer or ClusterIssuer exists (never written).
ISSUER_READS = {("cert-manager.io", r, "get") for r in ("issuers", "clusterissuers")}
CHILD_VERBS = ("get", "list", "watch", "create", "patch", "delete")
# Rights the operator must never hold: they would let it escalate or read what it does not own.
# (Roles and RoleBindings it may write: RBAC refuses any that grants more than the operator
# holds, unless it has `bind` or `escalate`, which it never gets; see test_no_escalation_verbs.)
FORBIDDEN = {
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("", "pods/exec"),
    ("", "serviceaccounts/token"),
    ("", "nodes"),
    ("", "persistentvolumeclaims"),
}


@pytest.fixture(scope="module")
def role() -> dict[str, Any]:
    return support.one(support.kustomize_build(support.MANIFESTS / "base"), "ClusterRole", "weather-operator")


def granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_no_wildcards(role: dict[str, Any]) -> None:
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
            assert not any("*" in item for item in rule[field]), rule
        assert "resourceNames" not in rule or rule["resourceNames"]
        assert "nonResourceURLs" not in rule


def test_framework_and_custom_resource_rights(role: dict[str, Any]) -> None:
    missing = REQUIRED - granted(role)
    assert not missing


@pytest.mark.parametrize("group", sorted(CHILD_KINDS))
def test_child_kind_rights(role: dict[str, Any], group: str) -> None:
    rights = granted(role)
    for resource, verb in itertools.product(CHILD_KINDS[group], CHILD_VERBS):
        assert (group, resource, verb) in rights


def test_erasure_jobs_are_created_and_deleted_never_changed(role: dict[str, Any]) -> None:
    rights = granted(role)
    assert rights >= ERASURE_JOBS
    assert {v for g, r, v in rights if (g, r) == ("batch", "jobs")} == {v for _, _, v in ERASURE_JOBS}


def test_pods_are_only_read(role: dict[str, Any]) -> None:
    rights = granted(role)
    assert rights >= POD_READS
    assert {v for g, r, v in rights if (g, r) == ("", "pods")} == {v for _, _, v in POD_READS}


def test_issuers_are_only_read(role: dict[str, Any]) -> None:
    rights = granted(role)
    assert rights >= ISSUER_READS
    issuers = {("cert-manager.io", "issuers"), ("cert-manager.io", "clusterissuers")}
    assert {(g, r, v) for g, r, v in rights if (g, r) in issuers} == ISSUER_READS


def test_nothing_beyond_what_is_listed(role: dict[str, Any]) -> None:
    allowed_resources = {(g, r) for g, r, _ in REQUIRED | ERASURE_JOBS | POD_READS | ISSUER_READS}
    allowed_resources |= {(g, r) for g, rs in CHILD_KINDS.items() for r in rs}
    for group, resource, verb in granted(role):
        assert (group, resource) in allowed_resources, f"unexpected right on {group}/{resource}"
        assert (group, resource) not in FORBIDDEN
        assert verb in {"get", "list", "watch", "create", "patch", "update", "delete"}, verb
    # Events are only ever created; CRDs and namespaces only read.
    assert {v for g, r, v in granted(role) if r == "events"} == {"create"}
    assert {v for g, r, v in granted(role) if r in {"customresourcedefinitions", "namespaces"}} == {
        "list",
        "watch",
    }


def test_no_escalation_verbs(role: dict[str, Any]) -> None:
    """Roles the operator writes can grant only rights it holds itself (RBAC's escalation check)."""
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert not verbs & {"bind", "escalate", "impersonate"}


def test_every_rule_is_commented() -> None:
    text = (support.MANIFESTS / "base" / "rbac.authorization.k8s.io_v1_clusterrole.yaml").read_text()
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            assert lines[number - 1].strip().startswith("#"), f"rule at line {number + 1} has no comment"


def test_binding_ties_the_role_to_the_operator_service_account() -> None:
    objects = support.kustomize_build(support.MANIFESTS / "base")
    binding = support.one(objects, "ClusterRoleBinding", "weather-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "weather-operator",
    }
    account = support.one(objects, "ServiceAccount", "weather-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "weather-operator", "namespace": account["metadata"]["namespace"]}
    ]
    deployment = support.one(objects, "Deployment", "weather-operator")
    assert deployment["metadata"]["namespace"] == account["metadata"]["namespace"]
