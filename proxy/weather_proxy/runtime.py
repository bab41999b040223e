"""The running app's state: live config, key ring, and the components built from them.

``Runtime`` is made whole with the app (``app.create_app``); ``Parts``, the clients and
services that open connections or run tasks, are made whole by the lifespan when it
starts and exist from then on as ``Runtime.parts``.

Everything that a config reload may change is read through ``Runtime.config``
at call time, so applying a new version is one attribute swap. What cannot
change without a restart is listed in ``RESTART_FIELDS`` and logged when it differs.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from weather_proxy import config as config_mod
from weather_proxy import settings as settings_mod
from weather_proxy.auth import keys as keys_mod
from weather_proxy.observability import logging as logs
from weather_proxy.observability import metrics as metrics_mod

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider

    from weather_proxy import analytics, redis_link, reload
    from weather_proxy.auth import keysources, keywatch
    from weather_proxy.cache import swr, warmer
    from weather_proxy.history import service as history_service
    from weather_proxy.ratelimit import limiter
    from weather_proxy.upstream import breaker
    from weather_proxy.upstream import budget as budget_mod

log = logging.getLogger(__name__)

# Read once at start: changing them in a reloaded file needs a pod restart.
RESTART_FIELDS = (
    ("listen",),
    ("redis",),
    ("environment",),
    ("upstream", "pool"),
    ("cache", "memory", "max_entries"),
    ("auth", "keys_file"),
    ("auth", "kubernetes"),
    ("http", "cors"),
    ("http", "trusted_hosts"),
    ("http", "gzip_minimum_size"),
    ("http", "trusted_proxies"),
    ("http", "max_header_bytes"),
    ("http", "header_timeout_seconds"),
    ("observability", "tracing"),
    ("analytics",),
    ("workers",),
    ("server",),
)


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = getattr(obj, name)
    return obj


@dataclasses.dataclass(frozen=True)
class Parts:
    """What the lifespan starts: made whole when it starts, closed when it stops."""

    http: httpx.AsyncClient
    link: redis_link.RedisLink
    breaker: breaker.UpstreamBreaker
    budget: budget_mod.UpstreamBudget
    service: swr.WeatherService
    limiter: limiter.Limiter
    analytics: analytics.UsageAnalytics
    warmer: warmer.Warmer
    reloader: reload.Reloader
    key_sources: keysources.KeySources | None  # with auth.kubernetes: file and watch merged
    key_watch: keywatch.KeyWatch | None  # with auth.kubernetes


@dataclasses.dataclass
class Runtime:
    """One app's mutable state; ``parts`` exists once the lifespan has started."""

    config: config_mod.ProxyConfig
    settings: settings_mod.ProxySettings
    metrics: metrics_mod.Metrics
    tracer_provider: TracerProvider | None  # with observability.tracing
    history: history_service.UsageHistory | None  # with analytics: the usage history in PostgreSQL
    keyring: keys_mod.KeyRing = dataclasses.field(
        default_factory=lambda: keys_mod.KeyRing(config_mod.KeysFile())
    )
    keys_loaded: bool = False
    keys_file: config_mod.KeysFile | None = None  # the last one applied through apply_keys
    started: bool = False
    shutting_down: bool = False
    parts: Parts = dataclasses.field(init=False)

    def apply_config(self, new: config_mod.ProxyConfig) -> None:
        """Swap in a reloaded config: limits, cache TTLs, timeouts, retries, breaker, log level."""
        old = self.config
        for path in RESTART_FIELDS:
            if _get(old, path) != _get(new, path):
                log.warning("config %s changed: applied at the next restart", ".".join(path))
        # Restart-only fields keep their running values so the live config tells the truth.
        update = {}
        for path in RESTART_FIELDS:
            if len(path) == 1:
                update[path[0]] = getattr(old, path[0])
        merged = new.model_copy(update=update)
        self.config = merged
        logs.set_level(merged.observability.log_level)
        self.parts.breaker.reconfigure(merged.upstream.circuit_breaker)

    def apply_keys(self, keys: config_mod.KeysFile) -> None:
        self.keys_file = keys
        self.apply_ring(keys_mod.KeyRing(keys))

    def apply_ring(self, ring: keys_mod.KeyRing) -> None:
        self.keyring = ring
        self.keys_loaded = True
        log.info("key ring holds %d keys", len(self.keyring))
        if self.history is not None:
            view = self.key_view()
            if view:
                self.history.keys_changed(view)  # the key lifecycle audit, in the background

    def key_view(self) -> dict[str, config_mod.KeysFile]:
        """The ring's sources: each keys Secret in force (with the watch), else the one keys file."""
        sources = self.parts.key_sources
        if sources is not None:
            return {name: part.keys for name, part in sources.parts.items() if part.present}
        return {"file": self.keys_file} if self.keys_file is not None else {}
