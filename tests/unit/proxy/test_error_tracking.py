"""Error reports in the Sentry protocol, received by a real receiver: 5xx only, no personal data.

The app runs in process with ``SENTRY_DSN`` pointing at ``tests/support/sentry_receiver``; the
client calls it from CLIENT_IP with an API key and its own user agent. Whatever reaches the
receiver (every decoded body, not only the events) is searched for those and for the query as
typed. Without a DSN, a separate interpreter serves errors and 5xx answers and never loads
``sentry_sdk``.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devcluster import openmeteo as om
from tests.support.sentry_receiver import SentryReceiver, sentry_receiver  # noqa: F401
from tests.unit.proxy.conftest import KEY, build_config
from weather_proxy import app as app_mod
from weather_proxy import config as config_mod
from weather_proxy import version
from weather_proxy.observability import errortracking

REPO = pathlib.Path(__file__).resolve().parents[3]
CLIENT_IP = "10.1.2.3"
USER_AGENT = "error-tracking-test-agent/7.1 (unit)"
HEADERS = {"X-API-Key": KEY, "User-Agent": USER_AGENT, "Cookie": "session=s3cr3t-cookie-value"}
# ISO timestamps (a seconds field like "48.86...") are not the coordinates they may look like.
_TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def environ(receiver: SentryReceiver, **extra: str) -> dict[str, str]:
    return {"SENTRY_DSN": receiver.dsn, **extra}


@contextlib.asynccontextmanager
async def serving(
    cfg: config_mod.ProxyConfig, env: dict[str, str], *, fast_path: bool = True
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app with its lifespan, called from CLIENT_IP; leaving it flushes the reports."""
    app = app_mod.create_app(cfg, environ=env, fast_path=fast_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40123))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            yield app, client


def fail_lookups(app: Any, message: str) -> None:
    """Every weather lookup raises (an exception text quoting what must not leave the pod).

    A city is geocoded first (the geocoder's name for it is then known); the weather fails.
    """

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(message)

    app.state.runtime.parts.service.weather = broken


def received_text(receiver: SentryReceiver) -> bytes:
    return _TIMESTAMP.sub(b"<time>", b"\n".join(receiver.bodies))


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "fastapi-routing"])
@pytest.mark.parametrize(
    ("params", "place", "forbidden"),
    [
        # The geocoder's name and country, never the city as typed.
        ({"city": "  paris "}, "city=Paris&country=FR", ["paris", "city=++paris"]),
        (
            {"lat": "48.8566", "lon": "2.3522"},
            "lat=48.9&lon=2.4",
            ["48.8566", "2.3522", "48.86", "48.857", "2.352", "2.35"],
        ),
    ],
    ids=["city", "coordinates"],
)
async def test_an_unhandled_error_arrives_once_with_its_request_id_and_place_and_nothing_personal(
    openmeteo: om.OpenMeteoEmulator,
    keys_file: pathlib.Path,
    sentry_receiver: SentryReceiver,  # noqa: F811
    fast_path: bool,
    params: dict[str, str],
    place: str,
    forbidden: list[str],
) -> None:
    cfg = build_config(openmeteo, auth={"keysFile": str(keys_file)})
    query = "&".join(f"{name}={value}" for name, value in params.items())
    env = environ(sentry_receiver, SENTRY_ENVIRONMENT="staging-eu")
    async with serving(cfg, env, fast_path=fast_path) as (app, client):
        fail_lookups(app, f"lookup failed for {KEY} from {CLIENT_IP} ({USER_AGENT}) asking {query}")
        response = await client.get(f"/v1/weather?{query.replace(' ', '+')}", headers=HEADERS)
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert response.json()["instance"] == request_id
    [event] = sentry_receiver.wait_for_events(1)
    assert event["tags"]["request_id"] == request_id
    assert event["tags"]["http.route"] == "/v1/weather"
    assert event["release"] == version.VERSION
    assert event["environment"] == "staging-eu"
    assert event["level"] == "error"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["mechanism"]["handled"] is False
    assert event["request"]["query_string"] == place
    assert event["request"]["url"] == "/v1/weather"
    headers = {name.lower() for name in event["request"]["headers"]}
    assert headers <= errortracking.ALLOWED_HEADERS
    assert not {"x-api-key", "user-agent", "cookie", "host"} & headers
    assert "user" not in event
    frames = exception["stacktrace"]["frames"]
    assert frames
    assert not [frame for frame in frames if "vars" in frame]
    text = received_text(sentry_receiver)
    personal = [CLIENT_IP, KEY, USER_AGENT, "s3cr3t-cookie-value", "40123", query, *forbidden]
    assert [p for p in personal if p.encode() in text] == []
    assert b"[Filtered]" in text, "the exception's text quoted them: they were replaced"
    assert len(sentry_receiver.events) == 1


