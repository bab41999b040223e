"""``make dev`` works: the whole local stack runs offline and proves key propagation end to end.

Runs ``python -m hack.dev --offline --check`` as a subprocess (its own control plane in a
temp dir, redis-server, PostgreSQL, emulator, operator, proxy) and checks its exit code and report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hack import kubectl as kubectl_

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("kube_controlplane")  # builds the binaries or skips, like the rest of the suite
def test_dev_stack_check_mode_passes_offline(tmp_path: Path) -> None:
    output = _check_run(tmp_path)
    # kube-scheduler + a kwok node run the fleet's pods: the WeatherProxy reads Ready.
    assert "WeatherProxy weather/dev Ready: True" in output
    # A second run in the same state dir: its logs are appended to, and the stack must read
    # the emulator's address of this run, not the first line of the log (answered 503).
    _check_run(tmp_path)


def _check_run(tmp_path: Path) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hack.dev",
            "--offline",
            "--check",
            "--no-build",
            "--state-dir",
            str(tmp_path),
        ],
        cwd=kubectl_.REPO_ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    accepted = re.search(r"ApiKey applied → proxy accepts it: ([0-9.]+) s", output)
    rejected = re.search(r"ApiKey deleted → proxy rejects it: ([0-9.]+) s", output)
    assert accepted, output
    assert rejected, output
    print(f"\nkey propagation: accept {accepted.group(1)} s, reject {rejected.group(1)} s")
    # The proxy wrote its usage history to the stack's PostgreSQL: request rows, and the key
    # lifecycle of the check (the first key issued and deleted, the second issued).
    history = re.search(r"usage history in PostgreSQL: (.*)", output)
    assert history, output
    assert "x 200" in history.group(1), history.group(1)
    for event in ("issued weather/developer", "deleted weather/developer", "issued weather/developer-2"):
        assert event in history.group(1), history.group(1)
    # Everything was torn down: no projected files are being refreshed, the control plane is gone.
    assert "stopped" in output
    assert not (tmp_path / "controlplane" / "pids").exists() or _all_dead(tmp_path / "controlplane" / "pids")
    return output


def _all_dead(pids_file: Path) -> bool:
    import json

    for pid in json.loads(pids_file.read_text()).values():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            continue
        return False
    return True
