"""The place a request asked for, as its usage history row keeps it: all that logs, spans and reports show.

A city as the client typed it may be anything (a street, a name, a typo that says who typed
it), so it is never shown. What is shown instead is what the history keeps
(docs/analytics.md): the place the geocoder found for it, by its canonical name and country,
or coordinates to 0.1 degree (about 11 km). A city that was not found yet (a 404, an upstream
failure before the geocoder answered) has no place.

The route keeps the found place in the request's state under ``location``
(``upstream.Location``, set as soon as the geocoder answers) and coordinates under
``coordinates``; ``city`` there is the query as typed, which nothing here reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# The history's precision for coordinates (history.writer rounds its columns the same way).
COORDINATE_DIGITS = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Place:
    """A found city (``name``, ``country``: the geocoder's) or rounded coordinates (``lat``, ``lon``)."""

    name: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None


def rounded(value: float) -> float:
    return round(value, COORDINATE_DIGITS)


def of(state: Mapping[str, Any] | None) -> Place | None:
    """The request's place, or None when it asked for none or its city was not found (yet)."""
    if not state:
        return None
    location = state.get("location")
    if location is not None:
        if location.name:
            return Place(name=location.name, country=location.country)
        return Place(lat=rounded(location.latitude), lon=rounded(location.longitude))
    coordinates = state.get("coordinates")
    if coordinates is not None:
        lat, lon = coordinates
        return Place(lat=rounded(lat), lon=rounded(lon))
    return None


def city_of(state: Mapping[str, Any] | None) -> str | None:
    """The found city's name (the audit line's ``city``), on the hot path: one lookup, no object."""
    if state:
        location = state.get("location")
        if location is not None:
            name: str | None = location.name
            return name
    return None
