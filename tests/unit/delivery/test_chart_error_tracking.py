"""The chart's optional operator DSN: off by default, from a Secret when named."""

from __future__ import annotations

from typing import Any

from testbed import helm


def _env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_off_by_default_and_a_named_secret_gives_the_operator_its_dsn_and_environment() -> None:
    assert not [name for name in _env(helm.template()) if "SENTRY" in name]
    env = _env(helm.template({"errorTracking.dsnSecretRef.name": "operator-sentry"}))
    assert env["WEATHER_OPERATOR_SENTRY_DSN"] == {"secretKeyRef": {"name": "operator-sentry", "key": "dsn"}}
    assert "WEATHER_OPERATOR_SENTRY_ENVIRONMENT" not in env
    env = _env(
        helm.template(
            {
                "errorTracking.dsnSecretRef.name": "operator-sentry",
                "errorTracking.dsnSecretRef.key": "url",
                "errorTracking.environment": "platform-eu",
            }
        )
    )
    assert env["WEATHER_OPERATOR_SENTRY_DSN"] == {"secretKeyRef": {"name": "operator-sentry", "key": "url"}}
    assert env["WEATHER_OPERATOR_SENTRY_ENVIRONMENT"] == "platform-eu"
