"""Lifecycle tests: kubelet-simulated pods, registries and clients under load (slow)."""

from __future__ import annotations

import shutil

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lifecycle: pod lifecycle end to end (real processes, several seconds)")


@pytest.fixture
def need_node() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    from ..interop.node_peer import ensure_node_modules

    ensure_node_modules()
