"""A local emulator of the Open-Meteo geocoding and forecast APIs, for tests and the dev stack.

A real HTTP server (aiohttp) on loopback, run on its own event loop in a background
thread, so the proxy under test talks to it over real sockets. It answers:

* ``GET /v1/search?name=&count=&countryCode=&language=`` from a built-in table of
  real cities (and, with ``synthetic_cities=True``, a deterministic made-up city for
  any other name of two or more characters). No match: 200 without a ``results`` key,
  exactly like Open-Meteo.
* ``GET /v1/forecast?latitude=&longitude=&current=...``: a deterministic ``current``
  block shaped like Open-Meteo's (15-minute aligned ``time``, ``interval: 900``).
  Bad parameters: 400 ``{"error": true, "reason": "..."}``.

Faults are injected per endpoint (``search`` or ``forecast``) at runtime, from Python
(:meth:`OpenMeteoEmulator.set_fault`) or over HTTP (``POST /__control``): ``ok``,
``error500``, ``error502``, ``error429``, ``slow`` (answer after ``seconds``),
``timeout`` (hang until released), ``refuse`` (close the listening socket and any
open connection; reopen on restore). With ``times=N`` the fault applies to the next
N calls only, then the endpoint recovers by itself.

Every call that reaches an endpoint is counted, per endpoint and per (endpoint, key)
where the key is the lower-cased city name for ``search`` and ``"lat,lon"`` (4
decimals) for ``forecast``. ``GET /__calls`` returns the counts as JSON;
``POST /__reset`` clears counts and faults.

The two endpoints listen on two ports (as the real API lives on two hosts), so one
can be refused while the other answers. Standalone (dev stack, kind e2e image)::

    python -m devcluster.openmeteo --port 8099 [--forecast-port 8100] [--control-port 8101]
        [--synthetic-cities]

Pytest: the ``openmeteo`` fixture (function scope) yields a fresh, started emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import datetime
import hashlib
import json
import math
import socket
import threading
import unicodedata
from typing import Any

from aiohttp import web

ENDPOINTS = ("search", "forecast")
MODES = ("ok", "error500", "error502", "error429", "slow", "timeout", "refuse")

# How long a "timeout" fault holds a request when nobody releases it.
HANG_LIMIT_SECONDS = 300.0

FORECAST_VARIABLES: dict[str, str] = {
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "apparent_temperature": "°C",
    "is_day": "",
    "precipitation": "mm",
    "rain": "mm",
    "showers": "mm",
    "snowfall": "cm",
    "weather_code": "wmo code",
    "cloud_cover": "%",
    "pressure_msl": "hPa",
    "surface_pressure": "hPa",
    "wind_speed_10m": "km/h",
    "wind_direction_10m": "°",
    "wind_gusts_10m": "km/h",
}

WMO_CODES = (0, 1, 2, 3, 45, 48, 51, 53, 55, 61, 63, 65, 71, 73, 75, 80, 81, 82, 95)


@dataclasses.dataclass(frozen=True)
class City:
    """One row of the built-in geocoding table (real places, real coordinates)."""

    id: int
    name: str
    latitude: float
    longitude: float
    country_code: str
    country: str
    timezone: str
    population: int
    admin1: str
    elevation: float = 0.0

    def result(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "elevation": self.elevation,
            "feature_code": "PPLC" if self.population > 5_000_000 else "PPLA",
            "country_code": self.country_code,
            "timezone": self.timezone,
            "population": self.population,
            "country": self.country,
            "admin1": self.admin1,
        }


# id | name | latitude | longitude | country code | country | timezone | population | admin1 | elevation
_CITY_TABLE = """
2988507|Paris|48.85341|2.3488|FR|France|Europe/Paris|2138551|Île-de-France|42
4717560|Paris|33.66094|-95.55551|US|United States|America/Chicago|24782|Texas|183
2643743|London|51.50853|-0.12574|GB|United Kingdom|Europe/London|8961989|England|25
6058560|London|42.98339|-81.23304|CA|Canada|America/Toronto|346765|Ontario|252
2950159|Berlin|52.52437|13.41053|DE|Germany|Europe/Berlin|3426354|Land Berlin|74
1850147|Tokyo|35.6895|139.69171|JP|Japan|Asia/Tokyo|8336599|Tokyo|44
5128581|New York|40.71427|-74.00597|US|United States|America/New_York|8804190|New York|10
3117735|Madrid|40.4165|-3.70256|ES|Spain|Europe/Madrid|3255944|Madrid|665
3169070|Rome|41.89193|12.51133|IT|Italy|Europe/Rome|2318895|Lazio|20
2759794|Amsterdam|52.37403|4.88969|NL|Netherlands|Europe/Amsterdam|741636|North Holland|13
2761369|Vienna|48.20849|16.37208|AT|Austria|Europe/Vienna|1691468|Vienna|171
2657896|Zurich|47.36667|8.55|CH|Switzerland|Europe/Zurich|341730|Zurich|429
2618425|Copenhagen|55.67594|12.56553|DK|Denmark|Europe/Copenhagen|1153615|Capital Region|14
2673730|Stockholm|59.32938|18.06871|SE|Sweden|Europe/Stockholm|1515017|Stockholm|17
658225|Helsinki|60.16952|24.93545|FI|Finland|Europe/Helsinki|558457|Uusimaa|26
3143244|Oslo|59.91273|10.74609|NO|Norway|Europe/Oslo|580000|Oslo|26
756135|Warsaw|52.22977|21.01178|PL|Poland|Europe/Warsaw|1702139|Masovia|113
3067696|Prague|50.08804|14.42076|CZ|Czechia|Europe/Prague|1165581|Prague|202
2267057|Lisbon|38.71667|-9.13333|PT|Portugal|Europe/Lisbon|517802|Lisbon|45
2964574|Dublin|53.33306|-6.24889|IE|Ireland|Europe/Dublin|1024027|Leinster|17
5368361|Los Angeles|34.05223|-118.24368|US|United States|America/Los_Angeles|3971883|California|89
4887398|Chicago|41.85003|-87.65005|US|United States|America/Chicago|2720546|Illinois|179
6167865|Toronto|43.70011|-79.4163|CA|Canada|America/Toronto|2600000|Ontario|175
3448439|São Paulo|-23.5475|-46.63611|BR|Brazil|America/Sao_Paulo|10021295|São Paulo|769
2147714|Sydney|-33.86785|151.20732|AU|Australia|Australia/Sydney|4627345|New South Wales|58
1275339|Mumbai|19.07283|72.88261|IN|India|Asia/Kolkata|12691836|Maharashtra|14
1816670|Beijing|39.9075|116.39723|CN|China|Asia/Shanghai|18960744|Beijing|49
360630|Cairo|30.06263|31.24967|EG|Egypt|Africa/Cairo|9606916|Cairo|23
993800|Johannesburg|-26.20227|28.04363|ZA|South Africa|Africa/Johannesburg|2026469|Gauteng|1767
3530597|Mexico City|19.42847|-99.12766|MX|Mexico|America/Mexico_City|12294193|Mexico City|2240
"""


def _parse_city(row: str) -> City:
    f = row.split("|")
    return City(int(f[0]), f[1], float(f[2]), float(f[3]), f[4], f[5], f[6], int(f[7]), f[8], float(f[9]))


CITIES: tuple[City, ...] = tuple(_parse_city(row) for row in _CITY_TABLE.strip().splitlines())


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a name, for matching."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_BY_NAME: dict[str, list[City]] = collections.defaultdict(list)
for _city in CITIES:
    _BY_NAME[_fold(_city.name)].append(_city)

_SYNTHETIC_COUNTRIES = (
    ("FR", "France", "Europe/Paris"),
    ("DE", "Germany", "Europe/Berlin"),
    ("US", "United States", "America/New_York"),
    ("JP", "Japan", "Asia/Tokyo"),
    ("BR", "Brazil", "America/Sao_Paulo"),
    ("IN", "India", "Asia/Kolkata"),
)


def _digest(*parts: object) -> int:
    text = "|".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def synthetic_city(name: str) -> City:
    """A made-up but stable city for any name: same name, same place, every run."""
    h = _digest("city", _fold(name))
    code, country, tz = _SYNTHETIC_COUNTRIES[h % len(_SYNTHETIC_COUNTRIES)]
    lat = round(-60 + (h >> 8) % 130_000 / 1000, 5)
    lon = round(-180 + (h >> 24) % 360_000 / 1000, 5)
    return City(
        id=10_000_000 + h % 10_000_000,
        name=name.strip().title(),
        latitude=lat,
        longitude=lon,
        country_code=code,
        country=country,
        timezone=tz,
        population=1000 + h % 1_000_000,
        admin1="Synthetic",
    )


def search_cities(name: str, count: int, country_code: str | None, synthetic: bool) -> list[City]:
    """The geocoding matches for a query, best (most populous) first."""
    folded = _fold(name)
    if len(folded) < 2:
        return []
    matches = sorted(_BY_NAME.get(folded, []), key=lambda c: -c.population)
    if not matches and synthetic:
        matches = [synthetic_city(name)]
    if country_code:
        matches = [c for c in matches if c.country_code == country_code.upper()]
    return matches[:count]


def current_weather(
    latitude: float, longitude: float, variables: list[str], now: datetime.datetime
) -> dict[str, Any]:
    """The ``current`` block for a place at a time: deterministic per 15-minute slot."""
    slot = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    h = _digest("wx", f"{latitude:.4f}", f"{longitude:.4f}", slot.isoformat())
    values: dict[str, Any] = {
        "temperature_2m": round(-10 + (h % 450) / 10 - abs(latitude) / 5, 1),
        "relative_humidity_2m": 30 + (h >> 10) % 70,
        "apparent_temperature": round(-12 + (h % 450) / 10 - abs(latitude) / 5, 1),
        "is_day": 1 if 6 <= (slot.hour + round(longitude / 15)) % 24 < 18 else 0,
        "precipitation": round(((h >> 20) % 30) / 10, 1),
        "rain": round(((h >> 20) % 30) / 10, 1),
        "showers": 0.0,
        "snowfall": 0.0,
        "weather_code": WMO_CODES[(h >> 30) % len(WMO_CODES)],
        "cloud_cover": (h >> 36) % 101,
        "pressure_msl": round(990 + ((h >> 40) % 400) / 10, 1),
        "surface_pressure": round(980 + ((h >> 40) % 400) / 10, 1),
        "wind_speed_10m": round(((h >> 44) % 400) / 10, 1),
        "wind_direction_10m": (h >> 50) % 360,
        "wind_gusts_10m": round(((h >> 44) % 400) / 10 * 1.6, 1),
    }
    block: dict[str, Any] = {"time": slot.strftime("%Y-%m-%dT%H:%M"), "interval": 900}
    block.update({v: values[v] for v in variables})
    return block


@dataclasses.dataclass
class Fault:
    """What an endpoint does with its next calls."""

    mode: str = "ok"
    seconds: float = 0.0
    remaining: int | None = None  # None: until changed; N: the next N calls, then "ok"


class _BadRequest(Exception):
    """A query Open-Meteo would reject with 400 and this reason."""


def _float_param(query: Any, name: str, low: float, high: float, label: str) -> float:
    raw = query.get(name)
    if raw is None or raw == "":
        raise _BadRequest(f"Parameter '{name}' is required")
    try:
        value = float(raw)
    except ValueError:
        raise _BadRequest(f"Cannot initialize Float from invalid String value {raw} for key {name}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise _BadRequest(f"{label} must be in range of {low:g} to {high:g}°. Given: {value}.")
    return value


class OpenMeteoEmulator:
    """The emulator: start it, point the proxy at its URLs, inject faults, count calls."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        search_port: int = 0,
        forecast_port: int | None = 0,
        control_port: int | None = None,
        synthetic_cities: bool = False,
    ) -> None:
        """``forecast_port=None`` serves both endpoints on the search port."""
        self.host = host
        self.synthetic_cities = synthetic_cities
        self._wanted_ports = {"search": search_port, "forecast": forecast_port, "control": control_port}
        self._ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {e: Fault() for e in ENDPOINTS}
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._totals: collections.Counter[str] = collections.Counter()
        # The headers of the latest calls per endpoint (bounded), e.g. to see trace propagation.
        self._headers: dict[str, collections.deque[dict[str, str]]] = {
            e: collections.deque(maxlen=100) for e in ENDPOINTS
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sites: dict[str, web.TCPSite] = {}
        self._refused_endpoints: set[str] = set()
        self._release: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> OpenMeteoEmulator:
        """Start serving in a background thread; returns once every port listens."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._astop())
            loop.close()

        self._thread = threading.Thread(target=run, name="openmeteo-emulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise RuntimeError(f"Open-Meteo emulator failed to start: {errors[0]!r}") from errors[0]
        return self

    def stop(self) -> None:
        """Stop serving; releases hanging requests first."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop = None
        self._thread = None

    def __enter__(self) -> OpenMeteoEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/search", self._search)
        app.router.add_get("/v1/forecast", self._forecast)
        app.router.add_get("/__calls", self._calls_view)
        app.router.add_post("/__control", self._control_view)
        app.router.add_post("/__reset", self._reset_view)
        self._release = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        for role in ("search", "forecast", "control"):
            wanted = self._wanted_ports[role]
            if wanted is None:
                continue
            port = wanted or free_port(self.host)
            await self._open_site(role, port)
        if "forecast" not in self._ports:
            self._ports["forecast"] = self._ports["search"]

    async def _open_site(self, role: str, port: int) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, port, backlog=2048, reuse_address=True)
        await site.start()
        self._sites[role] = site
        self._ports[role] = port

    async def _astop(self) -> None:
        if self._release is not None:
            self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _call_in_loop(self, coro: Any) -> Any:
        if self._loop is None:
            raise RuntimeError("emulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    # -- public API --------------------------------------------------------------------------------

    @property
    def search_port(self) -> int:
        return self._ports["search"]

    @property
    def forecast_port(self) -> int:
        return self._ports["forecast"]

    @property
    def base_url(self) -> str:
        """Where the control endpoints answer (the control port when there is one)."""
        return f"http://{self.host}:{self._ports.get('control', self._ports['search'])}"

    @property
    def geocoding_url(self) -> str:
        return f"http://{self.host}:{self.search_port}/v1/search"

    @property
    def forecast_url(self) -> str:
        return f"http://{self.host}:{self.forecast_port}/v1/forecast"

    def set_fault(self, endpoint: str, mode: str, *, seconds: float = 0.0, times: int | None = None) -> None:
        """Make ``endpoint`` (``search``, ``forecast`` or ``all``) misbehave.

        ``times=N``: only the next N calls, then it answers normally again. ``refuse``
        closes the endpoint's port (until the mode changes) and cannot be counted.
        """
        targets = ENDPOINTS if endpoint == "all" else (endpoint,)
        for target in targets:
            if target not in ENDPOINTS:
                raise ValueError(f"endpoint: must be one of {ENDPOINTS} or 'all', got {endpoint!r}")
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
        if mode == "refuse" and times is not None:
            raise ValueError("times: a refused port sees no calls to count; set 'refuse' without times")
        if times is not None and times < 1:
            raise ValueError(f"times: must be >= 1, got {times}")
        with self._lock:
            for target in targets:
                self._faults[target] = Fault(mode, seconds, times)
        if self._loop is not None:
            self._call_in_loop(self._sync_ports())

    def clear_faults(self) -> None:
        """Every endpoint answers normally again (hanging requests are released)."""
        self.set_fault("all", "ok")
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._release_hangs)

    def reset(self) -> None:
        """Fresh state: no faults, no counts."""
        self.clear_faults()
        with self._lock:
            self._clear_counts_locked()

    def _clear_counts_locked(self) -> None:
        self._counts.clear()
        self._totals.clear()
        for seen in self._headers.values():
            seen.clear()

    def request_headers(self, endpoint: str) -> list[dict[str, str]]:
        """The headers of the latest calls (up to 100) that reached ``endpoint``, oldest first."""
        with self._lock:
            return list(self._headers[endpoint])

    def calls(self, endpoint: str | None = None, key: str | None = None) -> int:
        """Calls that reached ``endpoint`` (all endpoints when None), optionally for one key.

        Keys: the lower-cased city name for ``search``; ``"lat,lon"`` with 4 decimals for
        ``forecast`` (see :func:`forecast_key`).
        """
        with self._lock:
            if endpoint is None:
                return sum(self._totals.values())
            if key is None:
                return self._totals[endpoint]
            return self._counts[(endpoint, key)]

    def call_keys(self, endpoint: str) -> dict[str, int]:
        """Calls per key of one endpoint."""
        with self._lock:
            return {k: n for (e, k), n in self._counts.items() if e == endpoint}

    def snapshot(self) -> dict[str, Any]:
        """All counts, as ``/__calls`` returns them."""
        with self._lock:
            return {
                "total": sum(self._totals.values()),
                "endpoints": dict(self._totals),
                "keys": {e: {k: n for (ee, k), n in self._counts.items() if ee == e} for e in ENDPOINTS},
                "faults": {e: dataclasses.asdict(f) for e, f in self._faults.items()},
            }

    # -- ports (refuse) ----------------------------------------------------------------------------

    async def _sync_ports(self) -> None:
        """Close a port whose endpoints are all refused; reopen it when one is restored."""
        with self._lock:
            refused = {e for e, f in self._faults.items() if f.mode == "refuse"}
        for role in ENDPOINTS:
            if self._wanted_ports[role] is None:
                continue  # served on the search port: closed only with it
            sharing = [e for e in ENDPOINTS if self._ports[e] == self._ports[role]]
            close = all(e in refused for e in sharing)
            site = self._sites.get(role)
            if close and site is not None:
                await site.stop()
                del self._sites[role]
            elif not close and site is None:
                await self._open_site(role, self._ports[role])
        self._refused_endpoints = refused

    def _release_hangs(self) -> None:
        """Let every request held by a ``timeout`` fault go (must run in the loop)."""
        if self._release is not None:
            self._release.set()
        self._release = asyncio.Event()

    # -- handlers ----------------------------------------------------------------------------------

    def _take_fault(self, endpoint: str) -> Fault:
        with self._lock:
            fault = self._faults[endpoint]
            if fault.mode == "ok" or fault.mode == "refuse":
                return Fault(fault.mode, fault.seconds)
            taken = Fault(fault.mode, fault.seconds)
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults[endpoint] = Fault()
            return taken

    def _dropped(self, request: web.Request, endpoint: str) -> bool:
        """Abort the connection of a call to a refused endpoint (keep-alive from before the close).

        The caller's response is never delivered: the client sees a reset connection.
        """
        if endpoint not in self._refused_endpoints:
            return False
        if request.transport is not None:
            request.transport.abort()
        return True

    def _count(self, endpoint: str, key: str, request: web.Request) -> None:
        with self._lock:
            self._totals[endpoint] += 1
            self._counts[(endpoint, key)] += 1
            self._headers[endpoint].append({k.lower(): v for k, v in request.headers.items()})

    async def _apply_fault(self, request: web.Request, endpoint: str) -> web.StreamResponse | None:
        """The response a fault dictates, or None to answer normally (after any delay)."""
        fault = self._take_fault(endpoint)
        if fault.mode in ("ok", "refuse"):
            return None
        if fault.mode == "slow":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.mode == "timeout":
            assert self._release is not None
            release = self._release
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), fault.seconds or HANG_LIMIT_SECONDS)
            return web.json_response({"error": True, "reason": "emulated hang released"}, status=504)
        status = {"error500": 500, "error502": 502, "error429": 429}[fault.mode]
        if status == 502:
            return web.Response(
                status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
            )
        reason = "Too many concurrent requests" if status == 429 else "Internal server error (emulated)"
        return web.json_response({"error": True, "reason": reason}, status=status)

    async def _search(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        name = query.get("name", "")
        if self._dropped(request, "search"):
            return web.Response(status=503)
        self._count("search", search_key(name), request)
        faulted = await self._apply_fault(request, "search")
        if faulted is not None:
            return faulted
        try:
            count = int(query.get("count", "10"))
        except ValueError:
            return _bad_request(f"Cannot initialize Int from invalid String value {query.get('count')}")
        if not 1 <= count <= 100:
            return _bad_request(f"Parameter count must be between 1 and 100. Given: {count}.")
        matches = search_cities(name, count, query.get("countryCode") or None, self.synthetic_cities)
        body: dict[str, Any] = {}
        if matches:
            body["results"] = [c.result() for c in matches]
        body["generationtime_ms"] = 0.1
        return web.json_response(body)

    async def _forecast(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        if self._dropped(request, "forecast"):
            return web.Response(status=503)
        self._count("forecast", forecast_key(query.get("latitude", ""), query.get("longitude", "")), request)
        faulted = await self._apply_fault(request, "forecast")
        if faulted is not None:
            return faulted
        try:
            lat = _float_param(query, "latitude", -90, 90, "Latitude")
            lon = _float_param(query, "longitude", -180, 180, "Longitude")
            variables = [v for v in query.get("current", "").split(",") if v]
            for v in variables:
                if v not in FORECAST_VARIABLES:
                    raise _BadRequest(f"Cannot initialize ForecastVariable from invalid String value {v}.")
        except _BadRequest as exc:
            return _bad_request(str(exc))
        body: dict[str, Any] = {
            "latitude": round(lat, 4),
            "longitude": round(lon, 4),
            "generationtime_ms": 0.05,
            "utc_offset_seconds": 0,
            "timezone": "GMT",
            "timezone_abbreviation": "GMT",
            "elevation": 35.0,
        }
        if variables:
            body["current_units"] = {"time": "iso8601", "interval": "seconds"} | {
                v: FORECAST_VARIABLES[v] for v in variables
            }
            now = datetime.datetime.now(datetime.UTC)
            body["current"] = current_weather(lat, lon, variables, now)
        return web.json_response(body)

    async def _calls_view(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.snapshot())

    async def _control_view(self, request: web.Request) -> web.StreamResponse:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("body: must be a JSON object")
            endpoint = str(spec.get("endpoint", "all"))
            mode = str(spec.get("mode", "ok"))
            seconds = float(spec.get("seconds", 0.0))
            times = spec.get("times")
            self._apply_control(endpoint, mode, seconds, None if times is None else int(times))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": True, "reason": str(exc)}, status=400)
        await self._sync_ports()
        return web.json_response(self.snapshot())

    def _apply_control(self, endpoint: str, mode: str, seconds: float, times: int | None) -> None:
        # Same validation as set_fault, without the cross-thread port sync (we are in the loop).
        targets = ENDPOINTS if endpoint == "all" else (endpoint,)
        if any(t not in ENDPOINTS for t in targets):
            raise ValueError(f"endpoint: must be one of {ENDPOINTS} or 'all', got {endpoint!r}")
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
        if mode == "refuse" and times is not None:
            raise ValueError("times: a refused port sees no calls to count; set 'refuse' without times")
        with self._lock:
            for target in targets:
                self._faults[target] = Fault(mode, seconds, times)
        if mode == "ok":
            self._release_hangs()

    async def _reset_view(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._faults = {e: Fault() for e in ENDPOINTS}
            self._clear_counts_locked()
        self._release_hangs()
        await self._sync_ports()
        return web.json_response(self.snapshot())


def search_key(name: str) -> str:
    """The per-key call counter of a geocoding query."""
    return name.strip().lower()


def forecast_key(latitude: str | float, longitude: str | float) -> str:
    """The per-key call counter of a forecast query: ``"lat,lon"`` with 4 decimals."""
    try:
        return f"{float(latitude):.4f},{float(longitude):.4f}"
    except ValueError:
        return f"{latitude},{longitude}"


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": True, "reason": reason}, status=400)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.openmeteo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="search port (and forecast, unless split)")
    parser.add_argument("--forecast-port", type=int, default=None, help="serve /v1/forecast on its own port")
    parser.add_argument("--control-port", type=int, default=None, help="a port that is never refused")
    parser.add_argument("--synthetic-cities", action="store_true", help="answer any name with a made-up city")
    args = parser.parse_args(argv)
    emulator = OpenMeteoEmulator(
        host=args.host,
        search_port=args.port,
        forecast_port=args.forecast_port,
        control_port=args.control_port,
        synthetic_cities=args.synthetic_cities,
    ).start()
    print(
        json.dumps(
            {
                "geocodingUrl": emulator.geocoding_url,
                "forecastUrl": emulator.forecast_url,
                "control": emulator.base_url,
            }
        ),
        flush=True,
    )
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
