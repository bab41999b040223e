"""spec.analytics: validation (pydantic and CEL, one message), its structural schema, presets."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from tests.unit.operator.api import cel_eval
from weather_operator.api import analytics, schema
from weather_proxy import config

EXTERNAL: dict[str, Any] = {
    "mode": "External",
    "external": {"urlSecretRef": {"name": "history-db", "key": "url"}},
}


def _schema() -> dict[str, Any]:
    return schema.structural_schema(analytics.AnalyticsSpec)


def _resolve(spec: dict[str, Any] | None, environment: str = "production") -> analytics.EffectiveAnalytics:
    parsed = None if spec is None else analytics.AnalyticsSpec.model_validate(spec)
    return analytics.resolve(parsed, config.Environment(environment))


BAD_CEL: list[tuple[dict[str, Any], str]] = [
    ({"database": {"mode": "External"}}, analytics.EXTERNAL_NEEDS_URL),
    ({"database": {**EXTERNAL, "managed": {"instances": 2}}}, analytics.EXTERNAL_WITHOUT_MANAGED),
    (
        {"database": {"external": {"urlSecretRef": {"name": "db", "key": "url"}}}},
        analytics.MANAGED_WITHOUT_EXTERNAL,
    ),
    (
        {"database": {"mode": "Managed", "external": {"urlSecretRef": {"name": "db", "key": "url"}}}},
        analytics.MANAGED_WITHOUT_EXTERNAL,
    ),
]


@pytest.mark.parametrize(("spec", "message"), BAD_CEL, ids=lambda v: str(v)[:40])
def test_cel_and_pydantic_reject_with_the_same_message(spec: dict[str, Any], message: str) -> None:
    assert message in cel_eval.failed_messages(_schema(), spec)
    with pytest.raises(pydantic.ValidationError, match=message.split(" when ")[0].replace(".", r"\.")):
        analytics.AnalyticsSpec.model_validate(spec)


BAD_SCHEMA: list[tuple[dict[str, Any], tuple[str, ...], str]] = [
    ({"retentionDays": 0}, ("retentionDays",), "greater than or equal to 1"),
    ({"retentionDays": 3661}, ("retentionDays",), "less than or equal to 3660"),
    ({"database": {"mode": "Sideways"}}, ("database", "mode"), "'Managed' or 'External'"),
    ({"database": {"managed": {"instances": 6}}}, ("database", "managed", "instances"), "less than or equal"),
    (
        {"database": {"managed": {"storage": {"size": "lots"}}}},
        ("database", "managed", "storage", "size"),
        "pattern",
    ),
    ({"database": {"managed": {"image": "Not An Image"}}}, ("database", "managed", "image"), "pattern"),
    (
        {"database": {"mode": "External", "external": {"urlSecretRef": {"name": "Bad_Name", "key": "url"}}}},
        ("database", "external", "urlSecretRef", "name"),
        "pattern",
    ),
    ({"retention": 30}, ("retention",), "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("spec", "location", "rule"), BAD_SCHEMA, ids=lambda v: str(v)[:40])
def test_schema_errors_name_the_field_and_the_rule(
    spec: dict[str, Any], location: tuple[str, ...], rule: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        analytics.AnalyticsSpec.model_validate(spec)
    errors = [(tuple(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]
    assert any(loc == location and rule in msg for loc, msg in errors), errors


GOOD: list[dict[str, Any]] = [
    {},
    {"enabled": False},
    {"enabled": True, "retentionDays": 30, "eraseOnKeyDelete": False},
    {"database": {"mode": "Managed", "managed": {"instances": 3, "storage": {"size": "20Gi"}}}},
    {"database": EXTERNAL},
    {
        "database": {
            **EXTERNAL,
            "external": {**EXTERNAL["external"], "passwordSecretRef": {"name": "db", "key": "pw"}},
        }
    },
]


@pytest.mark.parametrize("spec", GOOD, ids=lambda v: str(v)[:40])
def test_valid_specs_pass_pydantic_and_cel(spec: dict[str, Any]) -> None:
    analytics.AnalyticsSpec.model_validate(spec)
    assert cel_eval.failed_messages(_schema(), spec) == []


def _nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        out += _nodes(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        out += _nodes(node["additionalProperties"], f"{path}.*")
    return out


def test_schema_is_structural_with_no_defaults_and_camel_case_fields() -> None:
    node = _schema()
    assert set(node["properties"]) == {"enabled", "database", "retentionDays", "eraseOnKeyDelete"}
    managed = node["properties"]["database"]["properties"]["managed"]["properties"]
    assert set(managed) == {"image", "instances", "storage", "resources"}
    assert not any("default" in sub for _, sub in _nodes(node))
    assert node["properties"]["retentionDays"]["maximum"] == analytics.RETENTION_DAYS_MAX
    assert node["properties"]["enabled"]["description"].startswith("Record usage history")


def test_presets_off_in_dev_on_in_staging_and_production() -> None:
    assert _resolve(None, "dev").enabled is False
    assert _resolve(None, "staging").enabled is True
    assert _resolve(None, "production").enabled is True
    assert (_resolve(None, "staging").instances, _resolve(None, "production").instances) == (1, 2)
    assert _resolve(None, "production").storage_size == "10Gi"
    assert _resolve(None, "production").resources.requests == {"cpu": "250m", "memory": "256Mi"}


def test_defaults_managed_retention_erasure() -> None:
    eff = _resolve(None)
    assert eff.managed is True
    assert eff.image == analytics.DEFAULT_POSTGRES_IMAGE
    assert eff.cnpg_image is None
    assert eff.retention_days == 90
    assert eff.erase_on_key_delete is True
    assert eff.url_secret_ref is None


def test_user_values_win_over_the_preset() -> None:
    eff = _resolve(
        {
            "enabled": True,
            "retentionDays": 7,
            "eraseOnKeyDelete": False,
            "database": {
                "managed": {
                    "image": "registry.example.com/postgres:16",
                    "instances": 3,
                    "storage": {"size": "50Gi", "storageClassName": "fast"},
                    "resources": {"requests": {"cpu": "1"}},
                }
            },
        },
        "dev",
    )
    assert (eff.enabled, eff.retention_days, eff.erase_on_key_delete) == (True, 7, False)
    assert (eff.image, eff.cnpg_image) == ("registry.example.com/postgres:16",) * 2
    assert (eff.instances, eff.storage_size, eff.storage_class_name) == (3, "50Gi", "fast")
    assert eff.resources.requests == {"cpu": "1"}
    assert eff.resources.limits == {}


def test_external_reads_its_secret_refs() -> None:
    eff = _resolve(
        {
            "database": {
                **EXTERNAL,
                "external": {**EXTERNAL["external"], "passwordSecretRef": {"name": "db", "key": "pw"}},
            }
        }
    )
    assert eff.managed is False
    assert eff.url_secret_ref is not None
    assert (eff.url_secret_ref.name, eff.url_secret_ref.key) == (
        "history-db",
        "url",
    )
    assert eff.password_secret_ref is not None
    assert eff.password_secret_ref.key == "pw"


def test_retention_bounds_match_the_proxy_config() -> None:
    bounds = config.Analytics.model_fields["retention_days"].metadata
    assert {type(b).__name__: getattr(b, "ge", getattr(b, "le", None)) for b in bounds} == {
        "Ge": analytics.RETENTION_DAYS_MIN,
        "Le": analytics.RETENTION_DAYS_MAX,
    }
    assert config.Analytics.model_fields["retention_days"].default == analytics.DEFAULT_RETENTION_DAYS
    assert (
        config.Analytics.model_fields["erase_on_key_delete"].default is analytics.DEFAULT_ERASE_ON_KEY_DELETE
    )


def test_the_cross_field_rules_are_declared_once_and_reach_the_schema() -> None:
    database = _schema()["properties"]["database"]
    assert database["x-kubernetes-validations"] == [r.entry() for r in analytics.DatabaseSpec.cel_rules]
    assert len(analytics.DatabaseSpec.cel_rules) == 3


@pytest.mark.parametrize("spec", [s for s, _ in BAD_CEL] + GOOD, ids=lambda v: str(v)[:40])
def test_each_rule_and_its_check_agree(spec: dict[str, Any]) -> None:
    messages = {r.message for r in analytics.DatabaseSpec.cel_rules}
    by_cel = set(cel_eval.failed_messages(_schema(), spec)) & messages
    try:
        analytics.AnalyticsSpec.model_validate(spec)
        by_pydantic: set[str] = set()
    except pydantic.ValidationError as caught:
        by_pydantic = {
            part
            for err in caught.errors()
            for part in str(err["msg"]).removeprefix("Value error, ").split("; ")
        } & messages
    assert by_pydantic == by_cel
