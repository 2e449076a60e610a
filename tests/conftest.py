"""Suite-wide settings: deterministic Hypothesis in CI; interop tests may not be skipped there."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs the same examples every time: a red build is reproducible, never a coin toss.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("K8STARS_REQUIRE_INTEROP") != "1":
        return
    from tests.interop.node_peer import node_available

    if not node_available():
        raise pytest.UsageError("K8STARS_REQUIRE_INTEROP=1 but Node.js/npm are not available")
