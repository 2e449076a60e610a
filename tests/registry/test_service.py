"""The registry service end to end: RPCs through our client to a replica, answers through QueryF;
every scenario on SQLite and on MariaDB."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from k8stars.registry.service import ServiceOptions
from k8stars.registry.store import Store
from k8stars.tars.errors import TarsRemoteError

from .conftest import MetricsReq, PrestopReq, age_heartbeat, beat, count, fetch, startup
from .test_service_harness import QUERY_OBJ, REGISTRY_OBJ, eventually, replica, run

OBJ = "App.Srv.Obj"
N1, N2 = "10.0.0.1", "10.0.0.2"
EP1, EP2 = (N1, 10000), (N2, 10000)


def test_registration_is_visible_at_once(db_url: str, make_store: Callable[..., Store]) -> None:
    async def scenario() -> None:
        async with replica(db_url) as r:
            assert await r.active(OBJ) == []
            await r.registry.onStartup(startup(N1))
            assert await r.active(OBJ) == [EP1]  # same replica: no waiting
            await r.registry.onStartup(startup(N2, State="activating"))
            assert await r.lists(OBJ) == ([EP1], [EP2])
            ret, active, inactive = await r.query.findObjectByIdInSameGroup(OBJ)
            assert (ret, [e.host for e in active], [e.host for e in inactive]) == (0, [N1], [N2])
            ret, active, _ = await r.query.findObjectById4All(OBJ)
            assert (ret, [e.host for e in active]) == (0, [N1])
            assert active[0].nodeName == N1 and active[0].timeout == 60000
            assert await r.query.findObjectByIdInSameStation(OBJ, "nowhere") == (-1, [], [])
            # activating -> active by heartbeat
            await r.registry.keepAlive(beat(N2, "active", "App", "Srv"))
            assert await r.active(OBJ) == [EP1, EP2]
            # enterprise methods
            assert await r.query.findObjectNodeName(OBJ) == (-1, [])
            assert await r.query.registerQuery(OBJ, "me") == -1
            assert await r.query.registerChange({}, "me") == -1

    run(scenario())
    store = make_store()
    assert count(store, "t_server_conf") == 2


def test_inactive_heartbeat_and_prestop_leave_the_active_list(db_url: str) -> None:
    async def scenario() -> None:
        async with replica(db_url) as r:
            await r.registry.onStartup(startup(N1))
            await r.registry.onStartup(startup(N2))
            assert await r.active(OBJ) == [EP1, EP2]
            await r.registry.keepAlive(beat(N1, "inactive", "App", "Srv"))
            assert await r.lists(OBJ) == ([EP2], [EP1])
            await r.registry.keepAlive(beat(N1, "deactivating", "App", "Srv"))
            assert await r.lists(OBJ) == ([EP2], [EP1])
            await r.registry.keepAlive(beat(N1, "active", "App", "Srv"))
            assert await r.active(OBJ) == [EP1, EP2]
            # plain heartbeats (no change) are coalesced and written later
            for _ in range(50):
                await r.registry.keepAlive(beat(N2, "active", "App", "Srv"))
            await r.registry.onPrestop(PrestopReq(nodeName=N2, application="App", server="Srv"))
            assert await r.lists(OBJ) == ([EP1], [])
            # an old client's node-wide prestop: the node's servers become destroyed
            await r.registry.onPrestop(PrestopReq(nodeName=N1))
            assert await r.lists(OBJ) == ([], [EP1])
            # an old client's node-wide heartbeat revives nothing of another pod, but does
            # set its own node's servers (the original's behaviour)
            await r.registry.keepAlive(beat(N1, "active"))
            assert await r.active(OBJ) == [EP1]

    run(scenario())


def test_disable_flow_takes_the_instance_out(db_url: str, make_store: Callable[..., Store]
                                             ) -> None:  # fmt: skip
    async def scenario() -> None:
        async with replica(db_url) as r:
            await r.registry.onStartup(startup(N1, disableFlow=True))
            await r.registry.onStartup(startup(N2))
            assert await r.lists(OBJ) == ([EP2], [EP1])
            await r.registry.onStartup(startup(N1, disableFlow=False))
            assert await r.active(OBJ) == [EP1, EP2]
            await r.registry.onStartup(startup(N1, disableFlow=True))
            assert await r.active(OBJ) == [EP2]

    run(scenario())
    row = fetch(make_store(), "SELECT grid_flag, flow_state FROM t_server_conf WHERE node_name "
                "= :n", n=N1)[0]  # fmt: skip
    assert (row["grid_flag"], row["flow_state"]) == ("NO_FLOW", "inactive")


def test_ip_reuse_new_pod_replaces_old_and_old_heartbeats_are_refused(
    db_url: str, make_store: Callable[..., Store]
) -> None:
    async def scenario() -> None:
        async with replica(db_url) as r:
            old: dict[str, Any] = {"podName": "srv-old", "podUid": "uid-old"}
            new: dict[str, Any] = {"podName": "srv-new", "podUid": "uid-new"}
            await r.registry.onStartup(startup(N1, **old))
            await r.registry.onStartup(startup(N1, server="Other", objs=("X",), port=11000,
                                               **old))  # fmt: skip
            assert await r.active("App.Other.X") == [(N1, 11000)]
            # a new pod gets the same IP: its registration replaces the dead pod's rows
            await r.registry.onStartup(startup(N1, port=12000, **new))
            assert await r.active(OBJ) == [(N1, 12000)]
            assert await r.active("App.Other.X") == []
            # the old pod's heartbeats touch nothing: no state change, nothing revived
            await r.registry.keepAlive(beat(N1, "inactive", "App", "Srv", **old))
            assert await r.active(OBJ) == [(N1, 12000)]
            await r.registry.keepAlive(beat(N1, "active", "App", "Other", **old))
            assert await r.lists("App.Other.X") == ([], [])
            # the new pod's own heartbeat works
            await r.registry.keepAlive(beat(N1, "inactive", "App", "Srv", **new))
            assert await r.lists(OBJ) == ([], [(N1, 12000)])
            await r.service.refresh()  # every pending write is in
            assert await r.lists("App.Other.X") == ([], [])

    run(scenario())
    rows = fetch(make_store(), "SELECT server_name, pod_uid, present_state FROM t_server_conf")
    assert [(x["server_name"], x["pod_uid"], x["present_state"]) for x in rows] == [
        ("Srv", "uid-new", "inactive")
    ]


def test_set_routing(db_url: str) -> None:
    async def scenario() -> None:
        async with replica(db_url) as r:
            await r.registry.onStartup(startup("10.0.1.1", setID="sz.a.1"))
            await r.registry.onStartup(startup("10.0.1.2", setID="sz.a.2"))
            await r.registry.onStartup(startup("10.0.1.3", setID="sz.a.*"))
            await r.registry.onStartup(startup("10.0.1.4"))
            await r.registry.onStartup(startup("10.0.1.5", setID="sz.b.1"))
            q = r.query

            async def hosts(set_id: str) -> tuple[int, list[str]]:
                ret, active, _ = await q.findObjectByIdInSameSet(OBJ, set_id)
                return ret, sorted(e.host for e in active)

            assert await hosts("sz.a.1") == (0, ["10.0.1.1"])
            assert await hosts("sz.a.9") == (0, ["10.0.1.3"])  # wildcard group
            assert await hosts("sz.a.*") == (0, ["10.0.1.1", "10.0.1.2", "10.0.1.3"])
            assert await hosts("sz.b.1") == (0, ["10.0.1.5"])
            assert await hosts("sz.c.1") == (-1, [])
            assert await hosts("bj.a.1") == (0, [f"10.0.1.{i}" for i in range(1, 6)])
            assert (await hosts("sz.a"))[0] == -1
            _, active, _ = await q.findObjectByIdInSameSet(OBJ, "sz.a.1")
            assert active[0].setId == "sz.a.1"
            # the set endpoint leaves when it turns inactive
            await r.registry.keepAlive(beat("10.0.1.1", "inactive", "App", "Srv"))
            ret, active, inactive = await q.findObjectByIdInSameSet(OBJ, "sz.a.1")
            assert (ret, active, [e.host for e in inactive]) == (0, [], ["10.0.1.1"])

    run(scenario())


def test_expiry_in_the_background(db_url: str) -> None:
    options = ServiceOptions(inactive_after_s=1.0, delete_after_s=2.0, expire_interval_s=0.2,
                             expire_grace_s=0.0)  # fmt: skip

    async def scenario() -> None:
        async with replica(db_url, options) as r:
            await r.registry.onStartup(startup(N1))
            await r.registry.onStartup(startup(N2))
            assert await r.active(OBJ) == [EP1, EP2]

            async def only_n2_active() -> bool:
                await r.registry.keepAlive(beat(N2, "active", "App", "Srv"))
                return await r.lists(OBJ) == ([EP2], [EP1])

            await eventually(only_n2_active, timeout=6.0, interval=0.2)

            async def n1_gone() -> bool:
                await r.registry.keepAlive(beat(N2, "active", "App", "Srv"))
                return await r.lists(OBJ) == ([EP2], [])

            await eventually(n1_gone, timeout=6.0, interval=0.2)

    run(scenario())


def test_expiry_thresholds_by_database_time(db_url: str, make_store: Callable[..., Store]
                                            ) -> None:  # fmt: skip
    store = make_store()
    options = ServiceOptions(inactive_after_s=60.0, delete_after_s=600.0,
                             expire_interval_s=3600.0)  # fmt: skip

    async def scenario() -> None:
        async with replica(db_url, options) as r:
            await r.registry.onStartup(startup(N1))
            await r.registry.onStartup(startup(N2))
            assert not await r.service.expire_once()  # grace period after start
            age_heartbeat(store, N1, 90)
            age_heartbeat(store, N2, 30)
            assert await r.service.expire_once(force=True)
            await r.service.refresh()
            assert await r.lists(OBJ) == ([EP2], [EP1])
            age_heartbeat(store, N1, 700)
            assert await r.service.expire_once(force=True)
            await r.service.refresh()
            assert await r.lists(OBJ) == ([EP2], [])

    run(scenario())
    assert count(store, "t_node_info") == 1


def test_own_servants_resolve_and_are_marked_inactive_on_stop(db_url: str) -> None:
    async def scenario() -> None:
        async with replica(db_url) as other:
            async with replica(db_url) as r:
                qport = r.runtime.server.endpoint(QUERY_OBJ).port  # type: ignore[union-attr]
                rport = r.runtime.server.endpoint(REGISTRY_OBJ).port  # type: ignore[union-attr]
                assert ("127.0.0.1", qport) in await r.active(QUERY_OBJ)
                assert ("127.0.0.1", rport) in await r.active(REGISTRY_OBJ)

                async def seen() -> bool:
                    return ("127.0.0.1", rport) in await other.active(REGISTRY_OBJ)

                await eventually(seen, timeout=3.0)

            async def gone() -> bool:
                active, inactive = await other.lists(REGISTRY_OBJ)
                return ("127.0.0.1", rport) in inactive and ("127.0.0.1", rport) not in active

            await eventually(gone, timeout=3.0)

    run(scenario())


def test_bad_input_is_refused_with_codes(db_url: str, make_store: Callable[..., Store]) -> None:
    cases: list[tuple[str, Any, str]] = [
        ("onStartup", startup(""), "nodeName: must not be empty"),
        ("onStartup", startup(app="A" * 51), "application: longer than 50"),
        ("onStartup", startup(State="running"), "unknown state 'running'"),
        ("onStartup", startup(setID="sz.a"), "setID"),
        ("onStartup", startup(objs=tuple(f"O{i}" for i in range(65))), "at most 64"),
        ("keepAlive", beat(state="sleeping"), "unknown state"),
        ("keepAlive", beat(app="App"), "together"),
        ("onPrestop", PrestopReq(nodeName="10.0.0.1", application="App"), "together"),
        ("registerMetrics", MetricsReq(nodeName="10.0.0.1", application="App", server="Srv",
                                       metricsPort=70000), "metricsPort"),
    ]
    bad_endpoint = startup()
    bad_endpoint.adapters[0].endpoint = "tcp -h"
    cases.append(("onStartup", bad_endpoint, "endpoint"))

    async def scenario() -> None:
        async with replica(db_url) as r:
            for method, req, text in cases:
                with pytest.raises(TarsRemoteError) as info:
                    await r.registry.method(method)(req)
                assert info.value.code == 1001, (method, info.value)
                assert text in info.value.message and method in info.value.message
            with pytest.raises(TarsRemoteError) as info:
                await r.registry.getMetricsAdapters(_filter({"application": "A" * 200}))
            assert info.value.code == 1001
            assert r.service.status().pending_requests == 0

    run(scenario())
    store = make_store()
    assert all(count(store, t) == 0 for t in ("t_node_info", "t_server_conf", "t_adapter_conf"))


def _filter(values: dict[str, str]) -> Any:
    from k8stars.tars.idl.loader import framework

    request: Any = framework().struct("tars.GetMetricsAdaptersReq")
    return request(filter=values)


def test_token_guards_writes_only(db_url: str) -> None:
    async def scenario() -> None:
        async with replica(db_url, token="s3cret-token") as r:
            for context in (None, {"tars_registry_token": "wrong"}):
                with pytest.raises(TarsRemoteError) as info:
                    await r.registry.onStartup(startup(), _context=context)
                assert info.value.code == 1002
                assert "tars_registry_token" in info.value.message
            with pytest.raises(TarsRemoteError) as info:
                await r.registry.keepAlive(beat())
            assert info.value.code == 1002
            good = {"tars_registry_token": "s3cret-token"}
            await r.registry.onStartup(startup(), _context=good)
            await r.registry.registerMetrics(
                MetricsReq(nodeName=N1, application="App", server="Srv", metricsPort=9999),
                _context=good,
            )
            assert await r.active(OBJ) == [EP1]  # queries stay open
            infos = await r.registry.getMetricsAdapters(_filter({}))
            assert [(i.targets, i.labels) for i in infos] == [
                ([f"{N1}:9999"], {"application": "App", "server": "Srv", "set": ""})
            ]

    run(scenario())


def test_admin_clean_and_status(db_url: str, make_store: Callable[..., Store]) -> None:
    store = make_store()

    async def scenario() -> None:
        async with replica(db_url, ServiceOptions(expire_interval_s=3600.0)) as r:
            admin = r.runtime.server.admin  # type: ignore[union-attr]
            assert admin is not None
            await r.registry.onStartup(startup(N1))
            await r.registry.onStartup(startup(N2))
            age_heartbeat(store, N1, 2 * 86400)
            with store.engine.begin() as conn:
                from sqlalchemy import text

                conn.execute(text("UPDATE t_node_info SET present_state='inactive' "
                                  "WHERE node_name=:n"), {"n": N1})  # fmt: skip
            dry = await admin.notify("clean")
            assert "App.Srv.10.0.0.1" in dry and "Dry run." in dry
            assert count(store, "t_server_conf") == 2
            done = await admin.notify("clean n")
            assert "App.Srv.10.0.0.1" in done and "Deleted" in done
            assert await r.lists(OBJ) == ([EP2], [])  # index refreshed after the clean
            assert "Dry run." in await admin.notify("clean y 2000-01-01 00:00:00")
            assert "bad datetime" in await admin.notify("clean n yesterday")
            status = await admin.notify("tars.registrystatus")
            assert "degraded: False" in status and "instances: active=2" in status  # + own
            assert "pending writes: heartbeats=0 requests=0" in status

    run(scenario())


def test_two_replicas_see_each_others_writes_within_a_second(db_url: str) -> None:
    """Replica B answers what was written through replica A within 1 s (measured)."""
    delays: list[float] = []

    async def scenario() -> None:
        async with replica(db_url) as a, replica(db_url) as b:
            await a.registry.onStartup(startup(N1))
            delays.append(await eventually(lambda: _has(b, [EP1]), timeout=5.0, interval=0.005))
            await a.registry.keepAlive(beat(N1, "inactive", "App", "Srv"))
            delays.append(await eventually(lambda: _has(b, []), timeout=5.0, interval=0.005))
            await a.registry.keepAlive(beat(N1, "active", "App", "Srv"))
            delays.append(await eventually(lambda: _has(b, [EP1]), timeout=5.0, interval=0.005))
            await a.registry.onPrestop(PrestopReq(nodeName=N1, application="App", server="Srv"))
            delays.append(await eventually(lambda: _gone(b), timeout=5.0, interval=0.005))
            # and the other way round
            await b.registry.onStartup(startup(N2))
            delays.append(await eventually(lambda: _has(a, [EP2]), timeout=5.0, interval=0.005))

    run(scenario())
    print(f"propagation between replicas: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
    assert max(delays) <= 1.0, delays


async def _has(r: Any, eps: list[tuple[str, int]]) -> bool:
    return bool(await r.active(OBJ) == eps)


async def _gone(r: Any) -> bool:
    return bool(await r.lists(OBJ) == ([], []))


def test_heartbeats_are_coalesced(db_url: str, make_store: Callable[..., Store]) -> None:
    from .conftest import count_statements

    async def scenario() -> None:
        async with replica(db_url, ServiceOptions(flush_interval_s=0.2)) as r:
            for i in range(20):
                await r.registry.onStartup(startup(f"10.0.2.{i}"))
            store = r.service.store
            with count_statements(store.engine) as counter:
                await asyncio.gather(*(
                    r.registry.keepAlive(beat(f"10.0.2.{i % 20}", "active", "App", "Srv"))
                    for i in range(400)
                ))  # fmt: skip
                await asyncio.sleep(0.5)
            updates = [s for s in counter.statements if s.lstrip().upper().startswith("UPDATE")]
            assert 1 <= len(updates) <= 6, counter.statements
            assert r.service.status().pending_beats == 0

    run(scenario())
