"""Operator startup and cleanup: production Kopf settings, the shared runtime state, the periodic loop.

The operator's own settings are read from the environment here (not at import), so
importing the handlers has no side effect beyond registering them with Kopf.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import kopf

from weather_operator import settings as own_settings
from weather_operator.api import constants
from weather_operator.handlers import apikeys, fleet, periodic, runtime


def configure(kopf_settings: kopf.OperatorSettings, own: own_settings.OperatorSettings) -> None:
    """Kopf settings for production: timeouts, backoffs, storage, events."""
    kopf_settings.posting.level = logging.getLevelName(own.posting_level.upper())
    kopf_settings.posting.reporting_component = constants.FIELD_MANAGER
    if own.namespace:
        kopf_settings.posting.reporting_instance = own.namespace
    # Sent as the `timeoutSeconds` query parameter, which the API server parses as an integer.
    kopf_settings.watching.server_timeout = int(own.watch_server_timeout_seconds)
    kopf_settings.watching.client_timeout = own.watch_client_timeout_seconds
    kopf_settings.watching.connect_timeout = own.connect_timeout_seconds
    kopf_settings.watching.inactivity_timeout = own.inactivity_timeout_seconds
    kopf_settings.networking.connect_timeout = own.connect_timeout_seconds
    kopf_settings.networking.request_timeout = own.request_timeout_seconds
    kopf_settings.networking.error_backoffs = [1, 2, 5, 10, 20, 30, 60]
    kopf_settings.peering.lifetime = own.peering_lifetime_seconds
    # Kopf's bookkeeping goes to annotations: the status schema is the CRD's, and it would prune it.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=constants.GROUP)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=constants.GROUP, key="last-handled-configuration"
    )
    # Only used if a handler ever needs one; none does (no timers, no mandatory delete handlers).
    kopf_settings.persistence.finalizer = f"{constants.GROUP}/finalizer"


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, logger: Any, **kwargs: Any) -> None:
    own = own_settings.OperatorSettings.from_env()
    configure(settings, own)
    # The indexes are live views that Kopf fills from its watches.
    state = runtime.State(
        settings=own, fleets=kwargs[runtime.FLEETS_INDEX], apikeys=kwargs[runtime.KEYS_INDEX]
    )
    memo[runtime.MEMO_KEY] = state
    state.periodic = functools.partial(periodic.run, state)
    state.on_key_transition = apikeys.recheck_fleet_keys
    state.on_keys_changed = fleet.keys_changed
    state.on_key_layout_changed = fleet.key_layout_changed
    logger.info(
        "weather-operator settings: default image %s, drift every %ss, monitoring re-check every %ss, "
        "ApiKey re-check every %ss",
        own.default_image,
        own.drift_interval_seconds,
        own.monitoring_recheck_seconds,
        own.key_recheck_seconds,
    )


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    state = memo.get(runtime.MEMO_KEY)
    if isinstance(state, runtime.State):
        await state.close()
