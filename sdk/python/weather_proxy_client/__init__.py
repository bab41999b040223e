"""A client of the Weather Proxy Fleet HTTP API (``/v1/weather``, ``/v1/usage``).

::

    from weather_proxy_client import WeatherClient, errors

    with WeatherClient("http://127.0.0.1:8080", api_key="wpk_...") as client:
        weather = client.weather("Paris", country="FR")
        print(weather.current.temperature_c, weather.meta.rate_limit)

``AsyncWeatherClient`` has the same methods as coroutines. Errors are
:class:`errors.ApiError` subclasses carrying the RFC 9457 problem document.
"""

from weather_proxy_client import errors
from weather_proxy_client._version import __version__
from weather_proxy_client.client import AsyncWeatherClient, WeatherClient
from weather_proxy_client.models import (
    CacheInfo,
    Current,
    Limit,
    Location,
    Problem,
    Quota,
    RateLimit,
    ResponseMeta,
    Usage,
    Weather,
)
from weather_proxy_client.retry import RetryPolicy

__all__ = [
    "AsyncWeatherClient",
    "CacheInfo",
    "Current",
    "Limit",
    "Location",
    "Problem",
    "Quota",
    "RateLimit",
    "ResponseMeta",
    "RetryPolicy",
    "Usage",
    "Weather",
    "WeatherClient",
    "__version__",
    "errors",
]
