"""spec.analytics through the operator on a real control plane: the managed database, the proxies'
config and env, AnalyticsReady, a deleted key's erasure Job, and turning it off.

No kubelet runs the pods here (the StatefulSet stays unready), so AnalyticsReady says the database
is not ready; the e2e suite runs the database for real.
"""

from __future__ import annotations

import pytest

from hack import operator_process
from tests.integration.operator import fleet
from weather_operator import keys
from weather_operator.render import names
from weather_proxy import contract

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]


def test_a_staging_fleet_gets_its_history_database_and_erases_a_deleted_keys_rows(
    cluster: fleet.Cluster, operator: operator_process.OperatorProcess
) -> None:
    ns = cluster.namespace
    cluster.apply(fleet.weather_proxy("paris", ns, environment="staging"))
    statefulset = cluster.wait_for("statefulset", names.postgres_name("paris"))
    assert statefulset["metadata"]["ownerReferences"][0]["name"] == "paris"
    cluster.wait_for("service", names.postgres_name("paris"))
    cluster.wait_for("networkpolicy", names.postgres_name("paris"))
    password = cluster.wait_for("secret", names.postgres_secret_name("paris"))
    assert password["type"] == "kubernetes.io/basic-auth"

    # The proxies write to it: config.yaml's analytics section and the password from env.
    config = cluster.wait(lambda: cluster.config("paris").get("analytics"), "config.yaml's analytics section")
    assert config["database"]["url"].startswith("postgresql://")
    assert config["retentionDays"] == 90
    deployment = cluster.get("deployment", "paris")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env[contract.ENV_ANALYTICS_PASSWORD]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == names.postgres_secret_name("paris")

    condition = cluster.wait(
        lambda: cluster.condition("weatherproxy", "paris", "AnalyticsReady"), "the AnalyticsReady condition"
    )
    assert condition["status"] == "False"
    assert condition["reason"] in {"DatabaseCreating", "DatabaseNotReady"}

    # A deleted ApiKey: a Job of the fleet erases its rows.
    cluster.apply(fleet.api_key("team-a", ns, "paris"))
    cluster.wait(lambda: cluster.key_ids("paris") == {f"{ns}/team-a"}, "the key in keys.yaml")
    uid = cluster.get("apikey", "team-a")["metadata"]["uid"]
    cluster.delete("apikey", "team-a")
    job = cluster.wait_for("job", names.erase_job_name("paris", keys.key_id(ns, "team-a"), uid))
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-2:] == ["erase", f"{ns}/team-a"]
    assert job["metadata"]["ownerReferences"][0]["name"] == "paris"
    assert "wpk_" not in str(job)

    # The password is created once: a reconcile (of a new generation) keeps it.
    kept = cluster.get("secret", names.postgres_secret_name("paris"))["data"]
    cluster.apply(fleet.weather_proxy("paris", ns, environment="staging", cache={"ttlSeconds": 42}))
    cluster.wait(lambda: cluster.config("paris")["cache"]["ttlSeconds"] == 42, "the new config")
    assert cluster.get("secret", names.postgres_secret_name("paris"))["data"] == kept

    # Turned off: the database, its Service, policy and password go; the config has no section.
    cluster.apply(fleet.weather_proxy("paris", ns, environment="staging", analytics={"enabled": False}))
    cluster.wait_gone("statefulset", names.postgres_name("paris"))
    cluster.wait_gone("secret", names.postgres_secret_name("paris"))
    cluster.wait(lambda: "analytics" not in cluster.config("paris"), "config.yaml without analytics")
    disabled = cluster.wait(
        lambda: (
            (cluster.condition("weatherproxy", "paris", "AnalyticsReady") or {}).get("reason") == "Disabled"
        ),
        "AnalyticsReady Disabled",
    )
    assert disabled
