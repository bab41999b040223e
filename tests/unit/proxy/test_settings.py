"""The proxy's environment variables: one model reads them, documents each, and names a bad one."""

from __future__ import annotations

import pytest

from weather_proxy import config as config_mod
from weather_proxy import contract, settings


def test_every_variable_is_the_contracts_and_documented_under_its_name() -> None:
    fields = settings.ProxySettings.model_fields
    variables = {field.validation_alias for field in fields.values()}
    contract_names = {value for name, value in vars(contract).items() if name.startswith("ENV_")}
    assert variables == contract_names | {settings.ENV_LOG_FORMAT}
    for field in fields.values():
        assert (field.description or "").startswith(f"{field.validation_alias}: ")
        assert f"  {field.validation_alias}\n" in settings.describe() + "\n"


def test_unset_and_blank_variables_keep_the_defaults() -> None:
    variables = [str(field.validation_alias) for field in settings.ProxySettings.model_fields.values()]
    blank = settings.ProxySettings.from_env(dict.fromkeys(variables, ""))
    assert blank == settings.ProxySettings.from_env({}) == settings.ProxySettings.from_env({"UNRELATED": "x"})
    assert blank.sentry_traces_sample_rate == 0.0
    assert blank.log_format == "json"
    assert settings.ProxySettings.from_env({settings.ENV_SENTRY_DSN: "  "}).sentry_dsn is None


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        (settings.ENV_WORKERS, "0", "must be a whole number >= 1, got '0'"),
        (settings.ENV_CPU_REQUEST, "1.5", "must be a whole number of millicores, got '1.5'"),
        (settings.ENV_SENTRY_TRACES_SAMPLE_RATE, "-1", "must be a number from 0 to 1, got '-1'"),
        (settings.ENV_LOG_FORMAT, "xml", "must be one of 'json' or 'text'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_rule(variable: str, value: str, rule: str) -> None:
    with pytest.raises(config_mod.ConfigError) as caught:
        settings.ProxySettings.from_env({variable: value})
    assert str(caught.value) == f"{variable}: {rule}"


def test_every_bad_value_is_named_at_once_and_secrets_stay_out_of_sight() -> None:
    with pytest.raises(config_mod.ConfigError) as caught:
        settings.ProxySettings.from_env({settings.ENV_WORKERS: "x", settings.ENV_REDIS_URL: "ftp://h"})
    assert str(caught.value).startswith(f"{settings.ENV_REDIS_URL}: ")
    assert f"; {settings.ENV_WORKERS}: must be a whole number" in str(caught.value)
    env = settings.ProxySettings.from_env(
        {settings.ENV_REDIS_PASSWORD: "hunter2", settings.ENV_ANALYTICS_PASSWORD: "pg-secret"}
    )
    assert "hunter2" not in repr(env)
    assert "pg-secret" not in repr(env)
    assert env.secret("redis_password") == "hunter2"
    assert env.secret("analytics_database_password") == "pg-secret"
