"""TLS settings: the serving certificate's checks and reload, and the clients' TLS to Redis and PostgreSQL.

Certificates come from a real test CA (``testbed.certificates``); handshakes run between two real
``ssl`` objects over memory buffers, so the leaf a new client gets is observed, not assumed.
"""

from __future__ import annotations

import contextlib
import pathlib
import ssl
from typing import Any

import psycopg.conninfo
import pytest
import yaml
from cryptography import x509

from testbed import certificates
from weather_proxy import config as config_mod
from weather_proxy import contract, redis_link, settings
from weather_proxy.history import database
from weather_proxy.http import tls
from weather_proxy.observability import metrics as metrics_mod

NAMES = ["localhost", "127.0.0.1"]


@pytest.fixture
def ca() -> certificates.TestCA:
    return certificates.TestCA()


def serving(directory: pathlib.Path, leaf: certificates.Leaf) -> config_mod.ServingTls:
    paths = leaf.write(directory)
    return config_mod.ServingTls(cert_file=str(paths["tls.crt"]), key_file=str(paths["tls.key"]))


def handshake_serial(server: ssl.SSLContext, ca_pem: str) -> int:
    """A new client's handshake with ``server`` over memory buffers: the serial of the leaf it got."""
    client_context = ssl.create_default_context(cadata=ca_pem)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {client: False, srv: False}
    for _ in range(10):
        for side in (client, srv):
            if not done[side]:
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
                    done[side] = True
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_no_tls_is_written_as_no_tls_key_and_plaintext_stays_the_default() -> None:
    cfg = config_mod.ProxyConfig()
    assert cfg.listen.tls is None
    assert cfg.to_camel_dict()["listen"] == {"host": "0.0.0.0", "port": contract.HTTP_PORT}
    assert config_mod.Redis(url="redis://r:6379/0").to_camel_dict() == {"url": "redis://r:6379/0"}
    db = config_mod.AnalyticsDatabase(url="postgresql://u@h/db")
    assert "tls" not in db.to_camel_dict()


