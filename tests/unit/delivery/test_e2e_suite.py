"""The e2e suite's own logic, testable without a cluster: engine detection and the fleet it applies."""

from __future__ import annotations

import http.server
import pathlib
import threading

import pytest

from e2e import cluster as kube
from e2e import conftest as e2e_fixtures


def executable(tmp_path: pathlib.Path, exit_code: int) -> str:
    script = tmp_path / f"docker-{exit_code}"
    script.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    script.chmod(0o755)
    return str(script)


def test_engine_that_answers_is_usable(tmp_path: pathlib.Path) -> None:
    assert kube.container_engine_problem(executable(tmp_path, 0)) is None


def test_engine_that_fails_gives_the_one_line_reason(tmp_path: pathlib.Path) -> None:
    assert kube.container_engine_problem(executable(tmp_path, 1)) == kube.NO_ENGINE
    assert "\n" not in kube.NO_ENGINE


def test_missing_engine_binary(tmp_path: pathlib.Path) -> None:
    assert "docker info failed" in kube.NO_ENGINE
    assert kube.container_engine_problem(str(tmp_path / "absent")) == kube.NO_ENGINE


def test_the_e2e_fleet_is_the_dev_sample_pointed_at_the_emulator() -> None:
    upstream = {
        "geocodingUrl": "http://openmeteo.weather.svc:8080/v1/search",
        "forecastUrl": "http://openmeteo.weather.svc:8080/v1/forecast",
    }
    proxy = e2e_fixtures.dev_fleet("doomed", upstream)
    assert proxy["metadata"] == {"name": "doomed", "namespace": "weather"}
    assert proxy["spec"]["environment"] == "dev"
    assert proxy["spec"]["image"] == e2e_fixtures.PROXY_IMAGE
    assert proxy["spec"]["upstream"]["forecastUrl"].startswith("http://openmeteo.")
    weatherproxy = pytest.importorskip("weather_operator.api.weatherproxy")
    weatherproxy.WeatherProxySpec.model_validate(proxy["spec"])


class Forbidden(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(403 if self.headers.get("X-API-Key") == "revoked" else 200)
        self.send_header("X-Cache", "HIT")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_http_get_returns_error_statuses_as_answers() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/weather"
        assert kube.http_get(url, {"X-API-Key": "revoked"})[0] == 403
        status, headers, body = kube.http_get(url, {"X-API-Key": "good"})
        assert (status, headers["X-Cache"], body) == (200, "HIT", b"{}")
    finally:
        server.shutdown()
        server.server_close()


def test_eventually_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="the impossible"):
        kube.eventually(lambda: None, timeout=0.05, what="the impossible", interval=0.01)
    assert kube.eventually(lambda: 42, timeout=1, what="an answer") == 42
