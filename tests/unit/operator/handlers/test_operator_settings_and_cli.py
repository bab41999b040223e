"""The operator's settings from WEATHER_OPERATOR_* variables, the CLI's kopf command line, Kopf settings."""

from __future__ import annotations

import logging

import kopf
import pytest

from weather_operator import __main__ as cli
from weather_operator import settings
from weather_operator.handlers import startup


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
    with pytest.raises(settings.SettingsError, match="DEFAULT_IMAGE"):
        settings.OperatorSettings(default_image="").validate()


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
    cli.main(["--verbose"])
    assert seen["prog_name"] == "weather-operator"
    assert "--peering=fleet-ha" in seen["args"]  # type: ignore[operator]


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
