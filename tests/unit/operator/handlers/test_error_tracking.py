"""The operator's side of error tracking: the DSN Secret's condition, and its own error reports.

The condition follows RedisReady's External URL Secret: the pods' SENTRY_DSN is a plain
secretKeyRef, and a missing Secret or key shows as ErrorTrackingConfigured=False
(SecretNotFound) with a Warning Event when it turns so. The operator's own reports go to a
real Sentry-protocol receiver (``tests/support/sentry_receiver``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from tests.support.sentry_receiver import SentryReceiver, sentry_receiver  # noqa: F401
from weather_operator import apply, errortracking, settings, status
from weather_operator.api import resolve, weatherproxy
from weather_operator.controller import fleets, indexes, runtime, workqueue
from weather_proxy import version

REPO = pathlib.Path(__file__).resolve().parents[4]
REF = {"name": "sentry", "key": "dsn"}
WP = workqueue.Request("WeatherProxy", "weather", "paris")


def _spec(**spec: Any) -> Any:
    return resolve.effective(
        weatherproxy.WeatherProxySpec.model_validate({"environment": "staging", **spec}), default_image="img"
    )


class Cluster:
    """What observe_error_tracking reads: Secrets by name."""

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.secrets = secrets
        self.reads: list[str] = []

    async def get(self, kind: apply.Kind, namespace: str, name: str) -> dict[str, Any] | None:
        assert kind is apply.SECRET
        self.reads.append(f"{namespace}/{name}")
        return self.secrets.get(name)


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({}, ("False", "SecretNotFound", "Secret 'sentry' not found")),
        (
            {"sentry": {"data": {"other": "eA=="}}},
            ("False", "SecretNotFound", "Secret 'sentry' has no key 'dsn'"),
        ),
        ({"sentry": {"data": {"dsn": "aHR0cHM6Ly9rQGgvMQ=="}}}, ("True", "SecretFound", "Secret 'sentry'")),
    ],
    ids=["no-secret", "no-key", "found"],
)
async def test_the_condition_says_whether_the_dsn_secret_is_there(
    secrets: dict[str, dict[str, Any]], expected: tuple[str, str, str]
) -> None:
    cluster = Cluster(secrets)
    spec = _spec(errorTracking={"dsnSecretRef": REF})
    observed = await fleets.observe_error_tracking(cluster, "weather", spec)  # type: ignore[arg-type]
    assert observed.type == status.ERROR_TRACKING_CONFIGURED
    assert (observed.status, observed.reason) == expected[:2]
    assert expected[2] in observed.message
    assert cluster.reads == ["weather/sentry"]
    if observed.status == "False":
        assert "cannot start" in observed.message


async def test_off_it_reads_nothing_and_says_disabled() -> None:
    cluster = Cluster({})
    observed = await fleets.observe_error_tracking(cluster, "weather", _spec())  # type: ignore[arg-type]
    assert (observed.status, observed.reason) == ("False", "Disabled")
    assert cluster.reads == []


def test_the_condition_is_in_the_fleet_status_and_a_missing_secret_warns_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = _spec(errorTracking={"dsnSecretRef": REF})
    missing = status.error_tracking_from_secret(spec.error_tracking, None)
    obs = status.ProxyObservation(
        name="paris",
        namespace="weather",
        generation=1,
        spec=spec,
        deployment=None,
        redis=status.RedisObservation(managed=True, ready=True, detail="Redis is ready"),
        monitoring=status.MonitoringObservation(wanted=False, available=False),
        api_keys=0,
        config_hash="h",
        selector="s",
        error_tracking=missing,
    )
    conditions = {c.type: (c.status, c.reason) for c in status.proxy_conditions(obs)}
    assert conditions[status.ERROR_TRACKING_CONFIGURED] == ("False", "SecretNotFound")
    warned: list[tuple[str, str]] = []
    monkeypatch.setattr(fleets.events, "warn", lambda body, reason, message: warned.append((reason, message)))
    condition = {"type": status.ERROR_TRACKING_CONFIGURED, "status": "False", "reason": "SecretNotFound"}
    body = {"metadata": {"name": "paris", "namespace": "weather"}}
    desired = {"conditions": [{**condition, "message": missing.message}]}
    fleets._announce_transitions(body, {}, desired)
    fleets._announce_transitions(body, desired, desired)  # unchanged: no second Event
    assert warned == [("ErrorTrackingSecretNotFound", missing.message)]


def test_the_dsn_setting_is_checked_and_never_shown() -> None:
    dsn = "https://0123abcd@sentry.example.com/7"
    own = settings.OperatorSettings.from_env(
        {"WEATHER_OPERATOR_SENTRY_DSN": dsn, "WEATHER_OPERATOR_SENTRY_ENVIRONMENT": "ops"}
    )
    assert own.sentry_dsn is not None
    assert own.sentry_dsn.get_secret_value() == dsn
    assert own.sentry_environment == "ops"
    assert dsn not in repr(own)
    assert settings.OperatorSettings.from_env({}).sentry_dsn is None
    for bad in (
        "sentry.example.com",
        "https://sentry.example.com/7",
        "https://0123abcd@sentry.example.com/",
        "https://0123abcd@sentry.example.com/project",
        "https://0123abcd@sentry.example.com:port/7",
    ):
        with pytest.raises(
            settings.SettingsError, match="WEATHER_OPERATOR_SENTRY_DSN: must be a DSN"
        ) as caught:
            settings.OperatorSettings.from_env({"WEATHER_OPERATOR_SENTRY_DSN": bad})
        assert bad not in str(caught.value)
    with pytest.raises(pydantic.ValidationError):
        settings.OperatorSettings(sentry_environment="")


@pytest.fixture
def reporting(sentry_receiver: SentryReceiver) -> Iterator[SentryReceiver]:  # noqa: F811
    """The operator's error reports on, to the receiver; off again (the global client) after."""
    own = settings.OperatorSettings.from_env(
        {"WEATHER_OPERATOR_SENTRY_DSN": sentry_receiver.dsn, "WEATHER_OPERATOR_SENTRY_ENVIRONMENT": "ops"}
    )
    assert errortracking.init(own) is True
    try:
        yield sentry_receiver
    finally:
        errortracking.close()


