"""Reads for the index: snapshot contents, and replicas seeing each other's writes by polling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from k8stars.registry.model import GroupPriority, GroupRule, InstanceRow
from k8stars.registry.schema import (
    t_adapter_conf,
    t_group_priority,
    t_k8stars_change,
    t_server_conf,
    t_server_group_rule,
)
from k8stars.registry.store import Store

from .conftest import PrestopReq, age_heartbeat, beat, count_statements, startup


def _by_node(rows: tuple[InstanceRow, ...]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r.node_name, []).append((r.servant, r.present_state))
    return out


def test_snapshot_contents(store: Store) -> None:
    store.on_startup(startup(server="A", objs=("X", "Y"), setID="sz.a.1"))
    store.on_startup(startup(node="10.0.0.2", server="A", objs=("X", "Y"), disableFlow=True))
    store.on_startup(startup(server="B", objs=()))  # no adapters: a state row only
    store.upsert_registry_info(
        "r1:17890", "tars.tarsregistry.QueryObj", "tcp -h 10.9.0.1 -p 17890", "3.0.1"
    )
    with store.engine.begin() as conn:
        conn.execute(
            insert(t_server_group_rule),
            [
                {"group_name": "g-sz", "allow_ip_rule": "10.0.0.*|10.1.0.1"},
                {"group_name": "g-sh", "allow_ip_rule": "10.2.0.*"},
            ],
        )
        conn.execute(
            insert(t_group_priority),
            [
                {"name": "p2", "group_list": "2|1", "list_order": 2, "station": "sh"},
                {"name": "p1", "group_list": "1", "list_order": 1, "station": "sz"},
            ],
        )

    snapshot, mark = store.load_snapshot()
    instances = snapshot.instances
    assert [(i.application, i.server_name, i.node_name, i.servant) for i in instances] == [
        ("App", "A", "10.0.0.1", "App.A.X"),
        ("App", "A", "10.0.0.1", "App.A.Y"),
        ("App", "A", "10.0.0.2", "App.A.X"),
        ("App", "A", "10.0.0.2", "App.A.Y"),
        ("App", "B", "10.0.0.1", ""),
        ("3.0.1", "3.0.1", "3.0.1", "tars.tarsregistry.QueryObj"),
    ]
    first = instances[0]
    assert first == InstanceRow(
        application="App",
        server_name="A",
        node_name="10.0.0.1",
        servant="App.A.X",
        endpoint="tcp -h 10.0.0.1 -p 10000 -t 60000",
        enable_set="Y",
        set_name="sz",
        set_area="a",
        set_group="1",
    )
    assert instances[2].flow_state == "inactive" and instances[2].grid_flag == "NO_FLOW"
    assert instances[4].endpoint == "" and instances[4].present_state == "active"
    registry = instances[5]
    assert (registry.endpoint, registry.setting_state, registry.flow_state) == (
        "tcp -h 10.9.0.1 -p 17890",
        "active",
        "active",
    )
    assert snapshot.group_rules == (
        GroupRule(1, "g-sz", "10.0.0.*|10.1.0.1"),
        GroupRule(2, "g-sh", "10.2.0.*"),
    )
    assert snapshot.group_priorities == (
        GroupPriority(2, "1", 1, "sz"),
        GroupPriority(1, "2|1", 2, "sh"),
    )
    assert mark.group_rules == snapshot.group_rules


def test_replicas_see_inserts_updates_and_deletions_within_one_poll(
    make_store: Callable[..., Store],
) -> None:
    writer, reader = make_store(), make_store()
    _, mark = reader.load_snapshot()
    key = ("App", "Srv")

    writer.on_startup(startup(State="activating"))
    changed, deleted, mark = reader.load_changes(mark)
    assert list(changed) == [key] and not deleted
    assert _by_node(changed[key]) == {"10.0.0.1": [("App.Srv.Obj", "activating")]}

    assert reader.load_changes(mark)[:2] == ({}, frozenset())  # nothing new (digest unchanged)

    writer.keep_alive_batch([beat(app="App", server="Srv")])
    changed, deleted, mark = reader.load_changes(mark)
    assert _by_node(changed[key]) == {"10.0.0.1": [("App.Srv.Obj", "active")]}

    writer.on_startup(startup(node="10.0.0.2"))
    changed, deleted, mark = reader.load_changes(mark)
    assert sorted(_by_node(changed[key])) == ["10.0.0.1", "10.0.0.2"]

    writer.on_prestop(PrestopReq(nodeName="10.0.0.1", application="App", server="Srv"))
    changed, deleted, mark = reader.load_changes(mark)
    assert sorted(_by_node(changed[key])) == ["10.0.0.2"] and not deleted

    writer.on_startup(startup(node="10.0.0.2", server="Other", podUid="old"))
    writer.on_prestop(PrestopReq(nodeName="10.0.0.2", application="App", server="Srv"))
    changed, deleted, mark = reader.load_changes(mark)
    assert list(changed) == [("App", "Other")] and deleted == {key}

    # pod replacement on an IP, expiry: deletions by other code paths
    writer.on_startup(startup(node="10.0.0.2", server="Third", podUid="new"))
    changed, deleted, mark = reader.load_changes(mark)
    assert list(changed) == [("App", "Third")] and deleted == {("App", "Other")}
    age_heartbeat(writer, "10.0.0.2", 2 * 86400)
    writer.expire()
    changed, deleted, mark = reader.load_changes(mark)
    assert changed == {} and deleted == {("App", "Third")}

    # the registry's own rows
    writer.upsert_registry_info(
        "r:1", "tars.tarsregistry.QueryObj", "tcp -h 1.2.3.4 -p 17890", "v9"
    )
    changed, deleted, mark = reader.load_changes(mark)
    assert list(changed) == [("v9", "v9")]

    # the replicas agree with a fresh snapshot
    snapshot, _ = writer.load_snapshot()
    assert set(snapshot.instances) == {r for rows in changed.values() for r in rows}


def test_an_idle_poll_is_a_few_small_statements(make_store: Callable[..., Store]) -> None:
    store = make_store(check_interval_s=3600.0)  # no timing in this test
    now = store.db_now()
    with store.engine.begin() as conn:  # 1,000 servers with one adapter each
        conn.execute(
            insert(t_server_conf),
            [
                {
                    "application": "App",
                    "server_name": f"S{i}",
                    "node_name": f"10.3.{i // 250}.{i % 250}",
                    "setting_state": "active",
                    "present_state": "active",
                    "registry_timestamp": now,
                }
                for i in range(1000)
            ],
        )
        conn.execute(
            insert(t_adapter_conf),
            [
                {
                    "application": "App",
                    "server_name": f"S{i}",
                    "node_name": f"10.3.{i // 250}.{i % 250}",
                    "adapter_name": f"App.S{i}.ObjAdapter",
                    "servant": f"App.S{i}.Obj",
                    "endpoint": f"tcp -h 10.3.{i // 250}.{i % 250} -p 1",
                    "registry_timestamp": now,
                }
                for i in range(1000)
            ],
        )
    snapshot, mark = store.load_snapshot()
    assert len(snapshot.instances) == 1000
    # make the rows older than the overlap window, as in a quiet steady state
    old = now.replace(year=now.year - 1)
    with store.engine.begin() as conn:
        conn.execute(update(t_server_conf).values(registry_timestamp=old))
        conn.execute(update(t_adapter_conf).values(registry_timestamp=old))
    _, _, mark = store.load_changes(store.load_snapshot()[1])
    with count_statements(store.read_engine) as counter:
        changed, deleted, mark = store.load_changes(mark)
    assert (changed, deleted) == ({}, frozenset())
    assert counter.count == 5, counter.statements
    # a keepAlive state change is not in the change log: the window checksum differs, the
    # window is listed, and that server reloaded (rows and adapters) only
    store.keep_alive_batch([beat("10.3.0.7", "inactive", "App", "S7")])
    with count_statements(store.read_engine) as counter:
        changed, deleted, mark = store.load_changes(mark)
    assert list(changed) == [("App", "S7")] and counter.count == 8, counter.statements
    # after an onStartup through this store (in the change log) the poll is light: the change
    # log and what it names
    store.on_startup(startup(node="10.3.0.8", server="S8"))
    with count_statements(store.read_engine) as counter:
        changed, deleted, mark = store.load_changes(mark)
    assert list(changed) == [("App", "S8")] and counter.count == 3, counter.statements
    assert _by_node(changed[("App", "S8")]) == {"10.3.0.8": [("App.S8.Obj", "active")]}
    # with no write of its own since, the next poll is a full check again
    with count_statements(store.read_engine) as counter:
        assert store.load_changes(mark)[:2] == ({}, frozenset())
    assert counter.count == 5


def test_writes_by_others_without_the_change_log(make_store: Callable[..., Store]) -> None:
    """TarsWeb or SQL by hand: updates via registry_timestamp, deletions via the row counts."""
    writer, reader = make_store(), make_store()
    writer.on_startup(startup(server="A", objs=("X", "Y")))
    writer.on_startup(startup(server="B"))
    _, mark = reader.load_snapshot()
    foreign = writer.engine
    with foreign.begin() as conn:  # like TarsWeb: MySQL's ON UPDATE bumps the timestamp
        values: dict[str, Any] = {"present_state": "inactive"}
        if not writer.is_mysql:
            values["registry_timestamp"] = func.current_timestamp()
        conn.execute(
            update(t_server_conf).where(t_server_conf.c.server_name == "B").values(**values)
        )
    changed, deleted, mark = reader.load_changes(mark)
    assert _by_node(changed[("App", "B")]) == {"10.0.0.1": [("App.B.Obj", "inactive")]}

    with foreign.begin() as conn:
        conn.execute(delete(t_adapter_conf).where(t_adapter_conf.c.servant == "App.A.Y"))
    changed, deleted, mark = reader.load_changes(mark)
    assert _by_node(changed[("App", "A")]) == {"10.0.0.1": [("App.A.X", "active")]}

    with foreign.begin() as conn:
        conn.execute(delete(t_adapter_conf).where(t_adapter_conf.c.server_name == "B"))
        conn.execute(delete(t_server_conf).where(t_server_conf.c.server_name == "B"))
    changed, deleted, mark = reader.load_changes(mark)
    assert changed == {} and deleted == {("App", "B")}


def test_periodic_full_resync(make_store: Callable[..., Store]) -> None:
    writer, reader = make_store(), make_store(full_resync_s=0)
    writer.on_startup(startup(server="A"))
    _, mark = reader.load_snapshot()
    writer.on_startup(startup(server="B"))
    writer.on_prestop(PrestopReq(nodeName="10.0.0.1", application="App", server="A"))
    changed, deleted, mark = reader.load_changes(mark)
    assert list(changed) == [("App", "B")] and deleted == {("App", "A")}
    assert reader.load_changes(mark)[:2] == ({}, frozenset())


def test_group_tables_travel_with_the_watermark(make_store: Callable[..., Store]) -> None:
    writer, reader = make_store(), make_store()
    _, mark = reader.load_snapshot()
    with writer.engine.begin() as conn:
        conn.execute(insert(t_server_group_rule).values(group_name="g", allow_ip_rule="10.*"))
    _, _, mark = reader.load_changes(mark)
    assert [r.group_name for r in mark.group_rules] == ["g"]


def test_two_changes_within_one_second_are_told_apart(make_store: Callable[..., Store]) -> None:
    """Timestamps have 1-second resolution: the rows' checksums tell a second change apart."""
    writer, reader = make_store(), make_store()
    writer.on_startup(startup())
    _, mark = reader.load_snapshot()
    writer.keep_alive_batch([beat(app="App", server="Srv", state="inactive")])
    with writer.engine.connect() as conn:
        stamp = conn.execute(select(t_server_conf.c.registry_timestamp)).scalar_one()
    changed, _, mark = reader.load_changes(mark)
    assert _by_node(changed[("App", "Srv")]) == {"10.0.0.1": [("App.Srv.Obj", "inactive")]}
    writer.keep_alive_batch([beat(app="App", server="Srv", state="active")])
    with writer.engine.begin() as conn:  # as if in the same second as the first change
        conn.execute(update(t_server_conf).values(registry_timestamp=stamp))
    changed, _, mark = reader.load_changes(mark)
    assert _by_node(changed[("App", "Srv")]) == {"10.0.0.1": [("App.Srv.Obj", "active")]}


