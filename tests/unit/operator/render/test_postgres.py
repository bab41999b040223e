"""The usage history's database objects, the proxy's analytics config and env, the erasure Job.

Golden files under tests/golden/analytics-*/ show the exact objects; the behaviour tests say
what must hold whatever the golden files say. Refresh: ``UPDATE_GOLDEN=1 pytest tests/unit/operator/render``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from tests.unit.operator.render import golden
from weather_operator import status
from weather_operator.api import analytics as analytics_api
from weather_operator.controller import fleets
from weather_operator.render import names, postgres
from weather_proxy import config, settings

PROXY = "paris"
NAMESPACE = "weather"
PROXY_IMAGE = "ghcr.io/weather-proxy/proxy:0.1.0"
KEY_ID = "weather/team-a"
KEY_UID = "7d1c9a52-0b3e-4e8f-9a41-2f5c6b8d0e13"

EXTERNAL: dict[str, Any] = {
    "database": {
        "mode": "External",
        "external": {
            "urlSecretRef": {"name": "history-db", "key": "url"},
            "passwordSecretRef": {"name": "history-db", "key": "password"},
        },
    }
}
CUSTOMISED: dict[str, Any] = {
    "retentionDays": 30,
    "database": {
        "managed": {
            "image": "registry.example.com/postgres:16",
            "instances": 3,
            "storage": {"size": "50Gi", "storageClassName": "fast"},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        }
    },
}


def _analytics(spec: dict[str, Any] | None = None, environment: str = "production") -> Any:
    parsed = analytics_api.AnalyticsSpec.model_validate(spec) if spec is not None else None
    return analytics_api.resolve(parsed, config.Environment(environment))


def _files(objects: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, str]:
    files = {f"{o['kind'].lower()}-{o['metadata']['name']}.yaml": golden.dump(o) for o in objects}
    files["_analytics.yaml"] = golden.dump(extra)
    return files


CASES: dict[str, tuple[dict[str, Any] | None, bool]] = {
    "analytics-statefulset": (None, False),
    "analytics-cnpg": (None, True),
    "analytics-cnpg-customised": (CUSTOMISED, True),
    "analytics-external": (EXTERNAL, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_database_proxy_side_and_erase_job_match_golden_files(case: str) -> None:
    spec, cnpg = CASES[case]
    analytics = _analytics(spec)
    database = postgres.render_database(PROXY, NAMESPACE, analytics, cnpg)
    section = postgres.analytics_config(PROXY, analytics, cnpg)
    job = postgres.render_erase_job(PROXY, NAMESPACE, KEY_ID, KEY_UID, PROXY_IMAGE, analytics)
    assert job is not None
    summary = {
        "applyOrder": [f"{o['kind']}/{o['metadata']['name']}" for o in database.objects],
        "unwanted": [f"{r.api_version} {r.kind}/{r.name}" for r in database.unwanted],
        "configYamlAnalytics": section.to_camel_dict() if section else None,
        "proxyEnv": postgres.proxy_env(PROXY, analytics),
    }
    golden.check_case(case, _files([*database.objects, job], summary))


def test_password_secret_matches_golden_file() -> None:
    obj = postgres.render_password_secret(PROXY, NAMESPACE, "not-a-real-password-used-only-in-tests")
    golden.check_case("analytics-password-secret", {"secret-paris-postgres-auth.yaml": golden.dump(obj)})


def test_password_secret_is_basic_auth_and_the_password_only_in_data() -> None:
    password = fleets.new_password()  # what the fleet's reconciler generates
    obj = postgres.render_password_secret(PROXY, NAMESPACE, password)
    assert obj["type"] == "kubernetes.io/basic-auth"
    assert base64.b64decode(obj["data"]["password"]).decode() == password
    assert base64.b64decode(obj["data"]["username"]).decode() == names.POSTGRES_USER
    assert "stringData" not in obj
    assert len(password) >= 40
    assert fleets.new_password() != password


@pytest.mark.parametrize("cnpg", [False, True])
def test_no_rendered_object_carries_a_password(cnpg: bool) -> None:
    """The database objects and Job name the Secret; the password itself is only ever created."""
    analytics = _analytics()
    rendered = postgres.render_database(PROXY, NAMESPACE, analytics, cnpg).objects
    job = postgres.render_erase_job(PROXY, NAMESPACE, KEY_ID, KEY_UID, PROXY_IMAGE, analytics)
    assert job is not None
    rendered.append(job)
    text = yaml.safe_dump(rendered)
    assert "Secret" not in [o["kind"] for o in rendered]
    assert names.postgres_secret_name(PROXY) in text


def test_an_apikey_deleted_again_under_the_same_name_gets_a_job_of_its_own() -> None:
    """A finished Job is kept a while: a Job name shared by two ApiKeys of one name would hide the second."""
    first = names.erase_job_name(PROXY, KEY_ID, KEY_UID)
    assert first == names.erase_job_name(PROXY, KEY_ID, KEY_UID)  # a repeated event finds it (409)
    assert first != names.erase_job_name(PROXY, KEY_ID, "0b8e6f1d-5a2c-4d7e-8f90-1c3b5a7d9e24")


def test_the_same_inputs_render_the_same_objects() -> None:
    one = postgres.render_database(PROXY, NAMESPACE, _analytics(CUSTOMISED), True)
    two = postgres.render_database(PROXY, NAMESPACE, _analytics(CUSTOMISED), True)
    assert one == two


@pytest.mark.parametrize("cnpg", [False, True])
def test_rendered_analytics_section_is_the_proxys_own_model(cnpg: bool) -> None:
    """config.yaml's section goes through weather_proxy.config exactly as the proxy reads it."""
    analytics = _analytics({"retentionDays": 14, "eraseOnKeyDelete": False})
    section = postgres.analytics_config(PROXY, analytics, cnpg)
    assert section is not None
    text = yaml.safe_dump({"analytics": section.to_camel_dict()})
    reread = config.ProxyConfig.model_validate(yaml.safe_load(text))
    assert reread.analytics == section
    assert reread.analytics.retention_days == 14
    assert reread.analytics.erase_on_key_delete is False
    host = "paris-analytics-rw" if cnpg else "paris-postgres"
    assert reread.analytics.database.url == f"postgresql://weather@{host}:5432/weather"