async def test_error_lines_and_unexpected_reconcile_failures_are_reported(reporting: SentryReceiver) -> None:
    logging.getLogger("kopf.objects").info("an info line is no report")
    try:
        raise ValueError("renderer bug while handling wpk_LeakedKeyValue123")
    except ValueError:
        logging.getLogger("weather_operator.controller.periodic").exception("periodic drift failed")

    async def failing(request: workqueue.Request, reason: str) -> object:
        raise KeyError("spec")

    async def refused(request: workqueue.Request, reason: str) -> object:
        raise apply.ApiError(409, "Conflict", "try again")

    async def requeued(request: workqueue.Request, reason: str) -> object:
        raise workqueue.Retry(1.0, "rollout under way")

    for reconcile, expected in ((failing, KeyError), (refused, apply.ApiError), (requeued, workqueue.Retry)):
        with pytest.raises(expected):
            await errortracking.reporting(reconcile)(WP, "test")
    errortracking.close()
    events = reporting.wait_for_events(2)
    await asyncio.sleep(0.2)  # nothing else on its way
    assert len(reporting.events) == 2
    logged, reconciled = sorted(events, key=lambda e: "logentry" not in e)
    assert logged["logentry"]["message"] == "periodic drift failed"
    assert logged["exception"]["values"][0]["type"] == "ValueError"
    assert reconciled["exception"]["values"][0]["type"] == "KeyError"
    assert reconciled["tags"] == {"kind": "WeatherProxy", "namespace": "weather", "name": "paris"}
    for event in events:
        assert (event["release"], event["environment"]) == (version.VERSION, "ops")
        assert "breadcrumbs" not in event
        frames = [f for value in event["exception"]["values"] for f in value["stacktrace"]["frames"]]
        assert not [frame for frame in frames if "vars" in frame]
    assert b"wpk_LeakedKeyValue123" not in b"".join(reporting.bodies)


def test_the_controller_queue_wraps_the_reconciles_only_when_reporting() -> None:
    own = settings.OperatorSettings(reconcile_workers=1)
    plain = runtime.Controller(own, indexes.Indexes({}, {}), report_errors=False).queue
    wrapped = runtime.Controller(own, indexes.Indexes({}, {}), report_errors=True).queue
    assert set(wrapped._reconcilers) == set(plain._reconcilers) == {"WeatherProxy", "ApiKey"}
    assert all(hasattr(r, "__wrapped__") for r in wrapped._reconcilers.values())  # errortracking.reporting
    assert not any(hasattr(r, "__wrapped__") for r in plain._reconcilers.values())


OPERATOR_OFF = textwrap.dedent(
    """
    import json, sys
    from weather_operator import errortracking, settings
    from weather_operator.handlers import startup
    on = errortracking.init(settings.OperatorSettings.from_env(json.loads(sys.argv[1])))
    loaded = "sentry_sdk" in sys.modules
    errortracking.close()
    print(json.dumps({"on": on, "loaded": loaded}))
    """
)


@pytest.mark.parametrize("dsn", [False, True], ids=["off", "on"])
def test_without_a_dsn_the_operator_never_loads_the_sdk(dsn: bool) -> None:
    environ = {"WEATHER_OPERATOR_SENTRY_DSN": "http://k@127.0.0.1:9/1"} if dsn else {}
    done = subprocess.run(
        [sys.executable, "-c", OPERATOR_OFF, json.dumps(environ)],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"on": dsn, "loaded": dsn}
