"""Suite-wide settings: in CI (K8STARS_REQUIRE_INTEROP=1) interop tests may not be skipped."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("K8STARS_REQUIRE_INTEROP") != "1":
        return
    from tests.interop.node_peer import node_available

    if not node_available():
        raise pytest.UsageError("K8STARS_REQUIRE_INTEROP=1 but Node.js/npm are not available")
