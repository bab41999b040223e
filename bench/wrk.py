"""Run ``wrk`` against a URL and parse requests/s and latency percentiles from its report."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclasses.dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(report: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", report, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", report, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", report).group(1))  # type: ignore[union-attr]
    non_2xx_match = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    errors_match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    errors = sum(int(g) for g in errors_match.groups()) if errors_match else 0
    return WrkResult(rps, p50, p99, total, int(non_2xx_match.group(1)) if non_2xx_match else 0, errors)


# wrk calls delay() before each request of a connection: its pause in ms paces the load. The pause
# is drawn uniformly from [0, 2 x mean] so that the connections' requests arrive independently: with
# one fixed pause they fall into step and arrive as trains, each request queued behind the others
# (the latency of a burst, not of half the load).
PACING = "math.randomseed(os.time())\nfunction delay()\n  return math.random(0, {twice_mean_ms})\nend\n"


def run(
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    rate: float | None = None,
) -> WrkResult:
    """``wrk`` flat out, or paced at about ``rate`` requests/s (each connection pausing between requests).

    Paced, each connection waits ``connections / rate`` on average (uniformly random) between a
    response and its next request, so the offered rate is a little under ``rate`` (by the
    response time).
    """
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    args = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if rate is not None:
            script.write(PACING.format(twice_mean_ms=max(0, round(2 * connections / rate * 1000))))
            script.flush()
            args += ["-s", script.name]
        report = subprocess.run(
            [*args, url], capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    return parse(report)
