"""Suite-wide pytest options and fixtures.

e2e tests are opt-in and run last. The control-plane fixtures are session-wide so one
pytest run starts one local kube-apiserver, whichever test directories need it;
``pytest_collection_finish`` builds its binaries (when a collected test needs them)
before the first test starts, outside any per-test timeout.
"""

from __future__ import annotations

import pytest

from devcluster.fixtures import (  # noqa: F401
    kube_controlplane,
    kubeconfig,
    pytest_collection_finish,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--with-e2e",
        action="store_true",
        default=False,
        help="run the kind-based end-to-end tests (need a container engine)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--with-e2e"):
        skip = pytest.mark.skip(reason="e2e tests are opt-in: pass --with-e2e (or run `make e2e`)")
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)
    # e2e last: they are the slowest and depend on everything else being right.
    items.sort(key=lambda item: "e2e" in item.keywords)
