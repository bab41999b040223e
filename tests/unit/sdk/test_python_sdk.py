"""The Python SDK without a proxy: the analytics problems' classes, arguments refused before sending."""

from __future__ import annotations

import datetime

import httpx
import pytest

from weather_proxy_client import DateRange, WeatherClient, errors, models


def problem(slug: str, status: int) -> models.Problem:
    return models.Problem(type=errors.PROBLEM_BASE + slug, title="", status=status, detail="", instance="")


@pytest.mark.parametrize(
    ("slug", "status", "cls"),
    [
        ("analytics-disabled", 404, errors.AnalyticsDisabled),
        ("analytics-unavailable", 503, errors.AnalyticsUnavailable),
        ("not-found", 404, errors.NotFound),
        ("upstream-unavailable", 503, errors.UpstreamUnavailable),
        ("something-new", 503, errors.UpstreamUnavailable),  # an unknown type: by status
    ],
)
def test_a_problem_is_raised_as_the_class_of_its_type(
    slug: str, status: int, cls: type[errors.ApiError]
) -> None:
    assert errors.error_class(problem(slug, status)) is cls


def test_analytics_disabled_is_a_not_found() -> None:
    assert issubclass(errors.AnalyticsDisabled, errors.NotFound)
    assert not issubclass(errors.AnalyticsUnavailable, errors.UpstreamUnavailable)


def test_bad_ranges_are_refused_before_any_request() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    day = datetime.date(2026, 11, 1)
    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        WeatherClient("http://proxy.test", "wpk_unit", http_client=http) as client,
    ):
        with pytest.raises(TypeError, match="needs a DateRange"):
            client.usage_history(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="a DateRange"):
            client.top_cities((day, day))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not a datetime"):
            DateRange(day, datetime.datetime(2026, 11, 2, tzinfo=datetime.UTC))
    assert sent == []
    assert DateRange(day, day).params() == {"from": "2026-11-01", "to": "2026-11-01"}
