"""Suite-wide pytest options: e2e tests are opt-in and run last."""

from __future__ import annotations

import pytest


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
