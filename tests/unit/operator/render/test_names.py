"""Child names and labels are deterministic and follow the agreed contract."""

from __future__ import annotations

import base64

from weather_operator.render import apikey, names


def test_child_names() -> None:
    assert names.deployment_name("paris") == "paris"
    assert names.config_map_name("paris") == "paris-config"
    assert names.keys_secret_name("paris") == "paris-keys"
    assert names.redis_secret_name("paris") == "paris-redis-auth"
    assert names.redis_name("paris") == "paris-redis"
    assert names.redis_url("paris") == "redis://paris-redis:6379/0"
    assert names.apikey_secret_name("team-a") == "team-a-apikey"
    assert names.endpoint("paris", "weather") == "http://paris.weather.svc:8080"
    assert names.endpoint("paris", "weather", tls=True) == "https://paris.weather.svc"
    assert names.redis_url("paris", tls=True) == "rediss://paris-redis:6379/0"
    assert names.tls_ca_secret_name("paris") == "paris-tls-ca"
    assert names.tls_secret_name("paris") == "paris-tls"
    assert names.redis_tls_secret_name("paris") == "paris-redis-tls"
    assert names.postgres_tls_secret_name("paris") == "paris-postgres-tls"


def test_labels_extend_the_selector_labels() -> None:
    selector = names.selector_labels("paris", names.PROXY)
    assert selector == {
        "app.kubernetes.io/name": "weather-proxy",
        "app.kubernetes.io/instance": "paris",
        "app.kubernetes.io/component": "proxy",
    }
    labels = names.labels("paris", names.PROXY)
    assert labels.items() >= selector.items()
    assert labels["app.kubernetes.io/part-of"] == "weather-proxy-fleet"
    assert labels["app.kubernetes.io/managed-by"] == "weather-operator"


def test_selector_string_for_the_scale_subresource() -> None:
    assert names.selector_string("paris") == (
        "app.kubernetes.io/name=weather-proxy,app.kubernetes.io/instance=paris,app.kubernetes.io/component=proxy"
    )


def test_generated_key_secret() -> None:
    obj = apikey.render_key_secret("team-a", "team-a-key", "wpk_secret")
    assert obj["kind"] == "Secret"
    assert obj["type"] == "Opaque"
    assert obj["metadata"]["name"] == "team-a-key"
    assert obj["metadata"]["labels"]["app.kubernetes.io/component"] == "api-key"
    assert base64.b64decode(obj["data"]["apiKey"]) == b"wpk_secret"
    assert "stringData" not in obj
