"""Scenario 4: network partitions, with pods and the database in network namespaces.

* A pod cut off from the registry keeps serving and stays ready; the registry, which cannot tell
  it from a dead pod, stops handing it out, and takes it back once the partition heals.
* A registry cut off from its database keeps answering; pods stay ready; a pod started and one
  deleted during the outage are shown at once and written when the database returns.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ..netns import Network
from .harness import (
    INACTIVE_AFTER,
    SERVANT,
    Cluster,
    PythonLoad,
    Registry,
    serving_cluster,
    watch_ready,
)
from .private_mariadb import PrivateMariaDB

pytestmark = pytest.mark.lifecycle

EXPIRY = float(INACTIVE_AFTER.rstrip("s"))


async def _until(predicate_async: object, timeout: float, step: float = 0.1) -> float | None:
    """Seconds until ``await predicate_async()`` is true, None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await predicate_async():  # type: ignore[operator]
            return time.monotonic() - started
        await asyncio.sleep(step)
    return None


async def _pod_cut_off(workdir: Path, net: Network) -> dict[str, object]:
    reg = Registry(workdir, f"sqlite:///{workdir / 'registry.db'}", host=net.add_host_address())
    namespaces = [net.add_namespace("pod") for _ in range(3)]
    cluster, py, node = await serving_cluster(workdir, [reg], netns=namespaces)
    try:
        victim, victim_ns = cluster.pods[0], namespaces[0]
        ep = cluster.endpoint(victim)
        assert ep is not None
        host, port = ep.split(":")
        direct = PythonLoad(cluster.locator, concurrency=1,
                            target=f"{SERVANT}@tcp -h {host} -p {port} -t 3000")
        await direct.start()
        supervisor_pid = victim.process.pid if victim.process else None
        stop = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(watch_ready(cluster, stop))

        net.cut(victim_ns, reg.host)

        async def gone() -> bool:
            return ep not in await cluster.active()

        left = await _until(gone, EXPIRY + 15)
        await asyncio.sleep(3.0)  # cut off well beyond the expiry
        cut_for = 3.0 + (left or 0.0)
        net.heal()

        async def back() -> bool:
            return ep in await cluster.active()

        back_in = await _until(back, 30)
        await asyncio.sleep(1.0)  # calls through the registry reach it again
        stop.set()
        not_ready = await watcher
        direct_counts = await direct.stop()
        pyc, nodec = await py.stop(), await node.stop()
        return {"left": left, "back_in": back_in, "cut_for": cut_for, "not_ready": not_ready,
                "direct": direct_counts, "python": pyc, "node": nodec,
                "restarts": victim.restarts, "same_supervisor": victim.process is not None
                and victim.process.pid == supervisor_pid
                and victim.process.returncode is None}
    finally:
        await cluster.close()


def test_pod_cut_off_from_registry(tmp_path: Path, network: Network, need_node: None) -> None:
    r = asyncio.run(_pod_cut_off(tmp_path, network))
    print(f"\npod cut off from the registry for {r['cut_for']:.1f}s: out of the active answers "
          f"after {r['left']}s, back {r['back_in']}s after the heal; direct calls "
          f"{r['direct']}; python {r['python']}; node {r['node']}")
    # it keeps serving (calls straight to it never failed) and stays ready, untouched
    assert r["direct"].failed == 0, r["direct"].errors  # type: ignore[attr-defined]
    assert r["direct"].ok > 100  # type: ignore[attr-defined]
    assert r["not_ready"] == []
    assert r["restarts"] == 0 and r["same_supervisor"]
    # the registry stops handing it out within the expiry, and takes it back after the heal
    assert r["left"] is not None and r["left"] <= EXPIRY + 12.0
    assert r["back_in"] is not None
    # clients through the registry never saw a failure
    assert r["python"].failed == 0, r["python"].errors  # type: ignore[attr-defined]
    assert r["node"].failed == 0, r["node"].errors  # type: ignore[attr-defined]