def test_an_outdated_watermark_still_gives_a_correct_diff(make_store: Callable[..., Store]
                                                          ) -> None:  # fmt: skip
    writer, reader = make_store(), make_store()
    writer.on_startup(startup(server="A"))
    _, first = reader.load_snapshot()
    writer.on_startup(startup(server="B"))
    changed, _, _ = reader.load_changes(first)
    assert list(changed) == [("App", "B")]
    writer.on_startup(startup(server="C"))
    writer.on_prestop(PrestopReq(nodeName="10.0.0.1", application="App", server="A"))
    changed, deleted, mark = reader.load_changes(first)  # again from the first watermark
    assert sorted(changed) == [("App", "B"), ("App", "C")] and deleted == {("App", "A")}
    assert reader.load_changes(mark)[:2] == ({}, frozenset())


def test_light_polls_after_own_logged_writes(make_store: Callable[..., Store]) -> None:
    """Right after its own onStartup a store reads the change log only; what others wrote
    without it shows at the next full check (the first poll without own writes, or
    check_interval_s after the last one)."""
    other, store = make_store(), make_store(check_interval_s=3600.0)
    other.on_startup(startup(server="A"))
    _, mark = store.load_snapshot()
    other.keep_alive_batch([beat(app="App", server="A", state="inactive")])  # no change log
    store.on_startup(startup(server="B"))
    changed, _, mark = store.load_changes(mark)
    assert list(changed) == [("App", "B")]
    changed, _, mark = store.load_changes(mark)
    assert _by_node(changed[("App", "A")]) == {"10.0.0.1": [("App.A.Obj", "inactive")]}
    other.on_startup(startup(server="C"))  # another replica's logged write: in any poll
    store.on_startup(startup(server="D"))
    changed, _, mark = store.load_changes(mark)
    assert sorted(changed) == [("App", "C"), ("App", "D")]
    store.keep_alive_batch([beat(app="App", server="D", state="inactive")])
    store.on_startup(startup(server="E"))  # not light: own write outside the change log
    changed, _, mark = store.load_changes(mark)
    assert sorted(changed) == [("App", "D"), ("App", "E")]


