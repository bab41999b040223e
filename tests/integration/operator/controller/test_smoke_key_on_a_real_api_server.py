"""A BlueGreen fleet's smoke key on a real kube-apiserver: made once, read back, in keys.yaml as a hash.

``keysync.smoke_key`` is what the fleet's reconcile calls for the key whose hash goes into
keys.yaml and which the analysis sends: it must be the same key across reconciles and across
an operator restart (an empty memory), and a Secret that lost its key gets a new one. The
fleet's reconcile puts its entry (a probe key) into the keys Secret of a BlueGreen fleet only,
and the plaintext into no ConfigMap and no status.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from weather_operator import apply, keys
from weather_operator.api import constants
from weather_operator.controller import indexes, keysync, requests, runtime, workqueue
from weather_operator.render import names
from weather_proxy import config as proxy_config

pytestmark = pytest.mark.controlplane


async def owner(api: apply.Cluster, namespace: str) -> dict[str, Any]:
    """An object to own the Secret (any kind does for the owner reference; a ConfigMap needs no spec)."""
    return await api.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "weather", "namespace": namespace}}
    )


def held(secret: dict[str, Any] | None) -> str:
    assert secret is not None
    return base64.b64decode(secret["data"]["apiKey"]).decode()


async def test_the_smoke_key_is_made_once_and_read_back_after_a_restart(
    api: apply.Cluster, namespace: str
) -> None:
    fleet = await owner(api, namespace)
    memory = keysync.KeyLayout()
    made = await keysync.smoke_key(api, fleet, memory)
    assert made.startswith(keys.KEY_PREFIX)
    secret = await api.get(apply.SECRET, namespace, names.smoke_key_secret_name("weather"))
    assert held(secret) == made
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["uid"] == fleet["metadata"]["uid"]
    assert await keysync.smoke_key(api, fleet, memory) == made

    restarted = keysync.KeyLayout()  # a new operator process: nothing remembered
    assert await keysync.smoke_key(api, fleet, restarted) == made
    again = await api.get(apply.SECRET, namespace, names.smoke_key_secret_name("weather"))
    assert again is not None
    assert again["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]
    assert made not in repr(restarted)  # never printed with the memory


async def test_a_smoke_key_secret_without_a_key_gets_a_new_one(api: apply.Cluster, namespace: str) -> None:
    fleet = await owner(api, namespace)
    name = names.smoke_key_secret_name("weather")
    await api.create(
        apply.adopt({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {}}, fleet)
    )
    made = await keysync.smoke_key(api, fleet, keysync.KeyLayout())
    assert held(await api.get(apply.SECRET, namespace, name)) == made


async def reconcile(controller: runtime.Controller, namespace: str, name: str) -> dict[str, Any]:
    """Index the fleet as stored (Kopf's index would) and reconcile it once."""
    api = controller.connection.api
    body = await api.get(apply.WEATHERPROXY, namespace, name)
    assert body is not None
    fleets = dict(controller.indexes.fleets)
    fleets[namespace, name] = [indexes.snapshot(body)]
    controller.indexes.fleets = fleets
    await controller.fleets.reconcile(workqueue.Request(requests.WEATHERPROXY, namespace, name), "test")
    stored = await api.get(apply.WEATHERPROXY, namespace, name)
    assert stored is not None
    return stored


async def keys_entries(api: apply.Cluster, namespace: str, name: str) -> list[proxy_config.KeyEntry]:
    secret = await api.get(apply.SECRET, namespace, names.keys_secret_name(name))
    assert secret is not None
    text = base64.b64decode(secret["data"][names.KEYS_KEY]).decode()
    return proxy_config.parse_keys(text, "keys Secret").keys


@pytest.mark.parametrize("strategy", ["BlueGreen", "RollingUpdate"])
async def test_a_bluegreen_fleets_keys_carry_its_smoke_keys_hash_and_only_its(
    controller: runtime.Controller, namespace: str, strategy: str
) -> None:
    api = controller.connection.api
    name = "nice"
    spec = {"environment": "dev", "autoscaling": {"enabled": False}, "strategy": {"type": strategy}}
    await api.apply(
        {
            "apiVersion": constants.API_VERSION,
            "kind": constants.WEATHERPROXY_KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )
    stored = await reconcile(controller, namespace, name)
    secret = await api.get(apply.SECRET, namespace, names.smoke_key_secret_name(name))
    smoke = [entry for entry in await keys_entries(api, namespace, name) if entry.probe]
    if strategy == "RollingUpdate":
        assert secret is None
        assert smoke == []
        return
    plaintext = held(secret)
    assert [(e.id, e.sha256, e.scopes) for e in smoke] == [
        (f"{namespace}/{name}:smoke", keys.sha256_hex(plaintext), [proxy_config.Scope.WEATHER_READ])
    ]
    await reconcile(controller, namespace, name)  # a second reconcile keeps the key
    assert held(await api.get(apply.SECRET, namespace, names.smoke_key_secret_name(name))) == plaintext
    config_maps = await api.list(apply.KINDS["v1", "ConfigMap"], namespace, "", 100)
    assert config_maps
    assert plaintext not in str(config_maps)
    assert plaintext not in str(stored)
