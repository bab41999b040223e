"""Errors: the proxy's problem documents as exception classes, one per kind of refusal.

Catch :class:`ApiError` for every answer the proxy refused, or a subclass for one kind::

    try:
        client.weather("Paris")
    except errors.QuotaExceeded as exc:
        print("quota resets in", exc.retry_after, "s")
    except errors.ApiError as exc:
        print(exc.problem.type, exc.problem.detail, exc.problem.instance)
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from weather_proxy_client import models

PROBLEM_BASE = "https://weatherproxy.dev/problems/"


class WeatherProxyError(Exception):
    """Anything this SDK raises."""


class TransportError(WeatherProxyError):
    """No HTTP answer (connection refused, reset, timed out) after the retries allowed."""


class ApiError(WeatherProxyError):
    """The proxy answered with an error status and a problem document."""

    def __init__(
        self,
        problem: models.Problem,
        *,
        retry_after: float | None = None,
        rate_limit: models.RateLimit | None = None,
    ) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}")
        self.problem = problem
        self.retry_after = retry_after  # seconds, from Retry-After, when the proxy sent one
        self.rate_limit = rate_limit

    @property
    def status(self) -> int:
        return self.problem.status


class BadRequest(ApiError):
    """400: a parameter broke a rule; ``problem.detail`` names it."""


class MissingApiKey(ApiError):
    """401: the proxy needs an API key and none was sent."""


class InvalidApiKey(ApiError):
    """403: the key is unknown, disabled or expired."""


class InsufficientScope(ApiError):
    """403: the key lacks the route's scope; ``problem.detail`` names it."""


class NotFound(ApiError):
    """404: no place by that name (or no such route)."""


class AnalyticsDisabled(NotFound):
    """404: this fleet keeps no usage history (no ``analytics`` in its config): no history, no analytics."""


class RateLimited(ApiError):
    """429: the key's token bucket is empty; retried after Retry-After while the budget allows."""


class QuotaExceeded(ApiError):
    """429: the key's daily or monthly quota is used up; never retried (``retry_after``: period's end)."""


class UpstreamUnavailable(ApiError):
    """503: Open-Meteo is unreachable (or its budget spent) and nothing cached can stand in."""


class AnalyticsUnavailable(ApiError):
    """503: the analytics database does not answer (the weather routes are not affected); retried
    after Retry-After while the budget allows."""


class DeadlineExceeded(ApiError):
    """504: the proxy's request deadline passed."""


class ServerError(ApiError):
    """Another 5xx."""


_BY_SLUG: dict[str, type[ApiError]] = {
    "bad-request": BadRequest,
    "missing-api-key": MissingApiKey,
    "invalid-key": InvalidApiKey,
    "key-disabled": InvalidApiKey,
    "key-expired": InvalidApiKey,
    "insufficient-scope": InsufficientScope,
    "not-found": NotFound,
    "analytics-disabled": AnalyticsDisabled,
    "rate-limited": RateLimited,
    "quota-exceeded": QuotaExceeded,
    "upstream-unavailable": UpstreamUnavailable,
    "upstream-budget-exhausted": UpstreamUnavailable,
    "analytics-unavailable": AnalyticsUnavailable,
    "deadline-exceeded": DeadlineExceeded,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: MissingApiKey,
    403: InvalidApiKey,
    404: NotFound,
    429: RateLimited,
    503: UpstreamUnavailable,
    504: DeadlineExceeded,
}


def error_class(problem: models.Problem) -> type[ApiError]:
    """The class of a problem: by its type for this API's problems, else by status."""
    if problem.type.startswith(PROBLEM_BASE) and problem.slug in _BY_SLUG:
        return _BY_SLUG[problem.slug]
    if problem.status in _BY_STATUS:
        return _BY_STATUS[problem.status]
    return ServerError if problem.status >= 500 else ApiError


def parse_problem(status: int, reason: str, body: bytes) -> models.Problem:
    """The problem document of an error body; one made up from the status when the body is not one
    (an ingress or load balancer answering for the proxy)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and "type" in data:
        return models.Problem.from_json(data, status)
    text = body.decode("utf-8", "replace").strip()[:200]
    return models.Problem(type="about:blank", title=reason, status=status, detail=text, instance="")


def from_response(
    status: int, reason: str, headers: Mapping[str, str], body: bytes, retry_after: float | None
) -> ApiError:
    problem = parse_problem(status, reason, body)
    cls = error_class(problem)
    return cls(problem, retry_after=retry_after, rate_limit=models.RateLimit.from_headers(headers))
