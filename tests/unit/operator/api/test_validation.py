"""Invalid specs are rejected, by pydantic and by the CRD's CEL rules, with messages naming the field."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from tests.unit.operator.api import bad_specs, cel_eval
from weather_operator.api import apikey, cel, crd, weatherproxy

MODELS: dict[str, type[pydantic.BaseModel]] = {
    bad_specs.WEATHERPROXY: weatherproxy.WeatherProxySpec,
    bad_specs.APIKEY: apikey.ApiKeySpec,
}
KINDS = {bad_specs.WEATHERPROXY: crd.WEATHERPROXY, bad_specs.APIKEY: crd.APIKEY}


def _spec_schema(kind: str) -> dict[str, Any]:
    return crd.open_api_schema(KINDS[kind])["properties"]["spec"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("bad", bad_specs.BAD_SPECS, ids=lambda b: b.name)
def test_pydantic_rejects_every_bad_spec(bad: bad_specs.BadSpec) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        MODELS[bad.kind].model_validate(bad.spec())
    if bad.cel:
        assert bad.error in str(caught.value)
    else:
        # pydantic names the same field, as a location path instead of "spec.a.b".
        field = bad.error.removeprefix("spec.").split("[")[0].split(".")
        locations = [[str(p) for p in err["loc"]] for err in caught.value.errors()]
        assert any(loc[: len(field)] == field for loc in locations), (field, locations)


@pytest.mark.parametrize("bad", [b for b in bad_specs.BAD_SPECS if b.cel], ids=lambda b: b.name)
def test_cel_rules_reject_the_cel_cases(bad: bad_specs.BadSpec) -> None:
    assert bad.error in cel_eval.failed_messages(_spec_schema(bad.kind), bad.spec())


@pytest.mark.parametrize("kind", [bad_specs.WEATHERPROXY, bad_specs.APIKEY])
def test_cel_rules_accept_the_valid_bases(kind: str) -> None:
    base = (
        bad_specs.VALID_WEATHERPROXY_SPEC if kind == bad_specs.WEATHERPROXY else bad_specs.VALID_APIKEY_SPEC
    )
    assert cel_eval.failed_messages(_spec_schema(kind), base) == []
    MODELS[kind].model_validate(base)


GOOD_EDGE_CASES: list[dict[str, Any]] = [
    {"autoscaling": {"minReplicas": 3, "maxReplicas": 3}},
    {"autoscaling": {"minReplicas": 3}},
    {"disruption": {"maxUnavailable": "25%"}},
    {"disruption": {"minAvailable": 0}},
    {"disruption": {"enabled": False}},
    {"redis": {"mode": "External", "external": {"urlSecretRef": {"name": "my-redis", "key": "url"}}}},
    {"redis": {"mode": "Managed"}},
    {"errorTracking": {"dsnSecretRef": {"name": "sentry", "key": "dsn"}}},
    {"errorTracking": {"dsnSecretRef": {"name": "sentry.dsn", "key": "dsn"}, "tracesSampleRate": 1.0}},
    {"errorTracking": {"dsnSecretRef": {"name": "s", "key": "d"}, "environment": "eu-1.prod_b"}},
    {"ingress": {"enabled": False}},
    {"ingress": {"enabled": True, "host": "weather.example.com"}},
    {"image": "redis@sha256:" + "a" * 64},
    {"image": "localhost:5000/weather-proxy:dev"},
    {"monitoring": {"serviceMonitor": {"interval": "500ms", "labels": {"release": "kube-prometheus-stack"}}}},
    {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1}}},
    # Whole numbers as floats: cel-python has no int-to-double equality; the API server turns the
    # integers of a number field into doubles before CEL sees them.
    {
        "monitoring": {
            "slo": {"availabilityPercent": 99.99, "latency": {"thresholdSeconds": 1.0, "percent": 99.5}}
        }
    },
    {"monitoring": {"slo": {"latency": {"thresholdSeconds": 0.001}, "minRequestsPerSecond": 0}}},
    {"monitoring": {"alerts": {"availabilityTarget": 99.5}, "slo": {"availabilityPercent": 99.5}}},
    {"monitoring": {"alerts": {"availabilityTarget": 99.5}, "slo": {"minRequestsPerSecond": 1}}},
]


@pytest.mark.parametrize("patch", GOOD_EDGE_CASES)
def test_valid_edge_cases_pass_both_pydantic_and_cel(patch: dict[str, Any]) -> None:
    spec = bad_specs.merge(bad_specs.VALID_WEATHERPROXY_SPEC, patch)
    weatherproxy.WeatherProxySpec.model_validate(spec)
    assert cel_eval.failed_messages(_spec_schema(bad_specs.WEATHERPROXY), spec) == []


@pytest.mark.parametrize(
    ("disruption", "message"),
    [
        ({"minAvailable": -1}, "spec.disruption.minAvailable must be >= 0"),
        ({"maxUnavailable": "half"}, "spec.disruption.maxUnavailable must be an integer or a percentage"),
        ({"maxUnavailable": "150%"}, "spec.disruption.maxUnavailable must be an integer or a percentage"),
    ],
)
def test_disruption_values_are_checked_by_pydantic(disruption: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        weatherproxy.Disruption.model_validate(disruption)


def test_unknown_fields_are_rejected_with_their_name() -> None:
    with pytest.raises(pydantic.ValidationError, match="replica"):
        weatherproxy.WeatherProxySpec.model_validate({"replica": 3})
    with pytest.raises(pydantic.ValidationError, match="ttl"):
        weatherproxy.WeatherProxySpec.model_validate({"cache": {"ttl": 3}})


def test_merge_is_deep_and_does_not_touch_the_base() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1]}
    merged = bad_specs.merge(base, {"a": {"b": 9}, "d": [2]})
    assert merged == {"a": {"b": 9, "c": 2}, "d": [2]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]}


def _rule_models(model: type[pydantic.BaseModel], seen: set[type[pydantic.BaseModel]]) -> None:
    if model in seen:
        return
    seen.add(model)
    for field in model.model_fields.values():
        for arg in _type_args(field.annotation):
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                _rule_models(arg, seen)


def _type_args(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [a for arg in args for a in _type_args(arg)]


def _all_rules() -> list[cel.Rule]:
    seen: set[type[pydantic.BaseModel]] = set()
    for model in MODELS.values():
        _rule_models(model, seen)
    return [r for m in seen for r in getattr(m, "cel_rules", ())]


RULE_MESSAGES = {r.message for r in _all_rules()}

# Specs on both sides of every rule (the bad specs' CEL cases and the good edge cases cover more).
RULE_CASES: list[dict[str, Any]] = [
    {"disruption": {"enabled": False, "minAvailable": 1, "maxUnavailable": 1}},
    {"disruption": {"enabled": False, "minAvailable": 1}},
    {"disruption": {"enabled": True, "maxUnavailable": 1}},
    {"disruption": {}},
    {"autoscaling": {"maxReplicas": 1}},
    {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}},
    {"redis": {"mode": "External", "managed": {}}},
    {"redis": {}},
    {"ingress": {"host": "weather.example.com"}},
    {"ingress": {"enabled": True}},
    {"ingress": {}},
    {"monitoring": {"slo": {"latency": {"percent": 99}}}},
    {"monitoring": {"slo": {"availabilityPercent": 99.9}}},
]


def _pydantic_rule_messages(spec: dict[str, Any]) -> set[str]:
    try:
        weatherproxy.WeatherProxySpec.model_validate(spec)
    except pydantic.ValidationError as caught:
        messages = {
            part
            for err in caught.errors()
            for part in str(err["msg"]).removeprefix("Value error, ").split("; ")
        }
        return messages & RULE_MESSAGES
    return set()


def test_every_cross_field_rule_is_declared_once_with_its_check() -> None:
    rules = _all_rules()
    assert len(rules) == len(RULE_MESSAGES) >= 5
    schema_rules = [
        entry
        for node in _walk_schema(_spec_schema(bad_specs.WEATHERPROXY))
        for entry in node.get(cel.VALIDATIONS_KEY, [])
    ]
    assert sorted(schema_rules, key=_key) == sorted((r.entry() for r in rules), key=_key)


def _key(entry: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(entry.items())


def _walk_schema(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for sub in node.get("properties", {}).values():
        out += _walk_schema(sub)
    if isinstance(node.get("items"), dict):
        out += _walk_schema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk_schema(node["additionalProperties"])
    return out


@pytest.mark.parametrize(
    "patch",
    RULE_CASES
    + GOOD_EDGE_CASES
    + [b.patch for b in bad_specs.BAD_SPECS if b.cel and b.kind == "WeatherProxy"],
)
def test_each_rule_and_its_check_agree(patch: dict[str, Any]) -> None:
    spec = bad_specs.merge(bad_specs.VALID_WEATHERPROXY_SPEC, patch)
    by_cel = set(cel_eval.failed_messages(_spec_schema(bad_specs.WEATHERPROXY), spec)) & RULE_MESSAGES
    assert _pydantic_rule_messages(spec) == by_cel
