"""Suite-wide settings: deterministic Hypothesis in CI; interop tests may not be skipped there."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

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


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands run in-process configure logging for themselves; undo it after each test."""
    manager = logging.root.manager
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {name: (lg.level, lg.propagate, lg.disabled, lg.handlers[:])
             for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    yield
    root.handlers[:], level = saved_root
    root.setLevel(level)
    for name, lg in list(manager.loggerDict.items()):
        if isinstance(lg, logging.Logger):
            lg_level, propagate, disabled, handlers = saved.get(
                name, (logging.NOTSET, True, False, []))
            lg.setLevel(lg_level)
            lg.propagate, lg.disabled, lg.handlers[:] = propagate, disabled, handlers


@pytest.fixture
def network() -> Iterator[object]:
    """A :class:`tests.netns.Network` (bridge + namespaces), torn down after the test. Skipped
    where namespaces cannot be made (not root), except in CI, where that is a failure."""
    from tests.netns import NetnsUnavailable, Network

    net = Network()
    try:
        net.create()
    except NetnsUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"network namespaces are required in CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield net
    finally:
        net.close()
