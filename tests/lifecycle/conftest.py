"""Lifecycle tests: kubelet-simulated pods, registries and clients under load (slow)."""

from __future__ import annotations

import shutil

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Pods are killed (SIGKILL is part of the scenarios) and their asyncio subprocess transports
    # may be finalized after the scenario's event loop closed: a warning about the test, not
    # about k8stars, so it is not turned into a failure here.
    ignore = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    for item in items:
        if "tests/lifecycle/" in str(item.fspath):
            item.add_marker(ignore)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lifecycle: pod lifecycle end to end (real processes, several seconds)")


@pytest.fixture
def need_node() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    from ..interop.node_peer import ensure_node_modules

    ensure_node_modules()
