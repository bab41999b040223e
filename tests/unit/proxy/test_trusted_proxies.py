"""``http.trustedProxies`` and the request head's bounds: validation, what is written, what is served."""

from __future__ import annotations

import pathlib

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from weather_proxy import config as config_mod
from weather_proxy import server


def _load(tmp_path: pathlib.Path, text: str) -> config_mod.ProxyConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return config_mod.load_config(path)


@pytest.mark.parametrize(
    "entry", ["10.0.0.0/33", "10.0.0.300", "localhost", "", "*", "10.0.0.0/8,10.1.0.0/16"]
)
def test_an_entry_that_is_no_ip_address_or_network_is_refused_naming_the_field(
    tmp_path: pathlib.Path, entry: str
) -> None:
    with pytest.raises(config_mod.ConfigError) as caught:
        _load(tmp_path, f"http:\n  trustedProxies: ['127.0.0.1', {entry!r}]\n")
    message = str(caught.value)
    assert "http.trustedProxies" in message
    assert repr(entry) in message


def test_addresses_and_networks_of_both_families_are_accepted(tmp_path: pathlib.Path) -> None:
    entries = ["127.0.0.1", "10.0.0.0/8", "10.244.1.7/16", "::1", "fd00::/8"]
    cfg = _load(tmp_path, f"http:\n  trustedProxies: {entries}\n")
    assert cfg.http.trusted_proxies == entries


def test_the_default_trusts_no_one_and_adds_nothing_in_front_of_the_app() -> None:
    cfg = config_mod.ProxyConfig()
    assert cfg.http.trusted_proxies == []
    app = object()
    assert server.serving_app(app, cfg) is app


def test_trusted_proxies_put_the_forwarded_headers_middleware_in_front() -> None:
    cfg = config_mod.ProxyConfig(http=config_mod.Http(trusted_proxies=["10.244.1.7/16", "192.168.0.10"]))
    app = object()
    served = server.serving_app(app, cfg)
    assert isinstance(served, ProxyHeadersMiddleware)
    assert served.app is app
    # A network given with host bits set still covers its whole range.
    assert "10.244.200.1" in served.trusted_hosts
    assert "192.168.0.10" in served.trusted_hosts
    assert "127.0.0.1" not in served.trusted_hosts
    assert "10.245.0.1" not in served.trusted_hosts


def test_the_new_fields_are_written_only_when_set() -> None:
    # Left at their defaults a rendered config.yaml (and its hash, which restarts pods) is unchanged.
    written = config_mod.ProxyConfig().to_camel_dict()["http"]
    assert not {"trustedProxies", "maxHeaderBytes", "headerTimeoutSeconds"} & set(written)
    http = config_mod.Http(trusted_proxies=["10.0.0.0/8"], max_header_bytes=32768, header_timeout_seconds=5)
    written = config_mod.ProxyConfig(http=http).to_camel_dict()["http"]
    assert written["trustedProxies"] == ["10.0.0.0/8"]
    assert written["maxHeaderBytes"] == 32768
    assert written["headerTimeoutSeconds"] == 5
    assert config_mod.ProxyConfig.model_validate({"http": written}).http == http


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("maxHeaderBytes: 4096", "http.maxHeaderBytes"),  # granian's buffer cannot be smaller than 8 KiB
        ("headerTimeoutSeconds: 0", "http.headerTimeoutSeconds"),
        ("headerTimeoutSeconds: 120", "http.headerTimeoutSeconds"),
    ],
)
def test_head_bounds_out_of_range_are_refused(tmp_path: pathlib.Path, text: str, field: str) -> None:
    with pytest.raises(config_mod.ConfigError, match=field):
        _load(tmp_path, f"http:\n  {text}\n")


def test_granian_gets_the_same_head_bounds() -> None:
    http = config_mod.Http(max_header_bytes=20000, header_timeout_seconds=2.5)
    granian = server.granian(
        "weather_proxy.server:worker_app", host="127.0.0.1", port=1, workers=1, http=http
    )
    assert granian.http1_settings.max_buffer_size == 20000
    assert granian.http1_settings.header_read_timeout == 2500
    assert granian.http2_settings.max_headers_size == 20000
    default = server.granian("weather_proxy.server:worker_app", host="127.0.0.1", port=1, workers=1)
    assert default.http1_settings.max_buffer_size == 16 * 1024
    assert default.http1_settings.header_read_timeout == 10_000