async def _db_cut_off(workdir: Path, net: Network) -> dict[str, object]:
    db = PrivateMariaDB(workdir / "mariadb", net.add_namespace("db"))
    await asyncio.to_thread(db.start)
    reg = Registry(workdir, db.url)
    cluster: Cluster | None = None
    try:
        cluster, py, node = await serving_cluster(workdir, [reg])
        stop = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(watch_ready(cluster, stop))
        leaving = cluster.pods[0]
        left_ep = cluster.endpoint(leaving)

        net.cut(None, db.ns.ip)
        cut_at = time.monotonic()

        async def degraded() -> bool:
            return "degraded" in await reg.health()

        degraded_after = await _until(degraded, 60)
        # a pod starts (onStartup) and one is deleted (preStop: onPrestop) during the outage
        started = time.monotonic()
        fresh = await cluster.create_pod()
        fresh_in = await cluster.wait_serving(fresh, timeout=60)
        await cluster.delete(leaving)
        deleted_at = time.monotonic() - started
        # longer than the expiry: nobody may expire while heartbeats cannot be written
        await asyncio.sleep(max(0.0, EXPIRY + 3.0 - (time.monotonic() - cut_at)))
        during = await cluster.active()
        expected = {cluster.endpoint(p) for p in cluster.pods}
        cut_for = time.monotonic() - cut_at
        net.heal()

        async def healthy() -> bool:
            return (await reg.health()).endswith(" ok")

        recovered = await _until(healthy, 60)

        def rows() -> dict[str, str]:
            found = db.query("SELECT pod_uid, present_state FROM db_tars.t_server_conf "
                             f"WHERE server_name = '{cluster.spec.server}'")
            return {uid: state for uid, state in found}

        async def written() -> bool:
            now = await asyncio.to_thread(rows)
            return (now.get(fresh.uid) == "active"
                    and now.get(leaving.uid) in (None, "inactive"))

        async def wrongly_inactive() -> list[str]:
            """Rows of serving pods seen not active in the database (an expiry by mistake)."""
            seen: list[str] = []
            serving = {p.uid for p in cluster.pods}
            while not stop.is_set():
                seen += [f"{uid}: {state}" for uid, state in (await asyncio.to_thread(rows)
                                                              ).items()
                         if uid in serving and state != "active" and uid != fresh.uid]
                await asyncio.sleep(0.5)
            return seen

        db_watcher = asyncio.get_running_loop().create_task(wrongly_inactive())
        # a write in flight on a connection that died waits for its I/O timeout (10 s)
        written_in = await _until(written, 60, step=0.5)
        # the expiry runs again (every 10 s) on what was written
        await asyncio.sleep(12.0)
        after = await cluster.active()
        stop.set()
        not_ready, inactive_rows = await watcher, await db_watcher
        pyc, nodec = await py.stop(), await node.stop()
        return {"degraded_after": degraded_after, "fresh_in": fresh_in, "deleted": deleted_at,
                "cut_for": cut_for, "during": during, "after": after, "expected": expected,
                "left_ep": left_ep, "recovered": recovered, "written_in": written_in,
                "not_ready": not_ready, "inactive_rows": inactive_rows, "python": pyc,
                "node": nodec,
                "rows": await asyncio.to_thread(rows), "fresh_uid": fresh.uid,
                "leaving_uid": leaving.uid}
    finally:
        if cluster is not None:
            await cluster.close()
        else:
            await reg.stop()
        await asyncio.to_thread(db.stop)


def test_registry_cut_off_from_database(tmp_path: Path, network: Network,
                                        need_node: None) -> None:
    r = asyncio.run(_db_cut_off(tmp_path, network))
    print(f"\nregistry cut off from the database for {r['cut_for']:.1f}s: degraded after "
          f"{r['degraded_after']}s; a new pod serving after {r['fresh_in']:.1f}s, a delete took "
          f"{r['deleted']:.1f}s; healthy {r['recovered']}s and all written {r['written_in']}s "
          f"after the heal; python {r['python']}; node {r['node']}")
    assert r["degraded_after"] is not None
    # answers from memory throughout, with the outage's registration and removal applied
    assert r["during"] == r["expected"]
    assert r["left_ep"] not in r["during"]  # type: ignore[operator]
    assert r["not_ready"] == []
    assert r["python"].failed == 0, r["python"].errors  # type: ignore[attr-defined]
    assert r["node"].failed == 0, r["node"].errors  # type: ignore[attr-defined]
    # nothing lost: written once the database is back, and nobody expired by the outage
    assert r["recovered"] is not None and r["written_in"] is not None
    assert r["inactive_rows"] == []
    assert r["after"] == r["expected"]
    rows = r["rows"]
    assert rows.get(r["fresh_uid"]) == "active", rows  # type: ignore[attr-defined]
    assert rows.get(r["leaving_uid"]) in (None, "inactive"), rows  # type: ignore[attr-defined]
