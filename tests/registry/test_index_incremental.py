"""Property: any sequence of incremental updates gives the same answers as a full rebuild."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from k8stars.registry.index import InstanceKey, RegistryIndex, ServerKey
from k8stars.registry.model import GroupPriority, GroupRule, InstanceRow, RegistrySnapshot

APPS, SERVERS = ["A", "B"], ["S1", "S2"]
NODES = ["10.0.0.1", "10.0.0.2", "10.0.1.3", "node-4"]
SERVANTS = ["A.S1.Obj", "Shared.Obj", "Other.Obj"]
HOSTS = ["10.0.0.1", "10.0.0.9", "10.0.1.3", "node-4", "", "192.168.0.1"]
SET_IDS = ["s.a.1", "s.a.*", "s.a.2", "s.b.1", "t.a.1", "s.a", "*.a.1"]
STATIONS = ["st1", "st2", "none"]

endpoints = st.one_of(
    st.builds("tcp -h {} -p {} -t 3000".format, st.sampled_from(NODES), st.integers(1, 3)),
    st.sampled_from(["udp -h 10.0.0.5 -p 7", "tcp -p 1", "bogus", ""]),
)

rows = st.builds(
    InstanceRow,
    application=st.sampled_from(APPS),
    server_name=st.sampled_from(SERVERS),
    node_name=st.sampled_from(NODES),
    servant=st.sampled_from([*SERVANTS, ""]),
    endpoint=endpoints,
    setting_state=st.sampled_from(["active", "inactive"]),
    present_state=st.sampled_from(["active", "active", "inactive", "activating", "destroyed"]),
    flow_state=st.sampled_from(["active", "inactive"]),
    enable_group=st.sampled_from(["Y", "N", "y"]),
    enable_set=st.sampled_from(["Y", "N"]),
    set_name=st.sampled_from(["", "s", "t", "*"]),
    set_area=st.sampled_from(["", "a", "b", "*"]),
    set_group=st.sampled_from(["", "1", "2", "*"]),
    ip_group_name=st.sampled_from(["", "g1", "gx"]),
    bak_flag=st.sampled_from([0, 0, 1, 2]),
    grid_flag=st.sampled_from(["NORMAL", "NORMAL", "NO_FLOW"]),
)

rules = st.lists(st.builds(
    lambda gid, ips: GroupRule(gid, f"g{gid}", "|".join(ips)),
    st.integers(1, 3),
    st.lists(st.sampled_from(["10.0.0.1", "10.0.0.*", "10.0.1.*", "node-4"]), max_size=3),
), max_size=3)

priorities = st.lists(st.builds(
    lambda pid, groups, order, station: GroupPriority(pid, "|".join(groups), order, station),
    st.integers(1, 9),
    st.lists(st.sampled_from(["1", "2", "3", "-1"]), max_size=3),
    st.integers(0, 3),
    st.sampled_from(["st1", "st2"]),
), max_size=3)

snapshots = st.builds(
    lambda r, g, p: RegistrySnapshot(tuple(r), tuple(g), tuple(p)),
    st.lists(rows, max_size=12), rules, priorities)


@st.composite
def changes(draw: st.DrawFn) -> tuple[dict[ServerKey, list[InstanceRow]], set[InstanceKey],
                                       dict[str, Any]]:
    changed: dict[ServerKey, list[InstanceRow]] = {}
    for key in draw(st.lists(st.tuples(st.sampled_from(APPS), st.sampled_from(SERVERS)),
                             max_size=2)):
        changed[key] = [dataclasses.replace(r, application=key[0], server_name=key[1])
                        for r in draw(st.lists(rows, max_size=4))]
    deleted = draw(st.sets(st.tuples(st.sampled_from(APPS), st.sampled_from(SERVERS),
                                     st.sampled_from(NODES)), max_size=2))
    groups: dict[str, Any] = {}
    if draw(st.booleans()):
        groups["group_rules"] = draw(rules)
    if draw(st.booleans()):
        groups["group_priorities"] = draw(priorities)
    return changed, deleted, groups


def answers(idx: RegistryIndex) -> list[object]:
    out: list[object] = [idx.servants(), idx.instances_by_state(), idx.bad_rows, idx.snapshot()]
    for servant in [*SERVANTS, "Unknown.Obj"]:
        out += [idx.find_object_by_id(servant), idx.find_object_by_id_4_any(servant),
                idx.encoded_by_id(servant), idx.encoded_4_any(servant)]
        for host in HOSTS:
            out += [idx.find_object_by_id_in_same_group(servant, host),
                    idx.find_object_by_id_4_all(servant, host),
                    idx.encoded_same_group(servant, host)]
            for set_id in SET_IDS:
                out += [idx.find_object_by_id_in_same_set(servant, set_id, host),
                        idx.encoded_same_set(servant, set_id, host)]
        for station in STATIONS:
            out += [idx.find_object_by_id_in_same_station(servant, station),
                    idx.encoded_same_station(servant, station)]
    return out


def apply_to_model(model: dict[ServerKey, list[InstanceRow]], changed: dict[ServerKey,
                   list[InstanceRow]], deleted: set[InstanceKey]) -> None:
    for app, server, node in deleted:
        model[app, server] = [r for r in model.get((app, server), []) if r.node_name != node]
    model.update(changed)


@settings(max_examples=60, deadline=None)
@given(snapshots, st.lists(changes(), min_size=1, max_size=3))
def test_incremental_updates_equal_a_full_rebuild(
        snapshot: RegistrySnapshot,
        batches: list[tuple[dict[ServerKey, list[InstanceRow]], set[InstanceKey],
                            dict[str, Any]]]) -> None:
    idx = RegistryIndex(snapshot)
    answers(idx)  # fill the memo tables, so that stale memos would show
    model: dict[ServerKey, list[InstanceRow]] = {}
    for r in snapshot.instances:
        model.setdefault((r.application, r.server_name), []).append(r)
    group_rules, group_priorities = snapshot.group_rules, snapshot.group_priorities
    for changed, deleted, groups in batches:
        idx.apply_changes(changed, deleted, **groups)
        apply_to_model(model, changed, deleted)
        group_rules = tuple(groups.get("group_rules", group_rules))
        group_priorities = tuple(groups.get("group_priorities", group_priorities))
        expected = RegistrySnapshot(tuple(r for key in sorted(model) for r in model[key]),
                                    group_rules, group_priorities)
        assert answers(idx) == answers(RegistryIndex(expected))
    rebuilt = RegistryIndex()
    rebuilt.replace_all(snapshot)
    rebuilt.replace_all(idx.snapshot())  # a full reload on top of an older state
    assert answers(rebuilt) == answers(idx)
