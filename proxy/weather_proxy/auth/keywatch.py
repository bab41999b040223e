"""Watching the keys Secrets through the API server: list, then watch from the list's resourceVersion.

Plain HTTP on httpx, which the proxy already depends on (a Kubernetes client library would
cost tens of MiB per pod for two requests). Per Secret name:

* ``GET /api/v1/namespaces/<ns>/secrets?fieldSelector=metadata.name=<name>`` — a field
  selector, so that a Role restricted by ``resourceNames`` allows the list and the watch;
* then ``...&watch=1&resourceVersion=<rv>&allowWatchBookmarks=true&timeoutSeconds=<n>``,
  one JSON event per line, re-opened from the last resourceVersion when the server ends it;
* ``410 Gone`` (as the response or as an ERROR event: that resourceVersion was compacted
  away) lists again at once; any other failure backs off (jittered, capped) while the last
  good keys keep serving, and the mounted file stays the fallback (``auth.keysources``);
* the token file is read afresh for every request: the kubelet rotates projected tokens.

Each Secret's ``keys.yaml`` is validated like the file (``config.parse_keys``); bad content
keeps the last good keys and is reported as a failed reload of ``keys-watch`` (metrics,
readiness). Nothing here logs a Secret's content; the Secret holds hashes only anyway.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime
import functools
import json
import logging
import pathlib
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import tenacity

from weather_proxy import config as config_mod
from weather_proxy import version
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

RELOAD_LABEL = "keys-watch"  # the `file` label of the reload metrics for watched content
ENV_HOST, ENV_PORT = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 10.0
# The server ends a watch after timeoutSeconds; a read gap longer than this margin over it is a dead peer.
READ_MARGIN_SECONDS = 30.0
# A dead peer on an idle stream is noticed by TCP keepalive within about a minute.
KEEPALIVE_OPTIONS: list[tuple[int, int, int]] = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)] + [
    (socket.IPPROTO_TCP, number, value)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if isinstance(number := getattr(socket, name, None), int)
]

Delivery = Callable[[str, config_mod.KeysFile | None], None]


class WatchError(Exception):
    """A list or watch failed; ``reason`` is the bounded metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Expired(WatchError):
    """410 Gone: the resourceVersion is too old; list again."""

    def __init__(self, message: str) -> None:
        super().__init__("expired", message)


def api_server_url(settings: config_mod.KubernetesKeys, environ: Mapping[str, str]) -> str:
    """``auth.kubernetes.apiServer``, else the in-cluster address; ConfigError when there is none."""
    if settings.api_server:
        return settings.api_server
    host, port = environ.get(ENV_HOST), environ.get(ENV_PORT)
    if not host or not port:
        raise config_mod.ConfigError(
            f"auth.kubernetes.apiServer: not set, and {ENV_HOST}/{ENV_PORT} are not in the environment "
            "(set it when the proxy does not run in a pod)"
        )
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _stamp(now: float) -> str:
    return datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="milliseconds")


@dataclasses.dataclass
class SecretWatchState:
    """What readiness reports about the watch of one Secret."""

    name: str
    connected: bool = False
    resource_version: str | None = None
    events: int = 0
    last_event: str | None = None
    error: str | None = None  # why the last list/watch failed; None while it works
    content_error: str | None = None  # why the last content was refused; None when it was good

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connected": self.connected,
            "resourceVersion": self.resource_version,
            "events": self.events,
            "lastEvent": self.last_event,
            "error": self.error,
            "contentError": self.content_error,
        }


