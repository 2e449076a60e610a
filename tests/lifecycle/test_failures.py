"""Scenario 2 (a pod SIGKILLed) and 3 (the registry restarted or a replica killed) under load."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from .harness import INACTIVE_AFTER, SERVANT, Registry, serving_cluster, watch_ready

pytestmark = pytest.mark.lifecycle

EXPIRY = float(INACTIVE_AFTER.rstrip("s"))


async def _pod_sigkilled(workdir: Path) -> dict[str, object]:
    reg = Registry(workdir, f"sqlite:///{workdir / 'registry.db'}")
    cluster, py, node = await serving_cluster(workdir, [reg])
    try:
        victim = cluster.pods[0]
        ep, ip, slot, old_uid = cluster.endpoint(victim), victim.ip, victim.slot, victim.uid
        killed = time.monotonic()
        cluster.sigkill(victim)
        await cluster.delete(victim, prestop=False)
        expired = None
        while time.monotonic() - killed < EXPIRY + 10:
            if ep not in await cluster.active():
                expired = time.monotonic() - killed
                break
            await asyncio.sleep(0.1)
        # the clients drop the dead endpoint at their next refresh (1 s) and retire its
        # connections; after that, no failures (generous settling for a loaded 2-core machine)
        await asyncio.sleep(4.0)
        py_before, node_before = py.counts.snapshot(), node.progress()
        await asyncio.sleep(2.0)
        py_after, node_after = py.counts.snapshot(), node.progress()
        # same IP (and port range), new identity
        back = await cluster.create_pod(ip=ip, slot=slot)
        back_in = await cluster.wait_serving(back)
        active, inactive = await cluster.view.lookup(SERVANT)
        await asyncio.sleep(1.0)
        pyc, nodec = await py.stop(), await node.stop()
        return {"endpoint": ep, "new_endpoint": cluster.endpoint(back), "expired": expired,
                "python": pyc, "node": nodec, "back_in": back_in, "active": active,
                "inactive": inactive, "old_uid": old_uid, "new_uid": back.uid,
                "py_window": (py_before, py_after), "node_window": (node_before, node_after)}
    finally:
        await cluster.close()


def test_pod_sigkilled(tmp_path: Path, need_node: None) -> None:
    r = asyncio.run(_pod_sigkilled(tmp_path))
    py, node = r["python"], r["node"]
    print(f"\nSIGKILL: left active answers after {r['expired']}s; python {py}; node {node}; "
          f"restarted pod serving after {r['back_in']:.1f}s")
    # the instance leaves the active answers within the expiry (plus a heartbeat sweep)
    assert r["expired"] is not None and r["expired"] <= EXPIRY + 4.0
    # the Python client resends idempotent calls lost in flight to another pod: no failure;
    # TarsNode fails the calls in flight on the dead connection (bounded), then fails over
    assert py.failed == 0, py.errors  # type: ignore[attr-defined]
    assert node.failed <= 20, node.errors  # type: ignore[attr-defined]
    (ok0, f0), (ok1, f1) = r["py_window"]  # type: ignore[misc]
    assert ok1 > ok0 and f1 == f0
    n0, n1 = r["node_window"]  # type: ignore[misc]
    assert n1["ok"] > n0["ok"] and n1["failed"] == n0["failed"]
    # a new identity at the same address comes back active, not shadowed by the dead rows
    assert r["new_uid"] != r["old_uid"]
    assert r["new_endpoint"] in r["active"]  # type: ignore[operator]
    assert r["new_endpoint"] not in r["inactive"]  # type: ignore[operator]
    assert len(r["active"]) == 3  # type: ignore[arg-type]


async def _registry_restarted(workdir: Path) -> dict[str, object]:
    reg = Registry(workdir, f"sqlite:///{workdir / 'registry.db'}")
    cluster, py, node = await serving_cluster(workdir, [reg])
    try:
        stop = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(watch_ready(cluster, stop))
        await reg.stop(signal.SIGTERM)
        await asyncio.sleep(3.0)  # down longer than a client refresh and a few probes
        await reg.start()
        await asyncio.sleep(3.0)
        active = await cluster.active()
        stop.set()
        not_ready = await watcher
        pyc, nodec = await py.stop(), await node.stop()
        return {"python": pyc, "node": nodec, "not_ready": not_ready, "active": active,
                "endpoints": {cluster.endpoint(p) for p in cluster.pods}}
    finally:
        await cluster.close()


def test_registry_restarted(tmp_path: Path, need_node: None) -> None:
    r = asyncio.run(_registry_restarted(tmp_path))
    py, node = r["python"], r["node"]
    print(f"\nregistry restart: python {py}; node {node}")
    assert r["not_ready"] == []
    assert py.failed == 0, py.errors  # type: ignore[attr-defined]
    assert node.failed == 0, node.errors  # type: ignore[attr-defined]
    assert r["active"] == r["endpoints"]


def _mysql_url() -> str:
    import subprocess

    from .harness import ROOT
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "mariadb.sh")], capture_output=True,
                          text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.skip(f"no MariaDB: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _mysql(url: str, sql: str) -> None:
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username,
                           password=u.password or "")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.commit()
    finally:
        conn.close()


async def _replica_killed(workdir: Path, url: str) -> dict[str, object]:
    regs = [Registry(workdir, url, "registry-a"), Registry(workdir, url, "registry-b")]
    cluster, py, node = await serving_cluster(workdir, regs)
    try:
        stop = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(watch_ready(cluster, stop))
        await regs[0].stop(signal.SIGKILL)
        await asyncio.sleep(4.0)  # several client refreshes and heartbeats on one replica
        active, _ = await _lookup_on(regs[1])
        stop.set()
        not_ready = await watcher
        pyc, nodec = await py.stop(), await node.stop()
        return {"python": pyc, "node": nodec, "not_ready": not_ready, "active": active,
                "endpoints": {cluster.endpoint(p) for p in cluster.pods}}
    finally:
        await cluster.close()


async def _lookup_on(reg: Registry) -> tuple[set[str], set[str]]:
    from k8stars.local.registry import RegistryView

    from .harness import locator_of
    view = RegistryView(locator_of([reg]))
    try:
        return await view.lookup(SERVANT)
    finally:
        await view.close()


def test_registry_replica_killed(tmp_path: Path, need_node: None) -> None:
    import uuid

    base = _mysql_url()
    name = f"db_tars_lifecycle_{uuid.uuid4().hex[:8]}"
    _mysql(base, f"CREATE DATABASE {name}")
    try:
        url = base.rsplit("/", 1)[0] + "/" + name
        r = asyncio.run(_replica_killed(tmp_path, url))
    finally:
        _mysql(base, f"DROP DATABASE IF EXISTS {name}")
    py, node = r["python"], r["node"]
    print(f"\nregistry replica SIGKILLed: python {py}; node {node}")
    assert r["not_ready"] == []
    assert py.failed == 0, py.errors  # type: ignore[attr-defined]
    assert node.failed == 0, node.errors  # type: ignore[attr-defined]
    assert r["active"] == r["endpoints"]
