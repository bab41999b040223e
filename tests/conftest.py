"""Suite-wide fixtures and how ``make test`` spreads the suite over pytest-xdist workers.

The control-plane fixtures are session-wide so one pytest run starts one local
kube-apiserver, whichever test directories need it; ``pytest_collection_finish`` builds
its binaries (when a collected test needs them) before the first test starts, outside any
per-test timeout. The e2e suite's options and ordering are in ``e2e/conftest.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devcluster.fixtures import (  # noqa: F401
    kube_controlplane,
    kubeconfig,
    pytest_collection_finish,
)

# The tests that need the kube-apiserver live here (tests/unit needs none). Under xdist they
# all run on one worker: the control plane they share takes seconds of both cores and a third
# of a GiB to start, and every test writes to it in turn (CRDs, an operator watching every
# namespace), so one worker starts it, once, as a serial run does.
CONTROLPLANE_DIRS = (
    "tests/integration/controlplane/",
    "tests/integration/manifests/",
    "tests/integration/operator/",
)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # first: xdist's own answers too
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` with two scopes of our own: the control-plane tests, and a module.

    A module's tests go to one worker, so its module-scoped fixtures (proxies, PostgreSQL, the
    SDK stack) start once; xdist's own loadscope would split a module by class. (``--dist
    loadgroup`` cannot do this: on pytest 9 its ``xdist_group`` marks no longer reach the
    scheduler.)
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ControlPlaneOrModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(CONTROLPLANE_DIRS):
                return "controlplane"
            return nodeid.split("::", 1)[0]

    return ControlPlaneOrModuleScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """No event loop set for the main thread when the first test starts.

    pytest-asyncio (through 1.x on Python 3.11) and looptime's call hook call
    ``asyncio.get_event_loop()`` around a sync test, which makes a loop nobody closes when none is
    set; the next async test then leaks it
    and ``filterwarnings = error`` turns the ResourceWarning into a failure of whichever test
    the garbage collector happens to run in (pytest-asyncio issue 724).
    """
    asyncio.set_event_loop(None)
