"""The operator's reports of its own errors, in the Sentry protocol, when it has a DSN.

``WEATHER_OPERATOR_SENTRY_DSN`` unset (the default): ``init`` does nothing, ``sentry_sdk`` is
never imported and the reconciles are not wrapped. Set, two kinds of errors are reported:

* what the operator logs at ERROR or above, with its exception: a Kopf handler that failed, a
  periodic job that failed, a background task that died (the SDK's logging integration, with
  no breadcrumbs: only the error's own line leaves the process);
* a reconcile that failed other than by the API server's answer (``reporting``): a refusal or
  an unreachable server (``apply.ApiError``) is a state that the status shows and the retries
  handle, a requeue (``workqueue.Retry``) is no failure; anything else is a bug.

Events pass the proxy's ``scrub`` (``weather_proxy.observability.errortracking``): no user,
breadcrumbs or frame variables, and no API key in any string. No other integration is
installed, so no library is patched and nothing is traced.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from weather_operator import apply, settings
from weather_operator.controller import workqueue
from weather_proxy import version
from weather_proxy.observability import errortracking as proxy_errortracking

Reconcile = Callable[[workqueue.Request, str], Awaitable[object]]
FLUSH_TIMEOUT_SECONDS = 2.0
# What the operator handles by design, not a bug to report.
EXPECTED: tuple[type[BaseException], ...] = (apply.ApiError, workqueue.Retry)


def init(own: settings.OperatorSettings) -> bool:
    """Report the operator's errors to ``own.sentry_dsn``; whether it is on."""
    if own.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=own.sentry_dsn.get_secret_value(),
        release=version.VERSION,
        environment=own.sentry_environment,
        data_collection=proxy_errortracking.data_collection(),
        max_request_body_size="never",
        include_local_variables=False,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            LoggingIntegration(level=None, event_level=logging.ERROR),
            DedupeIntegration(),
            AtexitIntegration(),
        ],
        before_send=proxy_errortracking.scrub,
    )
    return True


def reporting(reconcile: Reconcile) -> Reconcile:
    """``reconcile``, reporting an unexpected failure before the queue logs and retries it."""

    @functools.wraps(reconcile)
    async def reconcile_and_report(request: workqueue.Request, reason: str) -> object:
        try:
            return await reconcile(request, reason)
        except EXPECTED:
            raise
        except Exception as exc:
            import sentry_sdk

            sentry_sdk.capture_exception(
                exc, tags={"kind": request.kind, "namespace": request.namespace, "name": request.name}
            )
            raise

    return reconcile_and_report


def close(timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
    """Send what is queued and let go of the client (when ``init`` set one up)."""
    import sys

    sentry_sdk = sys.modules.get("sentry_sdk")  # never imported here: off, it was never loaded
    if sentry_sdk is None:
        return
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    sentry_sdk.get_global_scope().set_client(None)
