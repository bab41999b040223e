"""Operator startup and cleanup: production Kopf settings, the controller (``controller.runtime``).

The operator's own settings are read from the environment here (not at import), so
importing the handlers has no side effect beyond registering them with Kopf.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from weather_operator import errortracking, metrics
from weather_operator import settings as own_settings
from weather_operator.api import constants
from weather_operator.controller import indexes, runtime
from weather_operator.handlers import children


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


def watch_only_managed(kopf_settings: kopf.OperatorSettings) -> None:
    """The API server sends the operator only its own children (not every Secret of the cluster)."""
    for (group, version, plural), selector in children.CHILD_SELECTORS.items():
        resource = (group, version, plural) if group else (version, plural)
        kopf_settings.watching.label_selectors[resource] = selector


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, logger: Any, **kwargs: Any) -> None:
    own = own_settings.OperatorSettings.from_env()
    # First: what fails from here on is reported.
    reporting = errortracking.init(own)
    configure(settings, own)
    watch_only_managed(settings)
    # The indexes are live views that Kopf fills from its watches.
    views = indexes.Indexes(kwargs[indexes.FLEETS_INDEX], kwargs[indexes.KEYS_INDEX])
    controller = runtime.Controller(own, views, report_errors=reporting)
    memo[runtime.MEMO_KEY] = controller
    if own.metrics_port:
        memo[METRICS_RUNNER] = await metrics.serve(controller.metrics, "0.0.0.0", own.metrics_port)  # noqa: S104 - a pod's port  # nosec B104
    logger.info(
        "weather-operator settings: default image %s, %s reconcile workers, drift every %ss, "
        "monitoring re-check every %ss, ApiKey re-check every %ss, metrics on port %s, error reports %s",
        own.default_image,
        own.reconcile_workers,
        own.drift_interval_seconds,
        own.monitoring_recheck_seconds,
        own.key_recheck_seconds,
        own.metrics_port or "(off)",
        f"on ({own.sentry_environment})" if reporting else "off",
    )


METRICS_RUNNER = "weather_metrics_runner"


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    controller = memo.get(runtime.MEMO_KEY)
    if isinstance(controller, runtime.Controller):
        await controller.close()
    runner = memo.get(METRICS_RUNNER)
    if runner is not None:
        await runner.cleanup()
    await asyncio.to_thread(errortracking.close)
