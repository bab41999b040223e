"""The operator's settings from WEATHER_OPERATOR_* variables, the CLI's kopf command line, Kopf settings."""

from __future__ import annotations

import importlib.metadata
import logging

import kopf
import pydantic
import pytest

from weather_operator import __main__ as cli
from weather_operator import settings
from weather_operator.handlers import startup
from weather_proxy import version


def test_defaults_and_values_from_the_environment() -> None:
    assert settings.OperatorSettings.from_env({}) == settings.OperatorSettings()
    own = settings.OperatorSettings.from_env(
        {
            "WEATHER_OPERATOR_DEFAULT_IMAGE": "registry.example/proxy:2",
            "WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS": "5",
            "WEATHER_OPERATOR_MONITORING_RECHECK_SECONDS": "2.5",
            "WEATHER_OPERATOR_PEERING_PRIORITY": "10",
            "WEATHER_OPERATOR_NAMESPACE": "operators",
            "WEATHER_OPERATOR_LOG_FORMAT": " ",  # blank: the default stays
        }
    )
    assert own.default_image == "registry.example/proxy:2"
    assert own.drift_interval_seconds == 5.0
    assert own.monitoring_recheck_seconds == 2.5
    assert own.peering_priority == 10
    assert own.namespace == "operators"
    assert own.log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS", "soon", "must be a number of seconds"),
        ("WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS", "0", "must be greater than 0"),
        ("WEATHER_OPERATOR_PEERING_PRIORITY", "high", "must be an integer"),
        ("WEATHER_OPERATOR_LOG_FORMAT", "xml", "must be one of json, full, plain"),
        ("WEATHER_OPERATOR_POSTING_LEVEL", "LOUD", "must be a log level name"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_rule(variable: str, value: str, message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message) as caught:
        settings.OperatorSettings.from_env({variable: value})
    assert variable in str(caught.value)


def test_an_empty_default_image_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="default_image"):
        settings.OperatorSettings(default_image="")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WEATHER_OPERATOR_PEERING_LIFETIME_SECONDS", "0", "must be greater than 0"),
        ("WEATHER_OPERATOR_PEERING_LIFETIME_SECONDS", "1.5", "must be an integer, got '1.5'"),
        ("WEATHER_OPERATOR_INACTIVITY_TIMEOUT_SECONDS", "-1", "must be greater than 0"),
        ("WEATHER_OPERATOR_WATCH_SERVER_TIMEOUT_SECONDS", "ten", "must be a number of seconds, got 'ten'"),
    ],
)
def test_every_positive_setting_rejects_zero_and_garbage(variable: str, value: str, message: str) -> None:
    with pytest.raises(settings.SettingsError, match=f"^{variable}: {message}$"):
        settings.OperatorSettings.from_env({variable: value})


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(settings.SettingsError) as caught:
        settings.OperatorSettings.from_env(
            {"WEATHER_OPERATOR_LOG_FORMAT": "xml", "WEATHER_OPERATOR_RETRY_DELAY_SECONDS": "0"}
        )
    assert "WEATHER_OPERATOR_LOG_FORMAT" in str(caught.value)
    assert "WEATHER_OPERATOR_RETRY_DELAY_SECONDS" in str(caught.value)


def test_the_process_environment_is_read_and_other_variables_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEATHER_OPERATOR_RETRY_DELAY_SECONDS", " 3 ")
    monkeypatch.setenv("WEATHER_OPERATOR_WATCH_NAMESPACE", "")
    monkeypatch.setenv("WEATHER_OPERATOR_NOT_A_SETTING", "x")  # e.g. a variable of a newer release
    own = settings.OperatorSettings.from_env()
    assert own.retry_delay_seconds == 3.0
    assert own.watch_namespace is None
    assert settings.OperatorSettings().retry_delay_seconds == 3.0  # plain construction reads it too
    assert settings.OperatorSettings(retry_delay_seconds=4).retry_delay_seconds == 4.0  # arguments win


def test_settings_are_frozen_and_typos_in_arguments_are_rejected() -> None:
    own = settings.OperatorSettings()
    with pytest.raises(pydantic.ValidationError):
        own.drift_interval_seconds = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="drift_interval"):
        settings.OperatorSettings(drift_interval=1)  # type: ignore[call-arg]