async def test_a_5xx_answer_is_reported_under_the_fleets_environment(
    openmeteo: om.OpenMeteoEmulator,
    sentry_receiver: SentryReceiver,  # noqa: F811
) -> None:
    cfg = build_config(openmeteo, environment="production")
    openmeteo.set_fault("forecast", "error500")
    async with serving(cfg, environ(sentry_receiver)) as (_app, client):
        response = await client.get(
            "/v1/weather", params={"lat": "52.5244", "lon": "13.4105"}, headers={"User-Agent": USER_AGENT}
        )
    assert response.status_code == 503
    [event] = sentry_receiver.wait_for_events(1)
    assert event["environment"] == "production"
    assert event["level"] == "warning"
    assert event["message"] == "503 Upstream unavailable: GET /v1/weather"
    assert event["tags"]["problem"] == "upstream-unavailable"
    assert event["tags"]["request_id"] == response.headers["X-Request-ID"]
    assert event["request"]["query_string"] == "lat=52.5&lon=13.4"
    text = received_text(sentry_receiver)
    assert [
        p for p in (CLIENT_IP, USER_AGENT, "52.5244", "13.4105", "52.52", "13.41") if p.encode() in text
    ] == []


async def test_4xx_answers_are_never_reported(
    openmeteo: om.OpenMeteoEmulator,
    keys_file: pathlib.Path,
    sentry_receiver: SentryReceiver,  # noqa: F811
) -> None:
    cfg = build_config(openmeteo, auth={"keysFile": str(keys_file), "required": True})
    async with serving(cfg, environ(sentry_receiver)) as (app, client):
        answers = [
            await client.get("/v1/weather", params={"city": "Nowhereville Xq"}, headers={"X-API-Key": KEY}),
            await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": "wpk_not_a_key"}),
            await client.get("/v1/weather", params={"city": "Paris"}),
            await client.get("/v1/weather", params={"lat": "91", "lon": "0"}, headers={"X-API-Key": KEY}),
            await client.get("/v1/nothing-here"),
        ]
        assert [a.status_code for a in answers] == [404, 403, 401, 400, 404]
        # The pipeline works: the one error after them is the one event.
        fail_lookups(app, "boom")
        failed = await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
    assert failed.status_code == 500
    [event] = sentry_receiver.wait_for_events(1)
    assert event["tags"]["request_id"] == failed.headers["X-Request-ID"]
    assert len(sentry_receiver.events) == 1


async def test_readiness_503_is_an_answer_about_the_pod_not_an_error(
    openmeteo: om.OpenMeteoEmulator,
    sentry_receiver: SentryReceiver,  # noqa: F811
) -> None:
    cfg = build_config(openmeteo)
    async with serving(cfg, environ(sentry_receiver)) as (app, client):
        app.state.runtime.shutting_down = True
        ready = await client.get("/health/ready")
        app.state.runtime.shutting_down = False
        fail_lookups(app, "boom")
        failed = await client.get("/v1/weather", params={"city": "Paris"})
    assert (ready.status_code, failed.status_code) == (503, 500)
    [event] = sentry_receiver.wait_for_events(1)
    assert event["tags"]["request_id"] == failed.headers["X-Request-ID"]


def test_scrub_removes_what_an_sdk_or_an_exception_text_would_carry() -> None:
    event: dict[str, Any] = {
        "event_id": "48f0c0ffee",
        "message": "key wpk_AbC-123_xyz rejected for 10.9.8.7 with Secret-Key-Of-Another-Form",
        "user": {"ip_address": "10.9.8.7", "id": "someone"},
        "breadcrumbs": {"values": [{"message": "GET /v1/weather?lat=1.2345"}]},
        "request": {
            "url": "http://proxy.test/v1/weather?lat=1.2345&lon=2.3456",
            "query_string": "lat=1.2345&lon=2.3456",
            "headers": {"X-API-Key": "Secret-Key-Of-Another-Form", "User-Agent": "ua/1", "Accept": "*/*"},
            "cookies": {"session": "s"},
            "env": {"REMOTE_ADDR": "10.9.8.7"},
            "data": {"body": "x"},
        },
        "exception": {"values": [{"stacktrace": {"frames": [{"function": "f", "vars": {"api_key": "k"}}]}}]},
        "tags": {"request_id": "rid-1"},
    }
    hint = {
        errortracking.PLACE_HINT: "lat=1.2&lon=2.3",
        errortracking.PRIVATE_HINT: ["Secret-Key-Of-Another-Form", "10.9.8.7", "1.2345", "ua/1", "x"],
    }
    scrubbed = errortracking.scrub(event, hint)
    assert scrubbed is not None
    assert "user" not in scrubbed
    assert "breadcrumbs" not in scrubbed
    assert scrubbed["request"] == {
        "url": "http://proxy.test/v1/weather",
        "query_string": "lat=1.2&lon=2.3",
        "headers": {"Accept": "*/*"},
    }
    assert scrubbed["message"] == "key [Filtered] rejected for [Filtered] with [Filtered]"
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"] == [{"function": "f"}]
    assert scrubbed["event_id"] == "48f0c0ffee"
    assert scrubbed["tags"] == {"request_id": "rid-1"}
    without_place = errortracking.scrub({"request": {"query_string": "city=Paris"}}, {})
    assert without_place == {"request": {}}


