"""Error reports in the Sentry protocol: unhandled errors and 5xx answers, without personal data.

Off unless ``SENTRY_DSN`` is set (``settings.ProxySettings.error_tracking``). Off, the request-context
middleware holds ``None`` instead of a reporter and ``sentry_sdk`` is never imported: a request
pays one comparison of its status, and a 5xx one test of ``None``. On, a private
``sentry_sdk.Client`` sends the events (not the SDK's global one, so that several apps in one
process do not share it; with no integration at all, so that nothing is patched and no request
passes through Sentry's middleware). The middleware reports two kinds of events:

* an exception no handler answered (the last-resort 500), with its stack trace but no local
  variables;
* a 5xx answer (a problem document: 502, 503, 504, a 500 raised on purpose), as a message
  naming the status, the problem's title and the route. Health probes and metrics scrapes are
  left out: a 503 from readiness is an answer about the pod, not an error. A 4xx is never
  reported: it is the caller's mistake, answered as designed.

What an event says about its request: the method, the route's template (never the path as
typed), the place as the usage history keeps it (``place.of``: the city the geocoder found, or
coordinates to 0.1 degree; never the city as typed) as its query string, the request id as a
tag (``X-Request-ID``, the problem document's ``instance``), and the headers of
ALLOWED_HEADERS. Never the client's address, its user agent, its API key, another header or
the query as typed. ``scrub`` (the client's ``before_send``) holds every event to that,
whatever the SDK added: no user, headers cut to the allow-list, the query string replaced by
the place, no cookies, body, environ, breadcrumbs or frame variables; and in every string
left, an API key (``wpk_...``) and the request's own private values (its X-API-Key whatever its
form, its address, the values of its other headers and of its query, its path) are replaced by
``[Filtered]``.

During an outage every request is answered 503: at most MAX_REPORTS_PER_MINUTE events a minute
go out per kind, route and status, which says as much as thousands would.
"""

from __future__ import annotations

import http
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import orjson

from weather_proxy import config as config_mod
from weather_proxy import contract
from weather_proxy.observability import place as place_mod

if TYPE_CHECKING:
    from sentry_sdk.types import DataCollectionUserOptions, Event, Hint

    from weather_proxy import settings

log = logging.getLogger(__name__)

FILTERED = "[Filtered]"
# The operator's keys (weather_operator.keys) start so; a keys.yaml may hold any other form, which
# the request's own X-API-Key covers.
KEY_PATTERN = re.compile(r"wpk_[A-Za-z0-9_\-]+")
# Request headers an event may show: none of them tells who the caller is.
ALLOWED_HEADERS = frozenset({"accept", "accept-encoding", "content-length", "content-type", "x-request-id"})
# Answers about the pod or for Prometheus, whose 5xx are states, not errors.
QUIET_ROUTES = frozenset({contract.LIVENESS_PATH, contract.READINESS_PATH, contract.METRICS_PATH})
# A shorter value is left in the events' strings: a coordinate finer than 0.1 degree has at
# least four characters ("1.23"), and replacing every "1" or "GET" would garble the event.
MIN_PRIVATE_LENGTH = 4
MAX_REPORTS_PER_MINUTE = 30
CLOSE_TIMEOUT_SECONDS = 2.0
# What the middleware hands ``scrub`` in the event's hint (the SDK passes it through).
PRIVATE_HINT = "weather_proxy.private"
PLACE_HINT = "weather_proxy.place"
# Ids and SDK data, never personal: left as they are (a private value might be one of their digits).
_UNTOUCHED = frozenset({"event_id", "timestamp", "start_timestamp", "trace_id", "span_id", "sdk"})
_LIST_SEPARATORS = re.compile(r"[,;]")


def data_collection() -> DataCollectionUserOptions:
    """What the SDK may collect by itself (its integrations do; none is installed here): nothing personal.

    The SDK's own spelling of ``send_default_pii=False`` from 2.70 on: 2.72 deprecates that
    option (a DeprecationWarning) and 3.0 removes it.
    """
    options: dict[str, Any] = {
        "user_info": False,
        "cookies": {"mode": "off"},
        "http_headers": {"request": {"mode": "allowlist", "terms": sorted(ALLOWED_HEADERS)}},
        "http_bodies": [],
        "url_query_params": {"mode": "off"},
        "graphql": {"document": False, "variables": False},
        "gen_ai": {"inputs": False, "outputs": False},
        "database_query_data": False,
        "queues": False,
        "stack_frame_variables": False,
    }
    return cast("DataCollectionUserOptions", options)


