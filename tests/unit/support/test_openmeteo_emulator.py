"""The Open-Meteo emulator answers like Open-Meteo, counts calls and injects faults."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import subprocess
import sys
import time

import httpx
import pytest

from devcluster import openmeteo as om

CURRENT = "temperature_2m,wind_speed_10m,wind_direction_10m,weather_code,is_day"


def test_search_known_city_has_real_coordinates(openmeteo: om.OpenMeteoEmulator) -> None:
    r = httpx.get(openmeteo.geocoding_url, params={"name": "paris", "count": 1, "language": "en"})
    assert r.status_code == 200
    (paris,) = r.json()["results"]
    assert (paris["name"], paris["country_code"], paris["latitude"], paris["longitude"]) == (
        "Paris",
        "FR",
        48.85341,
        2.3488,
    )
    assert paris["timezone"] == "Europe/Paris"


def test_search_country_code_filters_and_population_orders(openmeteo: om.OpenMeteoEmulator) -> None:
    both = httpx.get(openmeteo.geocoding_url, params={"name": "London"}).json()["results"]
    assert [c["country_code"] for c in both] == ["GB", "CA"]
    ca = httpx.get(openmeteo.geocoding_url, params={"name": "London", "countryCode": "CA"}).json()["results"]
    assert [c["admin1"] for c in ca] == ["Ontario"]


def test_search_is_accent_insensitive(openmeteo: om.OpenMeteoEmulator) -> None:
    r = httpx.get(openmeteo.geocoding_url, params={"name": "sao paulo"})
    assert r.json()["results"][0]["name"] == "São Paulo"


@pytest.mark.parametrize("name", ["Atlantisxyz", "P", ""])
def test_search_no_match_has_no_results_key(openmeteo: om.OpenMeteoEmulator, name: str) -> None:
    r = httpx.get(openmeteo.geocoding_url, params={"name": name})
    assert r.status_code == 200
    assert "results" not in r.json()


def test_synthetic_cities_are_stable() -> None:
    with om.OpenMeteoEmulator(synthetic_cities=True) as emulator:
        first = httpx.get(emulator.geocoding_url, params={"name": "city-0042"}).json()["results"][0]
        again = httpx.get(emulator.geocoding_url, params={"name": "City-0042"}).json()["results"][0]
        other = httpx.get(emulator.geocoding_url, params={"name": "city-0043"}).json()["results"][0]
    assert first == again
    assert (first["latitude"], first["longitude"]) != (other["latitude"], other["longitude"])
    assert -90 <= first["latitude"] <= 90
    assert -180 <= first["longitude"] <= 180


@pytest.mark.parametrize("count", ["0", "101", "x"])
def test_search_bad_count_is_400(openmeteo: om.OpenMeteoEmulator, count: str) -> None:
    r = httpx.get(openmeteo.geocoding_url, params={"name": "Paris", "count": count})
    assert r.status_code == 400
    assert r.json()["error"] is True


def test_forecast_current_block_is_shaped_like_open_meteo(openmeteo: om.OpenMeteoEmulator) -> None:
    r = httpx.get(
        openmeteo.forecast_url, params={"latitude": 48.85341, "longitude": 2.3488, "current": CURRENT}
    )
    assert r.status_code == 200
    body = r.json()
    assert list(body["current_units"]) == ["time", "interval", *CURRENT.split(",")]
    current = body["current"]
    assert current["interval"] == 900
    stamp = datetime.datetime.strptime(current["time"], "%Y-%m-%dT%H:%M")
    assert stamp.minute % 15 == 0
    assert current["is_day"] in (0, 1)
    assert 0 <= current["wind_direction_10m"] < 360
    assert isinstance(current["weather_code"], int)
    again = httpx.get(
        openmeteo.forecast_url, params={"latitude": 48.85341, "longitude": 2.3488, "current": CURRENT}
    )
    assert again.json()["current"] == current or again.json()["current"]["time"] != current["time"]


def test_forecast_returns_only_requested_variables(openmeteo: om.OpenMeteoEmulator) -> None:
    r = httpx.get(openmeteo.forecast_url, params={"latitude": 1, "longitude": 2, "current": "temperature_2m"})
    assert set(r.json()["current"]) == {"time", "interval", "temperature_2m"}
    bare = httpx.get(openmeteo.forecast_url, params={"latitude": 1, "longitude": 2})
    assert "current" not in bare.json()


@pytest.mark.parametrize(
    "params",
    [
        {"latitude": "91", "longitude": "0"},
        {"latitude": "0", "longitude": "-181"},
        {"latitude": "abc", "longitude": "0"},
        {"longitude": "0"},
        {"latitude": "0", "longitude": "0", "current": "temperature_2m,bogus"},
    ],
)
def test_forecast_bad_params_are_400_with_reason(
    openmeteo: om.OpenMeteoEmulator, params: dict[str, str]
) -> None:
    r = httpx.get(openmeteo.forecast_url, params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] is True
    assert body["reason"]


def test_calls_are_counted_per_endpoint_and_key(openmeteo: om.OpenMeteoEmulator) -> None:
    for _ in range(3):
        httpx.get(openmeteo.geocoding_url, params={"name": "Paris"})
    httpx.get(openmeteo.geocoding_url, params={"name": "Berlin"})
    httpx.get(openmeteo.forecast_url, params={"latitude": 48.85341, "longitude": 2.3488})
    assert openmeteo.calls("search") == 4
    assert openmeteo.calls("search", "paris") == 3
    assert openmeteo.calls("forecast", om.forecast_key(48.85341, 2.3488)) == 1
    assert openmeteo.calls() == 5
    assert httpx.get(f"{openmeteo.base_url}/__calls").json()["keys"]["search"] == {"paris": 3, "berlin": 1}
    openmeteo.reset()
    assert openmeteo.calls() == 0


@pytest.mark.parametrize(("mode", "status"), [("error500", 500), ("error502", 502), ("error429", 429)])
def test_error_faults_then_recover_after_n_calls(
    openmeteo: om.OpenMeteoEmulator, mode: str, status: int
) -> None:
    openmeteo.set_fault("forecast", mode, times=2)
    params = {"latitude": 1, "longitude": 2}
    statuses = [httpx.get(openmeteo.forecast_url, params=params).status_code for _ in range(3)]
    assert statuses == [status, status, 200]
    assert httpx.get(openmeteo.geocoding_url, params={"name": "Paris"}).status_code == 200
    assert openmeteo.calls("forecast") == 3


def test_slow_fault_delays_the_answer(openmeteo: om.OpenMeteoEmulator) -> None:
    openmeteo.set_fault("search", "slow", seconds=0.3)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(openmeteo.geocoding_url, params={"name": "Paris"}, timeout=0.05)
    assert httpx.get(openmeteo.geocoding_url, params={"name": "Paris"}, timeout=5).status_code == 200


def test_timeout_fault_hangs_until_released(openmeteo: om.OpenMeteoEmulator) -> None:
    openmeteo.set_fault("forecast", "timeout")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        hanging = pool.submit(
            httpx.get, openmeteo.forecast_url, params={"latitude": 1, "longitude": 2}, timeout=30
        )
        time.sleep(0.2)
        assert not hanging.done()
        openmeteo.clear_faults()
        assert hanging.result(10).status_code == 504
    assert httpx.get(openmeteo.forecast_url, params={"latitude": 1, "longitude": 2}).status_code == 200


def test_refuse_closes_the_port_and_restore_reopens_it(openmeteo: om.OpenMeteoEmulator) -> None:
    with httpx.Client() as client:  # a keep-alive connection opened before the refusal
        assert client.get(openmeteo.forecast_url, params={"latitude": 1, "longitude": 2}).status_code == 200
        openmeteo.set_fault("forecast", "refuse")
        with pytest.raises(httpx.TransportError):
            client.get(openmeteo.forecast_url, params={"latitude": 1, "longitude": 2})
    with pytest.raises(httpx.ConnectError):
        httpx.get(openmeteo.forecast_url, params={"latitude": 1, "longitude": 2})
    assert httpx.get(openmeteo.geocoding_url, params={"name": "Paris"}).status_code == 200
    openmeteo.set_fault("forecast", "ok")
    assert httpx.get(openmeteo.forecast_url, params={"latitude": 1, "longitude": 2}).status_code == 200
    assert openmeteo.calls("forecast") == 2


def test_fault_api_rejects_nonsense(openmeteo: om.OpenMeteoEmulator) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        openmeteo.set_fault("weather", "error500")
    with pytest.raises(ValueError, match="mode"):
        openmeteo.set_fault("search", "explode")
    with pytest.raises(ValueError, match="times"):
        openmeteo.set_fault("search", "refuse", times=1)
    with pytest.raises(ValueError, match="times"):
        openmeteo.set_fault("search", "error500", times=0)


def test_http_control_endpoint(openmeteo: om.OpenMeteoEmulator) -> None:
    r = httpx.post(
        f"{openmeteo.base_url}/__control", json={"endpoint": "search", "mode": "error500", "times": 1}
    )
    assert r.status_code == 200
    assert r.json()["faults"]["search"]["mode"] == "error500"
    assert httpx.get(openmeteo.geocoding_url, params={"name": "Paris"}).status_code == 500
    assert httpx.get(openmeteo.geocoding_url, params={"name": "Paris"}).status_code == 200
    bad = httpx.post(f"{openmeteo.base_url}/__control", json={"endpoint": "nope", "mode": "ok"})
    assert bad.status_code == 400
    assert httpx.post(f"{openmeteo.base_url}/__reset").json()["total"] == 0


async def test_handles_200_concurrent_connections(openmeteo: om.OpenMeteoEmulator) -> None:
    openmeteo.set_fault("search", "slow", seconds=0.2)
    limits = httpx.Limits(max_connections=250)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.get(openmeteo.geocoding_url, params={"name": "Tokyo"}) for _ in range(200))
        )
    assert [r.status_code for r in responses] == [200] * 200
    assert openmeteo.calls("search", "tokyo") == 200


def test_standalone_single_port_with_control_port() -> None:
    port, control = om.free_port(), om.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devcluster.openmeteo",
            "--port",
            str(port),
            "--control-port",
            str(control),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f":{port}/v1/forecast" in line
        base = f"http://127.0.0.1:{port}"
        assert (
            httpx.get(f"{base}/v1/search", params={"name": "Berlin"}).json()["results"][0]["country_code"]
            == "DE"
        )
        httpx.post(f"http://127.0.0.1:{control}/__control", json={"endpoint": "all", "mode": "refuse"})
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/v1/search", params={"name": "Berlin"})
        httpx.post(f"http://127.0.0.1:{control}/__control", json={"endpoint": "all", "mode": "ok"})
        assert httpx.get(f"{base}/v1/forecast", params={"latitude": 1, "longitude": 1}).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{control}/__calls").json()["endpoints"] == {
            "search": 1,
            "forecast": 1,
        }
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