def test_reports_of_one_kind_are_throttled_per_minute(sentry_receiver: SentryReceiver) -> None:  # noqa: F811
    now = [0.0]
    tracking = errortracking_settings(sentry_receiver.dsn)
    reporter = errortracking.ErrorReporter(tracking, "9.9.9", clock=lambda: now[0])
    scope = {"type": "http", "method": "GET", "path": "/v1/weather", "headers": [], "query_string": b""}
    try:
        for _ in range(errortracking.MAX_REPORTS_PER_MINUTE + 5):
            reporter.answered(scope, 503, "rid", None)
        reporter.answered(scope, 502, "rid", None)  # another status: its own allowance
        now[0] = 60.0
        reporter.answered(scope, 503, "rid", None)
        reporter.flush()
    finally:
        reporter.close()
    events = sentry_receiver.wait_for_events(errortracking.MAX_REPORTS_PER_MINUTE + 2)
    statuses = [event["tags"]["http.status_code"] for event in events]
    assert statuses.count("503") == errortracking.MAX_REPORTS_PER_MINUTE + 1
    assert statuses.count("502") == 1
    assert events[0]["message"] == "503 Service Unavailable: GET other"
    assert events[0]["release"] == "9.9.9"


def errortracking_settings(dsn: str, **env: str) -> Any:
    from weather_proxy import settings

    tracking = settings.ProxySettings.from_env({"SENTRY_DSN": dsn, **env}).error_tracking(
        config_mod.ProxyConfig()
    )
    assert tracking is not None
    return tracking


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SENTRY_DSN": "not a dsn wpk_or_anything"}, "SENTRY_DSN: not a DSN"),
        ({"SENTRY_DSN": "http://k@127.0.0.1:9/1", "SENTRY_TRACES_SAMPLE_RATE": "2"}, "from 0 to 1, got '2'"),
        ({"SENTRY_DSN": "http://k@127.0.0.1:9/1", "SENTRY_TRACES_SAMPLE_RATE": "nan"}, "from 0 to 1"),
    ],
)
def test_a_bad_setting_fails_the_app_without_quoting_the_dsn(env: dict[str, str], message: str) -> None:
    with pytest.raises(config_mod.ConfigError, match=message) as caught:
        app_mod.create_app(environ=env)
    assert "wpk_or_anything" not in str(caught.value)


def test_settings_default_to_the_fleets_environment_and_no_traces() -> None:
    from weather_proxy import settings

    cfg = config_mod.ProxyConfig(environment=config_mod.Environment.STAGING)
    assert settings.ProxySettings.from_env({}).error_tracking(cfg) is None
    assert settings.ProxySettings.from_env({"SENTRY_DSN": " "}).error_tracking(cfg) is None
    tracking = settings.ProxySettings.from_env({"SENTRY_DSN": "http://k@h/1"}).error_tracking(cfg)
    assert tracking is not None
    assert (tracking.environment, tracking.traces_sample_rate) == ("staging", 0.0)
    assert "http://k@h/1" not in repr(tracking)


SERVE_AND_REPORT_LOADED = textwrap.dedent(
    """
    import asyncio, json, sys
    import httpx
    from tests.unit.proxy.conftest import build_config
    from weather_proxy import app as app_mod

    class Emulator:
        geocoding_url, forecast_url = sys.argv[1], sys.argv[2]

    async def main():
        environ = json.loads(sys.argv[3])
        statuses = []
        for fast in (True, False):
            app = app_mod.create_app(build_config(Emulator()), environ=environ, fast_path=fast)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 1))
                async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
                    statuses.append((await client.get("/v1/weather", params={"city": "Paris"})).status_code)
                    def broken(*args, **kwargs):
                        raise RuntimeError("boom")
                    app.state.runtime.parts.service.hit = broken
                    statuses.append((await client.get("/v1/weather", params={"city": "Paris"})).status_code)
                    statuses.append((await client.get("/health/ready")).status_code)
        print(json.dumps({"loaded": "sentry_sdk" in sys.modules, "statuses": statuses}))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("dsn", [False, True], ids=["off", "on"])
def test_without_a_dsn_the_sdk_is_never_loaded(
    openmeteo: om.OpenMeteoEmulator,
    sentry_receiver: SentryReceiver,  # noqa: F811
    dsn: bool,
) -> None:
    env = environ(sentry_receiver) if dsn else {}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE_AND_REPORT_LOADED,
            openmeteo.geocoding_url,
            openmeteo.forecast_url,
            json.dumps(env),
        ],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [200, 500, 200, 200, 500, 200]
    assert result["loaded"] is dsn  # the control: with a DSN the same run loads it
    if dsn:
        assert len(sentry_receiver.wait_for_events(2)) == 2