def test_a_late_commit_is_found_through_the_change_log_holes(
    make_store: Callable[..., Store],
) -> None:
    """A transaction that got its change-log id before another one but commits after it (and
    whose rows' timestamps are older than the window) is still seen."""
    writer, reader = make_store(), make_store()
    if not writer.is_mysql:
        pytest.skip("SQLite serializes writers: ids are committed in order")
    writer.on_startup(startup(server="A"))
    writer.on_startup(startup(server="B"))
    old = reader.db_now().replace(year=2000)
    with writer.engine.begin() as conn:  # out of the window: only the change log can tell
        conn.execute(update(t_server_conf).values(registry_timestamp=old))
        conn.execute(update(t_adapter_conf).values(registry_timestamp=old))
    _, mark = reader.load_snapshot()
    late = writer.engine.connect()
    try:
        trans = late.begin()
        late.execute(
            update(t_server_conf)
            .where(t_server_conf.c.server_name == "A")
            .values(present_state="inactive", registry_timestamp=old)
        )
        late.execute(insert(t_k8stars_change).values(application="App", server_name="A",
                                                     node_name="10.0.0.1"))  # fmt: skip
        writer.on_startup(startup(server="C"))  # a later id, committed first
        changed, _, mark = reader.load_changes(mark)
        assert list(changed) == [("App", "C")]
        trans.commit()
    finally:
        late.close()
    changed, _, mark = reader.load_changes(mark)
    assert _by_node(changed[("App", "A")]) == {"10.0.0.1": [("App.A.Obj", "inactive")]}