def test_the_tls_sections_round_trip_in_camel_case() -> None:
    data: dict[str, Any] = {
        "listen": {"port": 8443, "tls": {"certFile": "/t/tls.crt", "keyFile": "/t/tls.key"}},
        "redis": {"url": "rediss://r:6379/0", "tls": {"caFile": "/ca/ca.crt"}},
        "analytics": {"database": {"url": "postgresql://u@h/db", "tls": {"caFile": "/ca/ca.crt"}}},
    }
    cfg = config_mod.ProxyConfig.model_validate(data)
    again = cfg.to_camel_dict()
    assert again["listen"]["tls"] == data["listen"]["tls"]
    assert again["redis"] == data["redis"]
    assert again["analytics"]["database"]["tls"] == {"caFile": "/ca/ca.crt"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"redis": {"url": "redis://r:6379/0", "tls": {"caFile": "/ca.crt"}}},
            "redis.tls: needs a rediss:// url",
        ),
        ({"listen": {"tls": {"certFile": "/c"}}}, "listen.tls.keyFile"),
        ({"listen": {"tls": {"certFile": "/c", "keyFile": "/k", "caFile": "/x"}}}, "listen.tls.caFile"),
    ],
)
def test_bad_tls_sections_name_the_field(
    tmp_path: pathlib.Path, data: dict[str, object], message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(config_mod.ConfigError) as caught:
        config_mod.load_config(path)
    assert message in str(caught.value)


def test_a_good_pair_gives_its_leaf(tmp_path: pathlib.Path, ca: certificates.TestCA) -> None:
    leaf = ca.issue(NAMES)
    checked = tls.check(serving(tmp_path, leaf))
    assert checked.not_after == leaf.not_after
    assert checked.subject == "CN=localhost"
    assert handshake_serial(tls.server_context(checked), leaf.ca_pem) == leaf.serial


def test_bad_files_are_refused_with_the_field_named(tmp_path: pathlib.Path, ca: certificates.TestCA) -> None:
    good = serving(tmp_path / "good", ca.issue(NAMES))
    other = serving(tmp_path / "other", ca.issue(NAMES))
    cases = [
        (
            good.model_copy(update={"cert_file": str(tmp_path / "absent.crt")}),
            "listen.tls.certFile: cannot read",
        ),
        (good.model_copy(update={"key_file": str(tmp_path)}), "listen.tls.keyFile: cannot read"),
        (good.model_copy(update={"cert_file": good.key_file}), "listen.tls.certFile: "),
        (good.model_copy(update={"key_file": good.cert_file}), "is not an unencrypted PEM private key"),
        (good.model_copy(update={"key_file": other.key_file}), "is not the key of the certificate"),
    ]
    for files, message in cases:
        with pytest.raises(config_mod.ConfigError, match=message) as caught:
            tls.check(files)
        assert str(caught.value).startswith(("listen.tls.certFile", "listen.tls.keyFile"))


def test_a_new_pair_is_served_to_new_handshakes_by_the_same_context(
    tmp_path: pathlib.Path, ca: certificates.TestCA
) -> None:
    old, new = ca.issue(NAMES), ca.issue(NAMES)
    first = tls.check(serving(tmp_path / "1", old))
    contexts = tls.ServingContexts()
    context = tls.server_context(first)
    contexts.add(context, first)
    assert handshake_serial(context, ca.cert_pem) == old.serial
    contexts.install(tls.check(serving(tmp_path / "2", new)))
    assert handshake_serial(context, ca.cert_pem) == new.serial
    assert contexts.leaf is not None
    assert contexts.leaf.not_after == new.not_after


def test_a_pair_that_cannot_be_loaded_leaves_the_previous_one_served(
    tmp_path: pathlib.Path, ca: certificates.TestCA
) -> None:
    old = ca.issue(NAMES)
    first = tls.check(serving(tmp_path / "1", old))
    contexts = tls.ServingContexts()
    context = tls.server_context(first)
    contexts.add(context, first)
    second = tls.check(serving(tmp_path / "2", ca.issue(NAMES)))
    pathlib.Path(second.key_path).unlink()  # gone between the check and the install
    with pytest.raises(config_mod.ConfigError, match=r"listen\.tls\.certFile: cannot load"):
        contexts.install(second)
    assert contexts.leaf == first
    assert handshake_serial(context, ca.cert_pem) == old.serial


def test_the_expiry_gauge_exists_only_once_set() -> None:
    metrics = metrics_mod.Metrics()
    assert contract.METRIC_TLS_CERTIFICATE_EXPIRY not in metrics.render().decode()
    metrics.set_tls_certificate_expiry(1_800_000_000.0)
    assert f"{contract.METRIC_TLS_CERTIFICATE_EXPIRY} 1.8e+09" in metrics.render().decode()


def test_postgres_with_tls_is_verify_full_against_the_ca() -> None:
    plain = config_mod.AnalyticsDatabase(url="postgresql://u@db.example:5432/h")
    assert "sslmode" not in psycopg.conninfo.conninfo_to_dict(database.conninfo(plain, "pw"))
    verified = plain.model_copy(update={"tls": config_mod.ServerCa(ca_file="/ca/ca.crt")})
    params = psycopg.conninfo.conninfo_to_dict(database.conninfo(verified, "pw"))
    assert params["sslmode"] == "verify-full"
    assert params["sslrootcert"] == "/ca/ca.crt"
    assert params["host"] == "db.example"


def test_redis_over_tls_verifies_the_certificate_and_host_name() -> None:
    plain = redis_link.make_client("redis://r:6379/0", None)
    assert "ssl_ca_certs" not in plain.connection_pool.connection_kwargs
    secure = redis_link.make_client("rediss://r:6379/0", None, tls=config_mod.ServerCa(ca_file="/ca/ca.crt"))
    kwargs = secure.connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == "/ca/ca.crt"
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True


def test_a_redis_url_from_the_environment_keeps_the_files_ca_only_for_rediss() -> None:
    cfg = config_mod.ProxyConfig.model_validate(
        {"redis": {"url": "rediss://file:6379/0", "tls": {"caFile": "/ca/ca.crt"}}}
    )
    over_tls = settings.ProxySettings.from_env({contract.ENV_REDIS_URL: "rediss://env:6379/0"}).apply(cfg)
    assert over_tls.redis is not None
    assert over_tls.redis.tls == config_mod.ServerCa(ca_file="/ca/ca.crt")
    plaintext = settings.ProxySettings.from_env({contract.ENV_REDIS_URL: "redis://env:6379/0"}).apply(cfg)
    assert plaintext.redis is not None
    assert plaintext.redis.tls is None
