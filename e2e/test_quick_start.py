"""The README's quick start, executed as written, on a cluster nothing was installed on yet.

The commands are the README's first fenced ``bash`` block under "## Quick start", run by bash in
one go with ``-e`` (a failing command fails the test), with the session cluster's kubeconfig and
the helm that ``make helm`` builds on ``PATH``. The test runs first in the session, before the
suite's own install: the quick start installs the chart, then this test removes what it made
(the chart keeps its CRDs, as it does for a user) so that the rest of the suite starts as it
always does.

The cluster has no way to the internet, so Open-Meteo cannot answer the quick start's last
request: the proxy then answers the problem ``upstream-unavailable`` (503) or ``bad-gateway``
(502). Either proves what the quick start is for — the operator installed from the chart, the
fleet and key Ready, the key read from its Secret, the Service reached through a port-forward,
the key accepted (a refused key would be 401 or 403) — and with the internet the same command
answers 200 with the weather.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess

import pytest

from e2e import cluster as k
from e2e import conftest as fx
from testbed import helm

pytestmark = pytest.mark.e2e

README = fx.REPO / "README.md"
TIMEOUT = 600.0
UPSTREAM_PROBLEMS = ("upstream-unavailable", "bad-gateway")


def quick_start_commands() -> str:
    """The first ```bash block of the README's "## Quick start" section, as written."""
    section = README.read_text().split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```bash\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found, "README.md: no ```bash block under ## Quick start"
    return found.group(1)


def test_the_quick_start_has_at_most_ten_commands() -> None:
    commands = [line for line in quick_start_commands().splitlines() if line.strip()]
    assert 0 < len(commands) <= 10, commands


def run_quick_start(kube: k.Kube, workdir: pathlib.Path) -> str:
    """Run the commands in a process group of their own; returns what they wrote to stdout.

    The port-forward they start in the background keeps running after the last command and
    holds on to bash's stdout, so the output goes to files, the test waits for bash alone, and
    then ends the whole group.
    """
    tools = {pathlib.Path(helm.binary()).parent, pathlib.Path(shutil.which("kubectl") or "kubectl").parent}
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "PATH": os.pathsep.join([*map(str, tools), os.environ.get("PATH", "")]),
    }
    script = "set -euo pipefail\n" + quick_start_commands()
    stdout, stderr = workdir / "stdout", workdir / "stderr"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(
            ["bash", "-c", script], cwd=fx.REPO, env=env, stdout=out, stderr=err, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=TIMEOUT)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    written = stdout.read_text()
    assert returncode == 0, f"the quick start failed (exit {returncode}):\n{written}\n{stderr.read_text()}"
    return written


def remove_what_it_made(kube: k.Kube) -> None:
    kube.kubectl("-n", "weather", "delete", "-f", str(fx.REPO / "docs" / "examples" / "first-fleet.yaml"),
                 "--ignore-not-found", "--wait=true", f"--timeout={int(TIMEOUT)}s")  # fmt: skip
    helm.run("--kubeconfig", str(kube.kubeconfig), "uninstall", "weather-operator", "-n", "weather-system",
             "--wait", f"--timeout={int(TIMEOUT)}s", check=False, timeout=TIMEOUT)  # fmt: skip


def test_the_quick_start_reaches_the_proxy_with_its_own_key(kube: k.Kube, tmp_path: pathlib.Path) -> None:
    try:
        out = run_quick_start(kube, tmp_path)
    finally:
        remove_what_it_made(kube)
    # stdout holds the port-forward's own lines too; the proxy's answer is the last JSON object.
    answer = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    k.MEASURED.append(f"quick start: the last command answered {json.dumps(answer)[:200]}")
    if "current" in answer:  # a cluster with the internet: the weather itself
        assert answer["location"]["name"] == "Paris", answer
        return
    assert answer.get("type", "").rsplit("/", 1)[-1] in UPSTREAM_PROBLEMS, answer