def scrub(sent: Event, hint: Hint) -> Event | None:
    """The ``before_send`` of every client here (the operator's too): no personal data leaves."""
    event = cast("dict[str, Any]", sent)
    event.pop("user", None)
    event.pop("breadcrumbs", None)
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value for name, value in headers.items() if str(name).lower() in ALLOWED_HEADERS
            }
        for name in ("cookies", "data", "env"):
            request.pop(name, None)
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.partition("?")[0]
        place = hint.get(PLACE_HINT)
        if isinstance(place, str) and place:
            request["query_string"] = place
        else:
            request.pop("query_string", None)
    for frame in _frames(event):
        frame.pop("vars", None)
    private = sorted(
        {value for value in hint.get(PRIVATE_HINT, ()) if len(value) >= MIN_PRIVATE_LENGTH},
        key=len,
        reverse=True,  # the longest first: a value inside another does not leave the rest behind
    )
    return cast("Event", _clean(event, tuple(private)))


def _frames(event: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    holders: list[Any] = [event.get("stacktrace")]
    for section in ("exception", "threads"):
        values = (event.get(section) or {}).get("values") if isinstance(event.get(section), dict) else None
        holders += [value.get("stacktrace") for value in values or () if isinstance(value, dict)]
    for holder in holders:
        if isinstance(holder, dict):
            yield from (frame for frame in holder.get("frames") or () if isinstance(frame, dict))


def _clean(value: Any, private: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        value = KEY_PATTERN.sub(FILTERED, value)
        for text in private:
            if text in value:
                value = value.replace(text, FILTERED)
        return value
    if isinstance(value, dict):
        return {key: item if key in _UNTOUCHED else _clean(item, private) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item, private) for item in value]
    return value


def place_of(state: Mapping[str, Any] | None) -> str | None:
    """The request's place as its history row keeps it: ``city=..&country=..`` or ``lat=..&lon=..``."""
    place = place_mod.of(state)
    if place is None:
        return None
    if place.name is not None:
        found = {"city": place.name} | ({"country": place.country} if place.country else {})
        return urllib.parse.urlencode(found)
    return f"lat={place.lat:g}&lon={place.lon:g}"


def _private_values(scope: Mapping[str, Any], route: str | None, asked: str | None) -> list[str]:
    """What an event must not show of this request, as it could appear in an exception's text."""
    found: list[str] = []
    client = scope.get("client")
    if client:
        found.append(str(client[0]))
    for name, value in scope.get("headers") or ():
        if name.decode("latin-1").lower() in ALLOWED_HEADERS:
            continue
        text = value.decode("latin-1")
        found += [text, text.strip(), *(part.strip() for part in _LIST_SEPARATORS.split(text))]
    query: bytes = scope.get("query_string") or b""
    if query:
        found.append(query.decode("latin-1"))
        for part in query.split(b"&"):
            raw = part.partition(b"=")[2].decode("latin-1")
            found += [raw, urllib.parse.unquote_plus(raw)]
    path = scope.get("path")
    if isinstance(path, str) and path != route:
        found.append(path)
    # The place as the event shows it on purpose (the found city's name, which the client may
    # have typed just so).
    return [text for text in found if not (asked and text in asked)]


def _problem(body: bytes | None, status: int) -> tuple[str, str]:
    """(title, type's last segment) of a problem document, else the status's standard phrase."""
    if body and body[:1] == b"{" and len(body) <= 4096:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("title"), str):
            kind = doc.get("type")
            slug = kind.rsplit("/", 1)[-1] if isinstance(kind, str) else ""
            return doc["title"][:100], slug[:100]
    try:
        return http.HTTPStatus(status).phrase, ""
    except ValueError:
        return "Error", ""