def test_external_url_comes_from_env_and_passes_the_proxys_checks() -> None:
    analytics = _analytics(EXTERNAL)
    section = postgres.analytics_config(PROXY, analytics, cnpg_available := True)
    assert cnpg_available
    assert section is not None
    assert section.database.url == postgres.EXTERNAL_PLACEHOLDER_URL
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in postgres.proxy_env(PROXY, analytics)}
    assert env == {
        settings.ENV_ANALYTICS_URL: {"name": "history-db", "key": "url"},
        config.ANALYTICS_PASSWORD_ENV: {"name": "history-db", "key": "password"},
    }
    # What the proxy does with the URL the Secret holds: it replaces the placeholder.
    cfg = config.ProxyConfig(analytics=section)
    real = settings.with_env(cfg, {settings.ENV_ANALYTICS_URL: "postgresql://history@db.example.com:5432/h"})
    assert real.analytics is not None
    assert real.analytics.database.url == "postgresql://history@db.example.com:5432/h"


def test_external_without_password_sets_only_the_url() -> None:
    spec = {"database": {"mode": "External", "external": {"urlSecretRef": {"name": "db", "key": "url"}}}}
    env = postgres.proxy_env(PROXY, _analytics(spec))
    assert [e["name"] for e in env] == [settings.ENV_ANALYTICS_URL]


@pytest.mark.parametrize("cnpg", [False, True])
def test_managed_password_env_reads_the_one_secret_in_both_forms(cnpg: bool) -> None:
    analytics = _analytics()
    env = postgres.proxy_env(PROXY, analytics)
    assert env == [
        {
            "name": config.ANALYTICS_PASSWORD_ENV,
            "valueFrom": {"secretKeyRef": {"name": "paris-postgres-auth", "key": "password"}},
        }
    ]
    if cnpg:
        cluster = postgres.render_cnpg_cluster(PROXY, NAMESPACE, analytics)
        assert cluster["spec"]["bootstrap"]["initdb"]["secret"] == {"name": "paris-postgres-auth"}
        assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == names.POSTGRES_USER
    else:
        container = postgres.render_statefulset(PROXY, NAMESPACE, analytics)["spec"]["template"]["spec"][
            "containers"
        ][0]
        refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
        assert refs == [{"name": "paris-postgres-auth", "key": "password"}]


def test_analytics_off_renders_nothing_and_wants_everything_gone() -> None:
    off = _analytics(None, "dev")
    assert off.enabled is False
    assert postgres.analytics_config(PROXY, off, True) is None
    assert postgres.proxy_env(PROXY, off) == []
    assert postgres.render_erase_job(PROXY, NAMESPACE, KEY_ID, KEY_UID, PROXY_IMAGE, off) is None
    database = postgres.render_database(PROXY, NAMESPACE, off, True)
    assert database.objects == []
    unwanted = {(r.kind, r.name) for r in database.unwanted}
    assert unwanted == {
        ("StatefulSet", "paris-postgres"),
        ("Service", "paris-postgres"),
        ("NetworkPolicy", "paris-postgres"),
        ("NetworkPolicy", "paris-analytics"),
        ("Cluster", "paris-analytics"),
        ("Secret", "paris-postgres-auth"),
    }
    # Without the CloudNativePG CRDs no Cluster can exist: nothing to look up.
    without_cnpg = postgres.render_database(PROXY, NAMESPACE, off, False)
    assert ("Cluster", "paris-analytics") not in {(r.kind, r.name) for r in without_cnpg.unwanted}