def test_help_lists_every_setting_with_its_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: weather-operator")
    assert "kopf run --help" in shown
    assert "--all-namespaces" in shown  # not broken at its hyphen
    for name, field in settings.OperatorSettings.model_fields.items():
        assert settings.variables()[name] == "WEATHER_OPERATOR_" + name.upper()
        assert field.description, f"{name} has no docstring"
        assert f"  WEATHER_OPERATOR_{name.upper()}  (default: " in shown
    assert "WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS  (default: 600)" in shown
    assert "WEATHER_OPERATOR_WATCH_NAMESPACE  (default: unset)" in shown


def test_version_is_the_projects_and_names_kopf(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"weather-operator {version.VERSION} (kopf {importlib.metadata.version('kopf')})"
    )


def test_a_bad_setting_exits_2_with_the_message_before_kopf_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("kopf.cli.main", lambda **_: pytest.fail("kopf started"))
    monkeypatch.setenv("WEATHER_OPERATOR_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "weather-operator: WEATHER_OPERATOR_LOG_FORMAT: must be one of json, full, plain"
    )


def test_cli_adds_production_flags_and_passes_the_rest_through() -> None:
    own = settings.OperatorSettings(peering_priority=5)
    args = cli.kopf_arguments(["--verbose"], own)
    assert args[:3] == ["run", "-m", "weather_operator.handlers"]
    assert "--all-namespaces" in args
    assert "--log-format=json" in args
    assert "--liveness=http://0.0.0.0:8080/healthz" in args
    assert "--peering=weather-operator" in args
    assert "--priority=5" in args
    assert args[-1] == "--verbose"


def test_replicas_of_one_deployment_get_distinct_stable_priorities_by_default() -> None:
    own = settings.OperatorSettings()
    first = cli.kopf_arguments([], own, pod_name="weather-operator-7d9f8b6c5-abcde")
    again = cli.kopf_arguments([], own, pod_name="weather-operator-7d9f8b6c5-abcde")
    other = cli.kopf_arguments([], own, pod_name="weather-operator-7d9f8b6c5-fghij")
    priority = [a for a in first if a.startswith("--priority=")]
    assert priority == [a for a in again if a.startswith("--priority=")]
    assert priority != [a for a in other if a.startswith("--priority=")]
    assert 1 <= int(priority[0].split("=")[1]) <= cli.PRIORITY_RANGE


def test_cli_respects_explicit_choices() -> None:
    own = settings.OperatorSettings()
    args = cli.kopf_arguments(
        ["--standalone", "-n", "weather", "--log-format=plain", "--liveness=http://x/"], own
    )
    assert "--all-namespaces" not in args
    assert not any(a.startswith("--peering") for a in args)
    assert args.count("--log-format=plain") == 1
    assert not any(a == "--log-format=json" for a in args)
    scoped = cli.kopf_arguments([], settings.OperatorSettings(watch_namespace="weather"))
    assert "--namespace=weather" in scoped
    assert "--all-namespaces" not in scoped


def test_cli_main_hands_the_arguments_to_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_main(args: list[str], prog_name: str) -> None:
        seen.update(args=args, prog_name=prog_name)

    monkeypatch.setattr("kopf.cli.main", fake_main)
    monkeypatch.setenv("WEATHER_OPERATOR_PEERING_NAME", "fleet-ha")
    cli.main(["--verbose", "-n", "weather", "--standalone"])
    assert seen["prog_name"] == "weather-operator"
    assert seen["args"] == [
        "run",
        "-m",
        "weather_operator.handlers",
        "--log-format=json",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--verbose",
        "-n",
        "weather",
        "--standalone",
    ]
    seen.clear()
    cli.main(["--verbose"])
    assert "--peering=fleet-ha" in seen["args"]


def test_kopf_is_configured_for_production() -> None:
    kopf_settings = kopf.OperatorSettings()
    own = settings.OperatorSettings(namespace="operators", posting_level="warning")
    startup.configure(kopf_settings, own)
    assert kopf_settings.posting.level == logging.WARNING
    assert kopf_settings.posting.reporting_instance == "operators"
    assert kopf_settings.watching.server_timeout == 600
    assert isinstance(kopf_settings.watching.server_timeout, int)  # a query parameter the server parses
    assert kopf_settings.watching.inactivity_timeout == own.inactivity_timeout_seconds
    assert isinstance(kopf_settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(kopf_settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
