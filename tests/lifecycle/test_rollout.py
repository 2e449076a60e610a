"""Scenario 1: a rolling update (surge 1, unavailable 0) of 3 replicas under load."""

from __future__ import annotations

import asyncio
import sqlite3
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
        new = await rolling_update(cluster, list(cluster.pods), version="0.2.0")
        rollout = time.monotonic() - started
        await asyncio.sleep(1.5)  # calls keep going on the new pods
        pyc, nodec = await py.stop(), await node.stop()
        active = await cluster.active()
        # what the new pods registered: their UIDs and the version from the template's label
        # (downward API → SERVER_VERSION → onStartup)
        with sqlite3.connect(workdir / "registry.db") as db:
            rows = db.execute("SELECT pod_uid, patch_version FROM t_server_conf WHERE "
                              "present_state = 'active'").fetchall()
        return {"rollout": rollout, "python": pyc, "node": nodec, "active": active,
                "new": {cluster.endpoint(p) for p in new},
                "registered": dict(rows), "expected": {p.uid: "0.2.0" for p in new}}
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
    assert result["registered"] == result["expected"]