def test_switching_form_makes_the_other_forms_objects_unwanted() -> None:
    analytics = _analytics()
    cnpg = postgres.render_database(PROXY, NAMESPACE, analytics, True)
    plain = postgres.render_database(PROXY, NAMESPACE, analytics, False)
    assert {(r.kind, r.name) for r in cnpg.unwanted} == {
        (o["kind"], o["metadata"]["name"]) for o in plain.objects
    }
    assert {(r.kind, r.name) for r in plain.unwanted} == {("NetworkPolicy", "paris-analytics")}
    # The Secret stays in both: the same owner password whichever form runs.
    assert all(r.kind != "Secret" for r in [*cnpg.unwanted, *plain.unwanted])


def test_network_policy_admits_only_the_fleets_proxy_and_eraser_pods() -> None:
    policy = postgres.render_network_policy(PROXY, NAMESPACE)
    assert policy["spec"]["podSelector"]["matchLabels"] == names.selector_labels(PROXY, names.POSTGRES)
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["from"]] == [
        "proxy",
        "history-eraser",
    ]
    assert all(
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == PROXY for peer in rule["from"]
    )
    job = postgres.render_erase_job(PROXY, NAMESPACE, KEY_ID, KEY_UID, PROXY_IMAGE, _analytics())
    assert job is not None
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels.items() >= rule["from"][1]["podSelector"]["matchLabels"].items()


def test_statefulset_keeps_its_data_on_a_claim_and_runs_restricted() -> None:
    sts = postgres.render_statefulset(PROXY, NAMESPACE, _analytics(CUSTOMISED))
    assert sts["spec"]["replicas"] == 1
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    pod = sts["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.example.com/postgres:16"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsNonRoot"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {postgres.DATA_DIR, postgres.SOCKET_DIR}
    assert "$(" not in container["command"][2], "the kubelet would expand $(VAR) in a command"


def test_erase_job_runs_the_proxys_erase_cli_with_the_fleets_config() -> None:
    from weather_proxy.history import __main__ as history_cli

    job = postgres.render_erase_job(PROXY, NAMESPACE, KEY_ID, KEY_UID, PROXY_IMAGE, _analytics())
    assert job is not None
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "weather_proxy.history"]
    # The CLI's own parser accepts the arguments.
    args = history_cli._parser(settings.ProxySettings.from_env({})).parse_args(command[3:])
    assert (args.command, args.key_id, args.config) == ("erase", KEY_ID, names.CONFIG_PATH)
    assert container["image"] == PROXY_IMAGE
    assert job["spec"]["template"]["spec"]["volumes"] == [
        {"name": "config", "configMap": {"name": "paris-config"}}
    ]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["metadata"]["annotations"][postgres.KEY_ID_ANNOTATION] == KEY_ID


def test_erase_job_is_off_when_erasure_is() -> None:
    analytics = _analytics({"eraseOnKeyDelete": False})
    assert postgres.render_erase_job(PROXY, NAMESPACE, KEY_ID, KEY_UID, PROXY_IMAGE, analytics) is None


@pytest.mark.parametrize("key_id", ["weather/team-a", "a" * 63 + "/" + "b" * 253])
def test_erase_job_names_are_valid_and_distinct_per_key(key_id: str) -> None:
    name = names.erase_job_name("p" * 63, key_id, KEY_UID)
    assert len(name) <= 63
    assert name != names.erase_job_name("p" * 63, key_id + "x", KEY_UID)
    assert names.erase_job_name(PROXY, key_id, KEY_UID) == names.erase_job_name(PROXY, key_id, KEY_UID)


@pytest.mark.parametrize(
    ("spec", "cnpg", "database", "expected"),
    [
        ({"enabled": False}, False, None, ("True", "Disabled")),
        (EXTERNAL, False, None, ("Unknown", "External")),
        (None, False, None, ("False", "DatabaseCreating")),
        (None, False, {"status": {"replicas": 1}}, ("False", "DatabaseNotReady")),
        (None, False, {"status": {"readyReplicas": 1}}, ("True", "DatabaseReady")),
        (None, True, None, ("False", "DatabaseCreating")),
        (None, True, {"status": {"phase": "Setting up primary"}}, ("False", "DatabaseNotReady")),
        (
            None,
            True,
            {"status": {"phase": "Cluster in healthy state", "readyInstances": 2}},
            ("True", "DatabaseReady"),
        ),
    ],
)
def test_analytics_ready_condition_from_the_live_database(
    spec: dict[str, Any] | None, cnpg: bool, database: dict[str, Any] | None, expected: tuple[str, str]
) -> None:
    result = status.analytics_readiness(PROXY, _analytics(spec), cnpg, database)
    assert result.type == status.ANALYTICS_READY
    assert (result.status, result.reason) == expected
    assert result.message
