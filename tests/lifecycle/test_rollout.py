"""Scenario 1: a rolling update (surge 1, unavailable 0) of 3 replicas under load."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from .harness import Cluster, NodeLoad, PythonLoad, Registry, rolling_update

pytestmark = pytest.mark.lifecycle


async def run_rollout(workdir: Path, replicas: int = 3) -> dict[str, object]:
    reg = Registry(workdir, f"sqlite:///{workdir / 'registry.db'}")
    await reg.start()
    cluster = Cluster(workdir, [reg])
    try:
        old = [await cluster.create_pod() for _ in range(replicas)]
        for pod in old:
            await cluster.wait_serving(pod)
        py = PythonLoad(cluster.locator)
        node = NodeLoad(cluster.locator, workdir)
        await py.start()
        await node.start()
        await asyncio.sleep(1.0)
        started = time.monotonic()
        new = await rolling_update(cluster, old)
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
