"""Helpers of the operator integration tests: build CRs, read children, poll with a bound."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

import yaml

from hack import kubectl as kubectl_
from weather_operator.api import constants
from weather_operator.render import names

# Bounds of the polls: generous for a loaded 2-core CI machine; a pass usually takes far less.
CONVERGE_SECONDS = 60.0
GC_SECONDS = 90.0


def weather_proxy(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A WeatherProxy manifest (dev preset unless ``environment`` is given)."""
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"environment": "dev", **spec},
    }


def api_key(name: str, namespace: str, proxy: str, **spec: Any) -> dict[str, Any]:
    """An ApiKey manifest for the fleet ``proxy``."""
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.APIKEY_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"proxyRef": {"name": proxy}, **spec},
    }


def sha256(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def secret_value(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


@dataclasses.dataclass(frozen=True)
class Cluster:
    """One test namespace on the real API server."""

    kubectl: kubectl_.Kubectl
    namespace: str

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl.apply(*objects)

    def get(self, kind: str, name: str) -> Any:
        return self.kubectl.get(kind, name, namespace=self.namespace)

    def get_or_none(self, kind: str, name: str) -> Any:
        return self.get(kind, name) if self.kubectl.exists(kind, name, namespace=self.namespace) else None

    def exists(self, kind: str, name: str) -> bool:
        return self.kubectl.exists(kind, name, namespace=self.namespace)

    def delete(self, kind: str, name: str, *, wait: bool = False) -> None:
        self.kubectl.run(
            "delete", kind, name, "-n", self.namespace, "--ignore-not-found", f"--wait={str(wait).lower()}"
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.kubectl.get("events", namespace=self.namespace)["items"]
        return [e for e in items if e.get("involvedObject", {}).get("name") == name]

    def keys_file(self, proxy: str) -> dict[str, Any] | None:
        """The parsed keys.yaml of a fleet, or None while its Secret does not exist."""
        secret = self.get_or_none("secret", names.keys_secret_name(proxy))
        if secret is None:
            return None
        return yaml.safe_load(secret_value(secret, names.KEYS_KEY)) or {}

    def key_ids(self, proxy: str) -> set[str] | None:
        data = self.keys_file(proxy)
        return None if data is None else {entry["id"] for entry in data.get("keys") or []}

    def config(self, proxy: str) -> dict[str, Any]:
        cm = self.get("configmap", names.config_map_name(proxy))
        parsed: dict[str, Any] = yaml.safe_load(cm["data"][names.CONFIG_KEY])
        return parsed

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        obj = self.get(kind, name)
        for cond in obj.get("status", {}).get("conditions") or []:
            if cond.get("type") == type_:
                return dict(cond)
        return None

    def wait(self, probe: Any, what: str, timeout: float = CONVERGE_SECONDS) -> Any:
        return kubectl_.wait_until(probe, timeout=timeout, interval=0.2, what=what)

    def wait_for(self, kind: str, name: str, timeout: float = CONVERGE_SECONDS) -> dict[str, Any]:
        got: dict[str, Any] = self.wait(lambda: self.get_or_none(kind, name), f"{kind}/{name}", timeout)
        return got

    def wait_gone(self, kind: str, name: str, timeout: float = GC_SECONDS) -> None:
        self.wait(lambda: not self.exists(kind, name), f"{kind}/{name} to be deleted", timeout)

    def api_key_plaintext(self, apikey: str) -> str:
        """The plaintext key of an ApiKey, from the Secret its status names (waits for it)."""

        def read() -> str | None:
            obj = self.get("apikey", apikey)
            secret_name = (obj.get("status") or {}).get("secretName")
            if not secret_name:
                return None
            secret = self.get_or_none("secret", secret_name)
            return None if secret is None else secret_value(secret, names.APIKEY_SECRET_KEY)

        plaintext: str = self.wait(read, f"the key Secret of ApiKey {apikey}")
        return plaintext


def managed_by(obj: dict[str, Any], field_path: str, manager: str = constants.FIELD_MANAGER) -> bool:
    """Does ``manager`` own ``field_path`` (e.g. ``f:spec.f:replicas``) per managedFields?"""
    parts = field_path.split(".")
    for entry in obj["metadata"].get("managedFields") or []:
        if entry.get("manager") != manager:
            continue
        node = entry.get("fieldsV1") or {}
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return True
    return False
