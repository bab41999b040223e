"""How many server processes a pod's CPU allows: the default of ``workers`` (config.yaml).

A container's CPU limit is its cgroup's CFS quota: cgroup v2 ``cpu.max`` ("200000 100000",
or "max ..." without a limit) or cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
(quota -1 without a limit). Without a limit, the CPU request, which cgroups do not show
as a count, comes from the environment (``WEATHER_PROXY_CPU_REQUEST_MILLICORES``, the
Downward API's ``requests.cpu`` with divisor ``1m``, read by ``settings.ProxySettings``).
Either is rounded up to whole processes and bounded by the CPUs this process may run on;
with neither, one process.
"""

from __future__ import annotations

import math
import os
import pathlib

from weather_proxy import contract

# The operator renders it from the container's CPU request (its tests check the two agree).
ENV_CPU_REQUEST = contract.ENV_CPU_REQUEST_MILLICORES
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")


def _read(path: pathlib.Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_limit(root: pathlib.Path = CGROUP_ROOT) -> float | None:
    """The container's CPU limit in CPUs (cgroup v2, else v1), or None when it has none."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota_text, _, period_text = v2.partition(" ")
        if quota_text == "max" or not period_text:
            return None
        return int(quota_text) / int(period_text)
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        quota_v1, period_v1 = _read(v1 / "cpu.cfs_quota_us"), _read(v1 / "cpu.cfs_period_us")
        if quota_v1 is not None and period_v1 is not None:
            quota, period = int(quota_v1), int(period_v1)
            return quota / period if quota > 0 and period > 0 else None
    return None


def usable_cpus() -> int:
    """The CPUs this process may be scheduled on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(request_millicores: int | None = None, root: pathlib.Path = CGROUP_ROOT) -> int:
    """One process per CPU of the limit, else of the request, else 1; at most the usable CPUs."""
    cpus = cgroup_limit(root)
    if cpus is None and request_millicores is not None:
        cpus = request_millicores / 1000
    if cpus is None or cpus <= 0:
        return 1
    return max(1, min(math.ceil(cpus), usable_cpus()))
