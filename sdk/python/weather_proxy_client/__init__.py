"""A client of the Weather Proxy Fleet HTTP API (``/v1/weather``, ``/v1/usage``, ``/v1/analytics/*``).

::

    import datetime

    from weather_proxy_client import DateRange, WeatherClient, errors

    with WeatherClient("http://127.0.0.1:8080", api_key="wpk_...") as client:
        weather = client.weather("Paris", country="FR")
        print(weather.current.temperature_c, weather.meta.rate_limit)
        week = DateRange(datetime.date(2026, 11, 23), datetime.date(2026, 11, 29))
        for city in client.top_cities(week, limit=5):  # needs the scope analytics:read
            print(city.name, city.requests)

``AsyncWeatherClient`` has the same methods as coroutines. Errors are
:class:`errors.ApiError` subclasses carrying the RFC 9457 problem document.
"""

from weather_proxy_client import errors
from weather_proxy_client._version import __version__
from weather_proxy_client.client import AsyncWeatherClient, WeatherClient
from weather_proxy_client.models import (
    CacheInfo,
    CachePeriod,
    CountryCount,
    Current,
    DateRange,
    Granularity,
    Limit,
    Listing,
    Location,
    PeakHour,
    Problem,
    Quota,
    RateLimit,
    ResponseMeta,
    TopCity,
    UpstreamPeriod,
    Usage,
    UsageHistory,
    UsagePeriod,
    Weather,
)
from weather_proxy_client.retry import RetryPolicy

__all__ = [
    "AsyncWeatherClient",
    "CacheInfo",
    "CachePeriod",
    "CountryCount",
    "Current",
    "DateRange",
    "Granularity",
    "Limit",
    "Listing",
    "Location",
    "PeakHour",
    "Problem",
    "Quota",
    "RateLimit",
    "ResponseMeta",
    "RetryPolicy",
    "TopCity",
    "UpstreamPeriod",
    "Usage",
    "UsageHistory",
    "UsagePeriod",
    "Weather",
    "WeatherClient",
    "__version__",
    "errors",
]
