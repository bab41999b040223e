"""The e2e suite's own logic, testable without a cluster: engine detection and the fleet it applies."""

from __future__ import annotations

import http.server
import pathlib
import shutil
import subprocess
import threading
from typing import Any

import pytest
import yaml

from devcluster import images
from devcluster.images import normalize_ref
from e2e import cluster as kube

REPO = pathlib.Path(__file__).resolve().parents[3]


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


def overlay_objects() -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "e2e" / "overlay")], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_the_e2e_overlay_is_the_dev_overlay_with_local_images_and_the_emulator() -> None:
    objects = overlay_objects()
    dev = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "manifests" / "overlays" / "dev")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    dev_kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(dev) if d}
    kinds = {(d["kind"], d["metadata"]["name"]) for d in objects}
    assert dev_kinds < kinds
    assert kinds - dev_kinds == {("Deployment", "openmeteo"), ("Service", "openmeteo")}
    proxy = next(d for d in objects if d["kind"] == "WeatherProxy")
    spec = proxy["spec"]
    assert spec["environment"] == "dev"
    assert "image" not in spec  # the operator's default, below
    assert normalize_ref(spec["redis"]["managed"]["image"]) == images.REDIS
    assert spec["redis"]["managed"]["persistence"]["enabled"] is True
    assert spec["upstream"]["forecastUrl"].startswith("http://openmeteo.weather.svc:8080/")
    emulator = next(d for d in objects if d["kind"] == "Deployment" and d["metadata"]["name"] == "openmeteo")
    assert normalize_ref(emulator["spec"]["template"]["spec"]["containers"][0]["image"]) == images.EMULATOR
    operator = next(
        d for d in objects if d["kind"] == "Deployment" and d["metadata"]["name"] == "weather-operator"
    )
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    assert normalize_ref(container["image"]) == images.OPERATOR
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert normalize_ref(env["WEATHER_OPERATOR_DEFAULT_IMAGE"]) == images.PROXY
    weatherproxy = pytest.importorskip("weather_operator.api.weatherproxy")
    weatherproxy.WeatherProxySpec.model_validate(spec)


def test_percentiles_by_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    p = kube.percentiles(samples)
    assert (p["n"], p["p50"], p["p99"], p["max"]) == (100, 50.5, 99.0, 100.0)
    assert kube.percentiles([3.0, 1.0, 2.0])["p99"] == 3.0


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
