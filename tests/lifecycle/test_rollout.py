"""Scenario 1: a rolling update (surge 1, unavailable 0) of 3 replicas under load."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from .harness import Registry, rolling_update, serving_cluster

pytestmark = pytest.mark.lifecycle


async def run_rollout(workdir: Path, replicas: int = 3) -> dict[str, object]:
    reg = Registry(workdir, f"sqlite:///{workdir / 'registry.db'}")
    cluster, py, node = await serving_cluster(workdir, [reg], replicas)
    try:
        started = time.monotonic()
        new = await rolling_update(cluster, list(cluster.pods))
        rollout = time.monotonic() - started
        await asyncio.sleep(1.5)  # calls keep going on the new pods
        pyc, nodec = await py.stop(), await node.stop()
        active = await cluster.active()
        return {"rollout": rollout, "python": pyc, "node": nodec, "active": active,
                "new": {cluster.endpoint(p) for p in new}}
    finally:
        await cluster.close()


def test_rolling_update_zero_failed_calls(tmp_path: Path, need_node: None) -> None:
    result = asyncio.run(run_rollout(tmp_path))
    py, node = result["python"], result["node"]
    print(f"rollout {result['rollout']:.1f}s; python {py}; node {node}")
    assert py.failed == 0, py.errors  # type: ignore[attr-defined]
    assert node.failed == 0, node.errors  # type: ignore[attr-defined]
    assert py.ok > 100 and node.ok > 100  # type: ignore[attr-defined]
    assert result["active"] == result["new"]
