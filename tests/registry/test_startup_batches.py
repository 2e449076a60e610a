"""onStartup in batches: ``Store.on_startup_batch`` writes exactly what one-by-one onStartups
write (property test against the original one-request transaction), and the service writes
runs of onStartups in one transaction: visible when the calls return, kept in order through an
outage in the middle of a run, and a request the database refuses does not hold back the
others of its run. Every test on SQLite and on MariaDB."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections.abc import Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, delete, event, insert, select, text
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.schema import Table

from k8stars.registry.schema import (
    t_adapter_conf,
    t_config_files,
    t_k8stars_change,
    t_node_info,
    t_server_conf,
)
from k8stars.registry.service import ServiceOptions
from k8stars.registry.store import NOW, Store, StoreRefusedError, StoreValidationError
from k8stars.registry.store_validate import Startup, validate_startup

from .conftest import (
    MariaDBPool,
    PrestopReq,
    add_config,
    beat,
    count_statements,
    fetch,
    startup,
)
from .test_service_harness import eventually, replica, run

_n, _s, _a, _cf, _chg = (t_node_info.c, t_server_conf.c, t_adapter_conf.c, t_config_files.c,
                         t_k8stars_change.c)  # fmt: skip
TABLES = (t_node_info, t_server_conf, t_adapter_conf, t_config_files, t_k8stars_change)


# -- the reference: one onStartup as one transaction of row-by-row statements ------------------


def _upsert_row(conn: Connection, mysql: bool, table: Table, values: dict[str, Any],
                keys: list[str], update: list[str]) -> None:  # fmt: skip
    if mysql:
        my = mysql_dialect.insert(table).values(values)
        conn.execute(my.on_duplicate_key_update({c: my.inserted[c] for c in update}))
    else:
        lite = sqlite_dialect.insert(table).values(values)
        conn.execute(lite.on_conflict_do_update(index_elements=keys,
                                                set_={c: lite.excluded[c] for c in update}))


def reference_startup(conn: Connection, mysql: bool, reg: Startup) -> None:
    """What the store wrote for one onStartup before batching (K8STARS #14 pod identity)."""
    if reg.pod_uid:
        node = conn.execute(
            select(_n.pod_uid).where(_n.node_name == reg.node).with_for_update()
        ).first()
        node_uid = (node.pod_uid or "") if node is not None else ""
        dead = []
        for row in conn.execute(select(_s.application, _s.server_name, _s.pod_uid)
                                .where(_s.node_name == reg.node)):  # fmt: skip
            row_uid = row.pod_uid or ""
            if row_uid != reg.pod_uid and (row_uid or (node_uid and node_uid != reg.pod_uid)):
                dead.append((row.application, row.server_name, reg.node))
        for app, server, node_name in dead:
            conn.execute(delete(t_adapter_conf).where(
                _a.application == app, _a.server_name == server, _a.node_name == node_name))
            conn.execute(delete(t_server_conf).where(
                _s.application == app, _s.server_name == server, _s.node_name == node_name))
            conn.execute(delete(t_config_files).where(
                _cf.level == 3, _cf.host == node_name, _cf.server_name == f"{app}.{server}"))
        for app, server, node_name in sorted(set(dead)):
            conn.execute(insert(t_k8stars_change).values(
                application=app, server_name=server, node_name=node_name, changed_at=NOW))
    pod_name, pod_uid = reg.pod_name or None, reg.pod_uid or None
    node_update = ["last_reg_time", "last_heartbeat", "present_state", "modify_time"]
    if reg.pod_uid:
        node_update += ["pod_name", "pod_uid"]
    _upsert_row(conn, mysql, t_node_info, {
        "node_name": reg.node, "node_obj": f"tars.tarsnode.NodeObj@tcp -h {reg.node} -p 0",
        "endpoint_ip": reg.node, "endpoint_port": 0, "last_reg_time": NOW, "last_heartbeat": NOW,
        "setting_state": "active", "present_state": "active", "modify_time": NOW,
        "pod_name": pod_name, "pod_uid": pod_uid,
    }, ["node_name"], node_update)
    key = {"application": reg.application, "server_name": reg.server, "node_name": reg.node}
    server = {
        "registry_timestamp": NOW, "setting_state": "active", "present_state": reg.state,
        "patch_version": reg.version, "patch_time": NOW, "posttime": NOW,
        "server_type": "tars_cpp", "enable_set": reg.enable_set, "set_name": reg.set_name,
        "set_area": reg.set_area, "set_group": reg.set_group,
        "grid_flag": "NO_FLOW" if reg.disable_flow else "NORMAL",
        "flow_state": "inactive" if reg.disable_flow else "active",
        "pod_name": pod_name, "pod_uid": pod_uid,
    }
    _upsert_row(conn, mysql, t_server_conf, {**key, **server}, list(key), list(server))
    for adapter in reg.adapters:
        values = {
            "registry_timestamp": NOW, "servant": adapter.servant, "endpoint": adapter.endpoint,
            "protocol": adapter.protocol, "thread_num": adapter.thread_num,
            "max_connections": adapter.max_conns, "queuecap": adapter.queue_cap,
            "queuetimeout": adapter.queue_timeout, "posttime": NOW,
        }
        _upsert_row(conn, mysql, t_adapter_conf,
                    {**key, "adapter_name": adapter.adapter_name, **values},
                    [*key, "adapter_name"], list(values))
    stale = delete(t_adapter_conf).where(_a.application == reg.application,
                                         _a.server_name == reg.server, _a.node_name == reg.node)
    if reg.adapters:
        stale = stale.where(_a.adapter_name.not_in([a.adapter_name for a in reg.adapters]))
    conn.execute(stale)
    conn.execute(insert(t_k8stars_change).values(**key, changed_at=NOW))  # fmt: skip


def apply_reference(store: Store, reqs: list[Any]) -> None:
    for req in reqs:
        with store.engine.begin() as conn:
            reference_startup(conn, store.is_mysql, validate_startup(req))


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables onStartup writes, without ids; a timestamp reads as ``"<t>"``
    (set or not, not its value); the change log in id order."""
    def plain(value: Any) -> Any:
        return "<t>" if isinstance(value, datetime) else value

    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in TABLES[:-1]:
            cols = [c for c in table.c if c.name != "id"]
            rows = (tuple(plain(v) for v in row) for row in conn.execute(select(*cols)))
            out[table.name] = sorted(rows, key=repr)
        out["t_k8stars_change"] = [tuple(r) for r in conn.execute(
            select(_chg.application, _chg.server_name, _chg.node_name).order_by(_chg.id))]
    return out


# -- two databases of the same backend ----------------------------------------------------------


class Twins:
    """Two fresh databases (same backend) with a Store each, emptied by :meth:`reset`."""

    def __init__(self, stores: tuple[Store, Store]) -> None:
        self.stores = stores

    def reset(self) -> tuple[Store, Store]:
        for store in self.stores:
            with store.engine.begin() as conn:
                for table in TABLES:
                    conn.execute(delete(table))
        return self.stores


@pytest.fixture
def twins(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Twins]:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        stores = []
        for name in ("a", "b"):
            shutil.copyfile(template, tmp_path / f"{name}.sqlite")
            stores.append(Store(f"sqlite:///{tmp_path / name}.sqlite"))
        yield Twins((stores[0], stores[1]))
        for store in stores:
            store.close()
        return
    pool: MariaDBPool | None = request.getfixturevalue("mariadb_pool")
    if pool is None:
        pytest.skip("no MariaDB (set K8STARS_TEST_MYSQL_URL or make scripts/mariadb.sh work)")
    taken = [pool.take(), pool.take()]
    yield Twins((taken[0][1], taken[1][1]))
    for name, store in taken:
        store.close()
        pool.drop(name)


# -- property: a batch writes what one by one writes --------------------------------------------

NODES = ("10.0.0.1", "10.0.0.2", "node-a", "NODE-A")  # MySQL: the last two are one node
SERVERS = ("A", "B", "C")
UIDS = ("", "", "u1", "u2")  # "": an old client without pod identity
OBJS = ("X", "Y", "Z")


@st.composite
def startups(draw: st.DrawFn) -> Any:
    uid = draw(st.sampled_from(UIDS))
    kw: dict[str, Any] = {
        "State": draw(st.sampled_from(("", "active", "activating", "inactive"))),
        "disableFlow": draw(st.booleans()),
        "setID": draw(st.sampled_from(("", "sz.a.1"))),
        "Version": draw(st.sampled_from(("", "v1", "v2"))),
    }
    if uid:
        kw.update(podUid=uid, podName=draw(st.sampled_from(("", f"pod-{uid}"))))
    return startup(
        draw(st.sampled_from(NODES)),
        server=draw(st.sampled_from(SERVERS)),
        objs=tuple(draw(st.lists(st.sampled_from(OBJS), unique=True, max_size=3))),
        port=draw(st.sampled_from((10000, 20000))),
        **kw,
    )


def _seed_configs(store: Store) -> None:
    """Host-level configs (deleted with a dead pod's servers) and a server-level one (kept)."""
    for node in NODES[:3]:
        for server in SERVERS[:2]:
            add_config(store, f"App.{server}", node, 3)
    add_config(store, "App.A", "", 2)


def _cut(reqs: list[Any], cuts: list[int]) -> list[list[Any]]:
    batches, start = [], 0
    for size in cuts:
        if start >= len(reqs):
            break
        batches.append(reqs[start : start + size])
        start += size
    if start < len(reqs):
        batches.append(reqs[start:])
    return batches


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    before=st.lists(startups(), max_size=6),
    reqs=st.lists(startups(), min_size=1, max_size=14),
    cuts=st.lists(st.integers(1, 14), max_size=4),
)  # fmt: skip
def test_a_batch_writes_what_one_by_one_writes(
    twins: Twins, before: list[Any], reqs: list[Any], cuts: list[int]
) -> None:
    batched, one_by_one = twins.reset()
    for store in (batched, one_by_one):
        _seed_configs(store)
        apply_reference(store, before)
    assert dump(batched) == dump(one_by_one)
    for batch in _cut(reqs, cuts):
        assert batched.on_startup_batch(batch) == len(batch)
    apply_reference(one_by_one, reqs)
    assert dump(batched) == dump(one_by_one)


def fetch_servers(store: Store) -> list[tuple[str, str, str]]:
    return [(r["application"], r["server_name"], r["node_name"])
            for r in fetch(store, "SELECT * FROM t_server_conf")]  # fmt: skip


def test_dead_pods_new_nodes_and_shrinking_adapters_in_one_batch(twins: Twins) -> None:
    """The cases of the property test, each at least once, against the reference."""
    batched, one_by_one = twins.reset()
    before = [
        startup("10.0.1.1", server="A", objs=("X", "Y", "Z"), podUid="old"),
        startup("10.0.1.1", server="B", podUid="old"),
        startup("10.0.1.2", server="A", objs=("X", "Y")),  # an old client
        startup("10.0.1.3", server="A", objs=("X", "Y"), podUid="p3"),
    ]
    for store in (batched, one_by_one):
        add_config(store, "App.A", "10.0.1.1", 3)
        add_config(store, "App.B", "10.0.1.1", 3)
        apply_reference(store, before)
    reqs = [
        startup("10.0.1.1", server="A", objs=("X",), podUid="new"),  # same IP, new pod
        startup("10.0.1.2", server="A", objs=("Y",)),  # re-registration, adapters shrink
        startup("10.0.1.3", server="C", objs=(), podUid="p3"),  # the same pod, another server
        startup("10.0.1.4", server="A", objs=("X", "Y"), podUid="p4", State="activating"),
        startup("10.0.1.4", server="A", objs=("X",), podUid="p5"),  # a node twice in a batch
        startup("10.0.1.5", server="A", objs=("X", "Y"), disableFlow=True, setID="sz.a.1"),
        # a new node claimed by a pod, an old client's server beside it, then another pod:
        # both servers go (the node's owner as the batch left it, not as it began)
        startup("10.0.1.6", server="A", podUid="p6"),
        startup("10.0.1.6", server="B"),
        startup("10.0.1.6", server="C", podUid="p7"),
    ]
    batched.on_startup_batch(reqs)
    apply_reference(one_by_one, reqs)
    result = dump(batched)
    assert result == dump(one_by_one)
    servers = {(r[0], r[1], r[2]) for r in fetch_servers(batched)}
    assert ("App", "B", "10.0.1.1") not in servers  # the dead pod's other server went
    assert [x for x in servers if x[2] == "10.0.1.6"] == [("App", "C", "10.0.1.6")]
    assert not fetch(batched, "SELECT * FROM t_config_files WHERE host = '10.0.1.1'")


def test_a_batch_costs_a_handful_of_statements(store: Store) -> None:
    reqs = [startup(f"10.0.2.{i}", objs=("X", "Y"), podUid=f"u{i}") for i in range(200)]
    store.on_startup_batch(reqs[:100])
    with count_statements(store.engine) as counter:
        # re-registrations by new pods (dead rows replaced) and new nodes
        store.on_startup_batch([startup(f"10.0.2.{i}", objs=("X",), podUid=f"v{i}")
                                for i in range(50)] + reqs[100:])  # fmt: skip
    assert counter.count <= 12, counter.statements
    assert len(fetch(store, "SELECT id FROM t_server_conf")) == 200
    assert len(fetch(store, "SELECT id FROM t_adapter_conf")) == 350


def test_a_batch_is_validated_first_and_written_whole(store: Store) -> None:
    good = [startup(f"10.0.3.{i}") for i in range(5)]
    with pytest.raises(StoreValidationError, match="nodeName"):
        store.on_startup_batch([*good, startup(node="")])
    assert not fetch(store, "SELECT id FROM t_node_info")
    assert store.on_startup_batch([]) == 0
    # a request the database refuses: the batch is refused as a whole, nothing written
    with _refusing(store, "10.0.3.2"):
        with pytest.raises(StoreRefusedError, match="refused"):
            store.on_startup_batch(good)
        assert not fetch(store, "SELECT id FROM t_node_info")
        store.on_startup_batch(good[:2] + good[3:])
    assert len(fetch(store, "SELECT id FROM t_server_conf")) == 4


# -- the database refusing one row, for reasons of its own ---------------------------------------


class _refusing:
    """A constraint (MariaDB ``CHECK``) or trigger (SQLite ``RAISE(ABORT)``) refusing the
    server row of ``node``, until the block ends."""

    def __init__(self, store: Store, node: str) -> None:
        self.store, self.node = store, node

    def _exec(self, sql: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(text(sql))

    def __enter__(self) -> None:
        if self.store.is_mysql:
            self._exec("ALTER TABLE t_server_conf ADD CONSTRAINT k8stars_test_refuse "
                       f"CHECK (node_name <> '{self.node}')")  # fmt: skip
        else:
            self._exec("CREATE TRIGGER k8stars_test_refuse BEFORE INSERT ON t_server_conf "
                       f"WHEN NEW.node_name = '{self.node}' "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        if self.store.is_mysql:
            self._exec("ALTER TABLE t_server_conf DROP CONSTRAINT k8stars_test_refuse")
        else:
            self._exec("DROP TRIGGER k8stars_test_refuse")


# -- the service ---------------------------------------------------------------------------------

OPTIONS = ServiceOptions(retry_initial_s=0.1, retry_max_s=0.3, expire_interval_s=3600.0)


def _hosts(service: Any, servant: str) -> set[tuple[str, int]]:
    return {(e.host, e.port) for e in service.index.find_object_by_id(servant)}


def test_concurrent_startups_return_when_visible(db_url: str) -> None:
    async def scenario() -> None:
        async with replica(db_url, OPTIONS) as r:
            service = r.service
            seen_late: list[str] = []

            async def register(node: str, port: int, **kw: Any) -> None:
                await r.registry.onStartup(startup(node, objs=("Obj", "Admin"), port=port, **kw))
                # read-your-writes: the answers have it when the call returns
                if (node, port) not in _hosts(service, "App.Srv.Obj"):
                    seen_late.append(node)
                if kw.get("podUid") == "second" and (node, 10000) in _hosts(service,
                                                                            "App.Srv.Obj"):
                    seen_late.append(f"{node} (old pod)")

            nodes = [f"10.0.4.{i}" for i in range(150)]
            with count_statements(service.store.engine) as counter:
                await asyncio.gather(*(register(n, 10000, podUid="first") for n in nodes))
            assert seen_late == []
            assert _hosts(service, "App.Srv.Obj") == {(n, 10000) for n in nodes}
            logged = [s for s in counter.statements if "INTO T_K8STARS_CHANGE" in s.upper()]
            assert 1 <= len(logged) < len(nodes)  # runs, not one transaction per request
            # every pod replaced by a new one on the same IP (dead rows deleted), at once
            await asyncio.gather(*(register(n, 20000, podUid="second") for n in nodes))
            assert seen_late == []
            assert _hosts(service, "App.Srv.Obj") == {(n, 20000) for n in nodes}
            assert _hosts(service, "App.Srv.Admin") == {(n, 20001) for n in nodes}

    run(scenario())
    store = Store(db_url)
    try:
        assert len(fetch(store, "SELECT id FROM t_server_conf WHERE pod_uid = 'second'")) == 150
        assert len(fetch(store, "SELECT id FROM t_adapter_conf")) == 300
    finally:
        store.close()


class _Outage:
    """While ``down``, every statement of ``store`` fails -- except, on its write engine, those
    on t_node_info and t_server_conf alone, so that a registration fails in the middle of its
    transaction (the node lock and the first upserts done). MariaDB: the connection is killed
    from another session; SQLite: an I/O error."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.killer = (create_engine(store.url, poolclass=NullPool) if store.is_mysql
                       else None)  # fmt: skip
        self.engines = list({id(e): e for e in (store.engine, store.read_engine)}.values())
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._hook)

    def _hook(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self.down:
            return
        sql = statement.upper()
        if (conn.engine is self.store.engine and "T_ADAPTER_CONF" not in sql
                and ("T_NODE_INFO" in sql or "T_SERVER_CONF" in sql)):  # fmt: skip
            return
        if self.killer is None:
            raise sqlite3.OperationalError("disk I/O error (injected by the test)")
        thread_id = conn.connection.dbapi_connection.thread_id()
        with self.killer.connect() as other:
            other.execute(text(f"KILL CONNECTION {int(thread_id)}"))

    def close(self) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._hook)
        if self.killer is not None:
            self.killer.dispose()


def test_an_outage_in_the_middle_of_a_run_keeps_it_queued(db_url: str) -> None:
    new = [f"10.0.5.{i}" for i in range(40)]
    z, old = new[3], "10.0.5.200"
    checker = Store(db_url)

    async def scenario() -> None:
        async with replica(db_url, OPTIONS) as r:
            service = r.service
            assert await service.on_startup(startup(old, podUid="old"))
            outage = _Outage(service.store)
            try:
                outage.down = True
                results = await asyncio.gather(
                    *(service.on_startup(startup(n, podUid=f"p-{n[7:]}")) for n in new),
                    service.on_startup(startup(old, objs=("Other",), podUid="new")),
                )
                assert results == [False] * (len(new) + 1)  # queued: the database is down
                # then, on a node of that run: a removal and a new registration, in this order
                assert not await service.on_prestop(PrestopReq(nodeName=z, application="App",
                                                               server="Srv"))  # fmt: skip
                assert not await service.on_startup(startup(z, objs=("Late",), podUid="z2"))
                status = service.status()
                assert status.degraded and status.pending_requests == len(new) + 3
                # shown meanwhile through overlays
                assert _hosts(service, "App.Srv.Obj") == {(n, 10000) for n in new if n != z}
                assert _hosts(service, "App.Srv.Late") == {(z, 10000)}
                assert _hosts(service, "App.Srv.Other") == {(old, 10000)}
                # the run was rolled back as a whole: none of it is in the database
                rows = fetch(checker, "SELECT node_name FROM t_node_info")
                assert [x["node_name"] for x in rows] == [old]
                assert len(fetch(checker, "SELECT id FROM t_k8stars_change")) == 1
                outage.down = False

                async def drained() -> bool:
                    status = service.status()
                    return not status.degraded and status.pending_requests == 0

                await eventually(drained, timeout=20.0, interval=0.05)
                await service.refresh()
            finally:
                outage.close()
            assert _hosts(service, "App.Srv.Obj") == {(n, 10000) for n in new if n != z}
            assert _hosts(service, "App.Srv.Late") == {(z, 10000)}
            assert _hosts(service, "App.Srv.Other") == {(old, 10000)}

    try:
        run(scenario())
        servers = {x["node_name"]: x["pod_uid"] for x in fetch(
            checker, "SELECT node_name, pod_uid FROM t_server_conf")}  # fmt: skip
        assert servers == {**{n: f"p-{n[7:]}" for n in new}, z: "z2", old: "new"}
        adapters = fetch(checker, "SELECT servant FROM t_adapter_conf WHERE node_name = :n", n=z)
        assert [a["servant"] for a in adapters] == ["App.Srv.Late"]
    finally:
        checker.close()


def test_a_refused_request_does_not_hold_back_its_run(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    nodes = [f"10.0.6.{i}" for i in range(30)]
    bad = nodes[13]

    async def scenario() -> None:
        async with replica(db_url, OPTIONS) as r:
            service = r.service
            refusal = _refusing(service.store, bad)
            refusal.__enter__()
            try:
                with caplog.at_level(logging.WARNING, "k8stars.registry.service"):
                    results = await asyncio.gather(*(service.on_startup(startup(n))
                                                     for n in nodes))  # fmt: skip
                assert "writing them one by one" in caplog.text
                assert results == [n != bad for n in nodes]
                assert _hosts(service, "App.Srv.Obj") == {(n, 10000) for n in nodes}
                rows = fetch(service.store, "SELECT node_name FROM t_server_conf")
                assert sorted(x["node_name"] for x in rows) == sorted(set(nodes) - {bad})
                assert service.status().pending_requests == 1  # kept, retried
            finally:
                refusal.__exit__()

            async def written() -> bool:
                return service.status().pending_requests == 0

            await eventually(written, timeout=20.0, interval=0.05)
            await service.refresh()
            assert _hosts(service, "App.Srv.Obj") == {(n, 10000) for n in nodes}
            assert len(fetch(service.store, "SELECT id FROM t_server_conf")) == len(nodes)

    run(scenario())


def test_runs_keep_per_node_order_with_prestops_and_heartbeats(db_url: str) -> None:
    """A run of onStartups stops at other requests and at heartbeats: a node's registration
    is never reordered with its own removal or heartbeat."""
    n1, n2, n3 = "10.0.7.1", "10.0.7.2", "10.0.7.3"

    async def scenario() -> None:
        async with replica(db_url, OPTIONS) as r:
            service = r.service
            await service.on_startup(startup(n1))
            tasks: list[asyncio.Future[bool]] = []

            async def submit(coro: Coroutine[Any, Any, bool]) -> None:
                tasks.append(asyncio.ensure_future(coro))
                await asyncio.sleep(0)  # in the journal now

            await submit(service.on_startup(startup(n2, State="activating")))
            await submit(service.on_prestop(PrestopReq(nodeName=n1, application="App",
                                                       server="Srv")))  # fmt: skip
            await submit(service.on_startup(startup(n1, objs=("Again",))))
            assert service.keep_alive(beat(n2, "inactive", "App", "Srv")) is None  # queued
            await submit(service.on_startup(startup(n3)))
            assert all(await asyncio.gather(*tasks))
            await service.refresh()
            assert _hosts(service, "App.Srv.Again") == {(n1, 10000)}
            assert _hosts(service, "App.Srv.Obj") == {(n3, 10000)}
            assert service.index.find_object_by_id_4_any("App.Srv.Obj")[2][0].host == n2

    run(scenario())
