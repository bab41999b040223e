"""spec.errorTracking in the proxy Deployment: the DSN from the user's Secret, as the proxy reads it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.operator.render import cases
from weather_operator.api import resolve, weatherproxy
from weather_operator.render import deployment
from weather_proxy import config, contract, settings

SENTRY_ENV = {
    contract.ENV_SENTRY_DSN,
    contract.ENV_SENTRY_ENVIRONMENT,
    contract.ENV_SENTRY_TRACES_SAMPLE_RATE,
}
REF = {"name": "sentry", "key": "dsn"}


def _env(**spec: Any) -> dict[str, dict[str, Any]]:
    effective = resolve.effective(weatherproxy.WeatherProxySpec.model_validate(spec), cases.DEFAULT_IMAGE)
    rendered = deployment.render(cases.NAME, cases.NAMESPACE, effective, config_hash="0" * 16)
    [container] = rendered["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_the_dsn_comes_from_the_named_secret_and_the_rest_from_the_spec() -> None:
    env = _env(
        environment="staging",
        errorTracking={"dsnSecretRef": REF, "environment": "staging-eu", "tracesSampleRate": 0.25},
    )
    # Not optional, as the External Redis URL: ErrorTrackingConfigured reports a missing Secret.
    assert env[contract.ENV_SENTRY_DSN] == {
        "name": contract.ENV_SENTRY_DSN,
        "valueFrom": {"secretKeyRef": REF},
    }
    assert env[contract.ENV_SENTRY_ENVIRONMENT]["value"] == "staging-eu"
    assert env[contract.ENV_SENTRY_TRACES_SAMPLE_RATE]["value"] == "0.25"


@pytest.mark.parametrize("environment", ["dev", "staging", "production"])
def test_off_unless_set_then_filed_under_the_fleets_environment_without_traces(environment: str) -> None:
    assert not SENTRY_ENV & set(_env(environment=environment))
    env = _env(environment=environment, errorTracking={"dsnSecretRef": REF})
    values = {
        name: entry.get("value", "from the Secret") for name, entry in env.items() if name in SENTRY_ENV
    }
    assert values == {
        contract.ENV_SENTRY_DSN: "from the Secret",
        contract.ENV_SENTRY_ENVIRONMENT: environment,
        contract.ENV_SENTRY_TRACES_SAMPLE_RATE: "0",
    }


@pytest.mark.parametrize("rate", [0.0, 0.05, 1.0])
def test_the_proxy_reads_what_the_operator_renders(rate: float) -> None:
    env = _env(
        environment="production",
        errorTracking={"dsnSecretRef": REF, "tracesSampleRate": rate},
    )
    # What the kubelet would set: the values as rendered, the Secret's DSN; the Downward API's
    # fields (valueFrom.fieldRef, resourceFieldRef) are not what this test is about.
    environ = {
        name: entry.get("value", "https://public@sentry.example/7")
        for name, entry in env.items()
        if "value" in entry or "secretKeyRef" in entry.get("valueFrom", {})
    }
    tracking = settings.error_tracking(environ, config.ProxyConfig(environment=config.Environment.PRODUCTION))
    assert tracking is not None
    assert (tracking.dsn, tracking.environment, tracking.traces_sample_rate) == (
        "https://public@sentry.example/7",
        "production",
        rate,
    )
