"""Invalid specs are rejected, by pydantic and by the CRD's CEL rules, with messages naming the field."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from tests.unit.operator.api import bad_specs, cel_eval
from weather_operator.api import apikey, crd, weatherproxy

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
    {"ingress": {"enabled": False}},
    {"ingress": {"enabled": True, "host": "weather.example.com"}},
    {"image": "redis@sha256:" + "a" * 64},
    {"image": "localhost:5000/weather-proxy:dev"},
    {"monitoring": {"serviceMonitor": {"interval": "500ms", "labels": {"release": "kube-prometheus-stack"}}}},
    {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1}}},
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