class ErrorReporter:
    """Sends the request-context middleware's error reports (``unhandled``, ``answered``)."""

    def __init__(
        self,
        tracking: settings.ErrorTracking,
        release: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import sentry_sdk  # only with a DSN: without one the process never loads the SDK

        try:
            self.client = sentry_sdk.Client(
                dsn=tracking.dsn,
                release=release,
                environment=tracking.environment,
                traces_sample_rate=tracking.traces_sample_rate,
                data_collection=data_collection(),
                max_request_body_size="never",
                # A frame's variables come from the global client's data_collection, not this
                # one's (sentry_sdk.utils.serialize_frame): this is what keeps them out.
                include_local_variables=False,
                attach_stacktrace=False,
                default_integrations=False,
                auto_enabling_integrations=False,
                integrations=[],
                before_send=scrub,
            )
        except ValueError:
            # The SDK's message quotes the DSN, which holds the project's key.
            raise config_mod.ConfigError(
                f"{contract.ENV_SENTRY_DSN}: not a DSN (https://KEY@HOST/PROJECT)"
            ) from None
        self._clock = clock
        self._windows: dict[tuple[str, str, int], tuple[float, int]] = {}

    def unhandled(self, exc: BaseException, scope: Mapping[str, Any], request_id: str) -> None:
        """Report an exception nothing answered: the request got the last-resort 500."""
        try:
            route = _route(scope)
            if not self._admit("exception", route, 500):
                return
            from sentry_sdk.utils import event_from_exception

            event, hint = event_from_exception(
                exc, client_options=self.client.options, mechanism={"type": "weather_proxy", "handled": False}
            )
            event["level"] = "error"
            self._send(cast("dict[str, Any]", event), hint, scope, route, request_id, 500)
        except Exception as failure:  # a report never changes the answer
            log.warning("error report not sent: %r", failure)

    def answered(self, scope: Mapping[str, Any], status: int, request_id: str, body: bytes | None) -> None:
        """Report a 5xx answer (``body``: the problem document, for its title)."""
        try:
            route = _route(scope)
            if route in QUIET_ROUTES or not self._admit("answer", route, status):
                return
            title, slug = _problem(body, status)
            event: dict[str, Any] = {
                "message": f"{status} {title}: {scope.get('method')} {route}",
                "level": "error" if status == 500 else "warning",
                "tags": {"problem": slug} if slug else {},
            }
            self._send(event, {}, scope, route, request_id, status)
        except Exception as failure:
            log.warning("error report not sent: %r", failure)

    def _admit(self, kind: str, route: str, status: int) -> bool:
        now = self._clock()
        key = (kind, route, status)
        start, count = self._windows.get(key, (now, 0))
        if now - start >= 60.0:
            start, count = now, 0
        if count >= MAX_REPORTS_PER_MINUTE:
            return False
        self._windows[key] = (start, count + 1)
        return True

    def _send(
        self,
        event: dict[str, Any],
        hint: dict[str, Any],
        scope: Mapping[str, Any],
        route: str,
        request_id: str,
        status: int,
    ) -> None:
        method = str(scope.get("method", ""))
        template = route if route != "other" else None
        asked = place_of(scope.get("state"))
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name.decode("latin-1").lower() in ALLOWED_HEADERS
        }
        request: dict[str, Any] = {"method": method, "headers": headers}
        if template is not None:
            request["url"] = template
        if asked is not None:
            request["query_string"] = asked
        event["request"] = request
        event["transaction"] = f"{method} {route}"
        event["tags"] = {
            **event.get("tags", {}),
            "request_id": request_id,
            "http.route": route,
            "http.method": method,
            "http.status_code": str(status),
        }
        hint[PLACE_HINT] = asked
        hint[PRIVATE_HINT] = _private_values(scope, template, asked)
        self.client.capture_event(cast("Event", event), hint=hint)

    def flush(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Wait until the events captured so far are sent (or ``timeout`` passes)."""
        self.client.flush(timeout=timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Send what is queued (within ``timeout``) and stop the client's threads."""
        self.client.close(timeout=timeout)


def _route(scope: Mapping[str, Any]) -> str:
    """The route's template routing found (as the metrics label it), else ``other``."""
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else "other"