class KeyWatch:
    """One task per Secret keeping its keys current; ``deliver(name, keys)`` applies what arrives."""

    def __init__(
        self,
        settings: config_mod.KubernetesKeys,
        api_server: str,
        deliver: Delivery,
        metrics: metrics_mod.Metrics,
        *,
        backoff_initial: float = BACKOFF_INITIAL_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # Epoch seconds: the events' stamps, and how long a watch lasted (a test moves it).
        self.clock = clock
        self.api_server = api_server.rstrip("/")
        self.deliver = deliver
        self.metrics = metrics
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.states = {name: SecretWatchState(name) for name in settings.secret_names}
        self.namespace: str | None = settings.namespace
        # One client per Secret: a broken connection of one watch never disturbs another's.
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._refresh_gauge()

    # -- state -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Every Secret is watched right now."""
        return all(state.connected for state in self.states.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "apiServer": self.api_server,
            "namespace": self.namespace,
            "secrets": [state.as_json() for state in self.states.values()],
        }

    def _refresh_gauge(self) -> None:
        self.metrics.keys_watch_connected.set(1 if self.connected else 0)

    def _set_connected(self, state: SecretWatchState, connected: bool) -> None:
        if state.connected != connected:
            state.connected = connected
            self._refresh_gauge()
            if connected:
                log.info("watching keys Secret %s/%s", self.namespace, state.name)

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch every Secret until cancelled."""
        try:
            await asyncio.gather(*(self._run_one(state) for state in self.states.values()))
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
        for state in self.states.values():
            state.connected = False
        self._refresh_gauge()

    async def _run_one(self, state: SecretWatchState) -> None:
        while True:
            # A fresh backoff schedule after every watch that ended cleanly.
            retrying = tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception_type(Exception),
                wait=tenacity.wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
                before_sleep=functools.partial(self._failed, state),
            )
            async for attempt in retrying:
                with attempt:
                    await self._session(state)

    async def _failed(self, state: SecretWatchState, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        reason = exc.reason if isinstance(exc, WatchError) else "network" if _is_network(exc) else "protocol"
        self.metrics.keys_watch_errors.labels(reason).inc()
        state.error = f"{reason}: {exc}"
        self._set_connected(state, False)
        client = self._clients.pop(state.name, None) if _is_network(exc) else None
        if client is not None:
            await client.aclose()  # the next attempt re-reads the CA bundle and connects afresh
        delay = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
        log.warning(
            "watch of keys Secret %s failed (%s), retrying in %.1fs; the last good keys stay in force",
            state.name,
            state.error,
            delay,
            exc_info=exc if reason == "protocol" else None,
        )

    async def _session(self, state: SecretWatchState) -> None:
        """List if needed, then one watch request until the server ends it; errors raise."""
        if state.resource_version is None:
            await self._list(state)
        try:
            await self._watch(state)
        except Expired as exc:
            self.metrics.keys_watch_errors.labels(exc.reason).inc()
            log.info("watch of keys Secret %s: %s; listing again", state.name, exc)
            state.resource_version = None

    # -- requests ----------------------------------------------------------------------------

    def client(self, secret: str) -> httpx.AsyncClient:
        """The HTTP client of the watch of ``secret``."""
        if secret not in self._clients:
            settings = self.settings
            verify: ssl.SSLContext | bool = True
            if self.api_server.startswith("https://"):
                verify = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else True
            transport = httpx.AsyncHTTPTransport(verify=verify, socket_options=KEEPALIVE_OPTIONS)
            self._clients[secret] = httpx.AsyncClient(
                base_url=self.api_server,
                transport=transport,
                timeout=httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"weather-proxy/{version.VERSION} (keys watch)",
                },
            )
        return self._clients[secret]

    def _credentials(self) -> tuple[str, dict[str, str]]:
        """The namespace and the Authorization header, read now from the ServiceAccount files."""
        token_file = pathlib.Path(self.settings.token_file)
        try:
            token = token_file.read_text(encoding="utf-8").strip()
            if self.namespace is None:
                self.namespace = (token_file.parent / "namespace").read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WatchError("credentials", f"cannot read {exc.filename}: {exc.strerror}") from None
        if not token:
            raise WatchError("credentials", f"{token_file} is empty")
        return self.namespace, {"Authorization": f"Bearer {token}"}

    def _path(self, namespace: str) -> str:
        return f"/api/v1/namespaces/{namespace}/secrets"

    async def _list(self, state: SecretWatchState) -> None:
        namespace, headers = self._credentials()
        params = {"fieldSelector": f"metadata.name={state.name}"}
        response = await self.client(state.name).get(self._path(namespace), params=params, headers=headers)
        _raise_for(response.status_code, response.content)
        listing = _json_object(response.content)
        items = listing.get("items") or []
        self._set_connected(state, True)
        state.error = None
        await self._received(state, "listed", items[0] if items else None)
        state.resource_version = str((listing.get("metadata") or {}).get("resourceVersion") or "") or None

    async def _watch(self, state: SecretWatchState) -> None:
        namespace, headers = self._credentials()
        timeout = self.settings.watch_timeout_seconds
        params: dict[str, str | int] = {
            "fieldSelector": f"metadata.name={state.name}",
            "watch": 1,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout,
        }
        if state.resource_version:
            params["resourceVersion"] = state.resource_version
        read_timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=timeout + READ_MARGIN_SECONDS)
        started, lines = self.clock(), 0
        async with self.client(state.name).stream(
            "GET", self._path(namespace), params=params, headers=headers, timeout=read_timeout
        ) as response:
            if response.status_code != 200:
                _raise_for(response.status_code, await response.aread())
            self._set_connected(state, True)
            state.error = None
            async for line in response.aiter_lines():
                if line.strip():
                    lines += 1
                    await self._event(state, _json_object(line.encode("utf-8")))
        if not lines and self.clock() - started < min(1.0, timeout / 2):
            raise WatchError("protocol", "the watch ended at once without an event")

    async def _event(self, state: SecretWatchState, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        obj = event.get("object")
        if not isinstance(obj, dict):
            raise WatchError("protocol", f"watch event {kind or '(no type)'} without an object")
        if kind == "ERROR":
            code, message = obj.get("code"), str(obj.get("message", "watch error"))
            if code == 410:
                raise Expired(message)
            raise WatchError(_reason(int(code) if isinstance(code, int) else 0), f"{code}: {message}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in {"ADDED", "MODIFIED", "DELETED"}:
            await self._received(state, kind.lower(), None if kind == "DELETED" else obj)
        elif kind != "BOOKMARK":
            raise WatchError("protocol", f"unknown watch event type {kind!r}")
        if version:
            state.resource_version = str(version)

    async def _received(self, state: SecretWatchState, kind: str, secret: dict[str, Any] | None) -> None:
        """A Secret's state from the API server: validate its keys.yaml and hand it on in one step."""
        state.events += 1
        now = self.clock()
        state.last_event = _stamp(now)
        self.metrics.keys_watch_events.labels(kind).inc()
        self.metrics.keys_watch_last_event.set(now)
        if secret is None:
            state.content_error = None
            self.deliver(state.name, None)
            log.info("keys Secret %s is gone: it contributes no keys", state.name)
            return
        source = f"Secret {self.namespace}/{state.name} key {self.settings.key}"
        try:
            text = _secret_text(secret, self.settings.key, source)
            keys = await asyncio.to_thread(config_mod.parse_keys, text, source)
        except config_mod.ConfigError as exc:
            state.content_error = str(exc)
            self.metrics.config_reloads.labels(RELOAD_LABEL, "failure").inc()
            self.metrics.config_reload_ok.labels(RELOAD_LABEL).set(0)
            log.error("keys from the API server refused, keeping the last good ones: %s", exc)
            return
        state.content_error = None
        self.deliver(state.name, keys)
        self.metrics.config_reloads.labels(RELOAD_LABEL, "success").inc()
        self.metrics.config_reload_ok.labels(RELOAD_LABEL).set(1)
        log.info("keys Secret %s %s: revision %d, %d keys", state.name, kind, keys.revision, len(keys.keys))


def _secret_text(secret: Mapping[str, Any], key: str, source: str) -> str:
    encoded = (secret.get("data") or {}).get(key)
    if encoded is None:
        raise config_mod.ConfigError(f"{source}: missing (the Secret has no such data key)")
    try:
        return base64.b64decode(str(encoded), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise config_mod.ConfigError(f"{source}: not base64-encoded UTF-8: {exc}") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise WatchError("protocol", f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise WatchError("protocol", "not a JSON object")
    return value


def _reason(status: int) -> str:
    return {401: "unauthorized", 403: "forbidden", 410: "expired"}.get(status, "http")


def _raise_for(status: int, body: bytes) -> None:
    """A WatchError naming the API server's own message for a non-200 answer."""
    if status == 200:
        return
    message = body[:300].decode("utf-8", "replace")
    try:
        decoded = json.loads(body)
        if isinstance(decoded, dict) and decoded.get("message"):
            message = str(decoded["message"])
    except ValueError:
        pass
    if status == 410:
        raise Expired(message)
    raise WatchError(_reason(status), f"HTTP {status}: {message}")


def _is_network(exc: BaseException | None) -> bool:
    return isinstance(exc, httpx.TransportError | ssl.SSLError | OSError)
