"""The name-service query index (reference §5.1, §5.4): rows → EndpointF, every QueryF method."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from k8stars.registry.index import RegistryIndex, client_host, is_routable
from k8stars.registry.index_groups import GroupTable
from k8stars.registry.model import GroupPriority, GroupRule, InstanceRow, RegistrySnapshot
from k8stars.tars.idl.loader import framework

QUERY = framework().interface("tars.QueryF").methods
OBJ = "App.Srv.Obj"


def row(host: str = "10.0.0.1", port: int = 10000, *, servant: str = OBJ, app: str = "App",
        server: str = "Srv", node: str | None = None, options: str = "-t 3000",
        **kw: Any) -> InstanceRow:
    return InstanceRow(application=app, server_name=server,
                       node_name=host if node is None else node, servant=servant,
                       endpoint=f"tcp -h {host} -p {port} {options}", **kw)


def index(*rows: InstanceRow, rules: Sequence[GroupRule] = (),
          prios: Sequence[GroupPriority] = ()) -> RegistryIndex:
    return RegistryIndex(RegistrySnapshot(tuple(rows), tuple(rules), tuple(prios)))


def found(idx: RegistryIndex, servant: str = OBJ) -> list[Any]:
    """``findObjectById`` with attribute access left untyped (EndpointF is built at run time)."""
    return idx.find_object_by_id(servant)


def eps(endpoints: Sequence[Any]) -> list[str]:
    return [f"{e.host}:{e.port}" for e in endpoints]


def group_answer(idx: RegistryIndex, client: str, servant: str = OBJ
                 ) -> tuple[list[str], list[str]]:
    ret, active, inactive = idx.find_object_by_id_in_same_group(servant, client)
    assert ret == 0
    return eps(active), eps(inactive)


def set_answer(idx: RegistryIndex, set_id: str, client: str = "1.1.1.1", servant: str = OBJ
               ) -> tuple[int, list[str], list[str]]:
    ret, active, inactive = idx.find_object_by_id_in_same_set(servant, set_id, client)
    return ret, eps(active), eps(inactive)


# ------------------------------------------------------------------ EndpointF from rows (§5.1)


def test_endpointf_fields_follow_the_row_and_the_endpoint_string() -> None:
    r = row("10.0.0.1", 9000, options="-t 60000 -w 30 -v 1 -e 1 -g 7 -q 2 -s x.y.z",
            node=" node-1 ", enable_group="y", enable_set="Y", set_name="sz", set_area="a",
            set_group="1", bak_flag=2)
    idx = index(r, rules=[GroupRule(4, "g4", "10.0.0.*")])
    (ep,) = found(idx)
    assert (ep.host, ep.port, ep.timeout, ep.istcp, ep.weight, ep.weightType, ep.authType) == (
        "10.0.0.1", 9000, 60000, 1, 30, 1, 1)
    assert (ep.grid, ep.qos, ep.groupworkid, ep.grouprealid) == (0, 0, 4, 4)
    assert (ep.setId, ep.bakFlag, ep.nodeName) == ("sz.a.1", 2, "node-1")


@pytest.mark.parametrize(("proto", "istcp"), [("udp", 0), ("tcp", 1), ("ssl", 2)])
def test_istcp(proto: str, istcp: int) -> None:
    idx = index(dataclasses.replace(row(), endpoint=f"{proto} -h 10.0.0.1 -p 1"))
    assert found(idx)[0].istcp == istcp


def test_defaults_without_group_or_set() -> None:
    idx = index(row(options="", set_name="s", set_area="a", set_group="1"))
    (ep,) = found(idx)
    assert (ep.timeout, ep.weight, ep.weightType, ep.groupworkid, ep.grouprealid, ep.setId) == (
        3000, -1, 0, -1, -1, "")


def test_grouprealid_from_ip_group_name_and_workid_only_when_enabled() -> None:
    rules = [GroupRule(1, "east", "10.0.0.1"), GroupRule(2, "west", "10.9.9.*")]
    idx = index(row("10.0.0.1", ip_group_name="west"), row("10.0.0.2", ip_group_name="nope"),
                row("10.9.9.9", enable_group="Y"), row("10.0.0.1", 2), rules=rules)
    got = {(e.host, e.port): (e.grouprealid, e.groupworkid) for e in found(idx)}
    assert got == {("10.0.0.1", 10000): (2, -1), ("10.0.0.2", 10000): (-1, -1),
                   ("10.9.9.9", 10000): (2, 2), ("10.0.0.1", 2): (1, -1)}


# ------------------------------------------------------------- active / inactive / skipped rows


@pytest.mark.parametrize("change", [
    {"setting_state": "inactive"},
    {"present_state": "inactive"},
    {"present_state": "activating"},
    {"present_state": "deactivating"},
    {"present_state": "destroyed"},
    {"flow_state": "inactive"},
    {"grid_flag": "NO_FLOW"},
    {"grid_flag": "no_flow"},
])
def test_not_routable_rows_go_to_the_inactive_list(change: dict[str, Any]) -> None:
    bad = dataclasses.replace(row("10.0.0.2"), **change)
    assert not is_routable(bad)
    idx = index(row("10.0.0.1"), bad)
    assert eps(idx.find_object_by_id(OBJ)) == ["10.0.0.1:10000"]
    ret, active, inactive = idx.find_object_by_id_4_any(OBJ)
    assert (ret, eps(active), eps(inactive)) == (0, ["10.0.0.1:10000"], ["10.0.0.2:10000"])


def test_state_values_are_case_insensitive() -> None:
    idx = index(row(setting_state="Active", present_state="ACTIVE", flow_state="Active"))
    assert len(idx.find_object_by_id(OBJ)) == 1


def test_backup_rows_are_dropped_other_bak_flags_kept() -> None:
    idx = index(row("10.0.0.1", bak_flag=1), row("10.0.0.2", bak_flag=2),
                row("10.0.0.3", bak_flag=1, present_state="inactive"))
    assert eps(idx.find_object_by_id(OBJ)) == ["10.0.0.2:10000"]
    assert idx.find_object_by_id_4_any(OBJ)[2] == []
    assert idx.bad_rows == 0


def test_server_without_adapters_only_counts_as_an_instance() -> None:
    bare = InstanceRow("App", "Bare", "10.0.0.9", "", "", present_state="inactive")
    idx = index(row(), bare)
    assert idx.servants() == [OBJ]
    assert idx.instances_by_state() == {"active": 1, "inactive": 1}
    assert idx.bad_rows == 0


def test_bad_endpoints_are_skipped_counted_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    bad = [dataclasses.replace(row("10.0.0.2"), endpoint="tcp -p 1"),  # no host
           dataclasses.replace(row("10.0.0.3"), endpoint="bogus -h 10.0.0.3 -p 1"),
           dataclasses.replace(row("10.0.0.4"), endpoint=""),
           dataclasses.replace(row("10.0.0.5"), servant="")]  # endpoint without servant
    snapshot = RegistrySnapshot((row(), *bad))
    with caplog.at_level(logging.WARNING, logger="k8stars.registry.index"):
        idx = RegistryIndex(snapshot)
        idx.replace_all(dataclasses.replace(snapshot, group_rules=(GroupRule(1, "g", "x"),)))
        idx.apply_changes({("App", "Srv"): [row(), *bad]})
    assert eps(idx.find_object_by_id(OBJ)) == ["10.0.0.1:10000"]
    assert idx.bad_rows == 4
    assert len(caplog.records) == 4
    idx.apply_changes({("App", "Srv"): [row(), bad[0]]})
    assert idx.bad_rows == 1
    idx.apply_changes({("App", "Srv"): []})
    assert idx.bad_rows == 0 and idx.servants() == []


def test_unknown_servant_gives_empty_lists_and_zero() -> None:
    idx = index(row(), rules=[GroupRule(1, "g", "10.0.0.1")],
                prios=[GroupPriority(1, "1", 1, "st")])
    assert idx.find_object_by_id("No.Such.Obj") == []
    assert idx.find_object_by_id_4_any("No.Such.Obj") == (0, [], [])
    assert idx.find_object_by_id_4_all("No.Such.Obj", "10.0.0.1") == (0, [], [])
    assert idx.find_object_by_id_in_same_group("No.Such.Obj", "10.0.0.1") == (0, [], [])
    assert idx.find_object_by_id_in_same_station("No.Such.Obj", "st", "") == (0, [], [])
    assert idx.find_object_by_id_in_same_set("No.Such.Obj", "a.b.c", "10.0.0.1") == (0, [], [])


def test_client_host_prefers_context_node_name() -> None:
    assert client_host({"node_name": "10.1.1.1"}, "192.168.0.1") == "10.1.1.1"
    assert client_host({"node_name": ""}, "192.168.0.1") == "192.168.0.1"
    assert client_host({}, "192.168.0.1") == "192.168.0.1"
    assert client_host(None, "192.168.0.1") == "192.168.0.1"
    # The host decides the group.
    idx = index(row("10.1.1.5", enable_group="y"), row("10.2.2.5", enable_group="y"),
                rules=[GroupRule(1, "a", "10.1.1.*"), GroupRule(2, "b", "10.2.2.*")])
    assert group_answer(idx, client_host({"node_name": "10.1.1.1"}, "10.2.2.1"))[0] == [
        "10.1.1.5:10000"]
    assert group_answer(idx, client_host({}, "10.2.2.1"))[0] == ["10.2.2.5:10000"]


# --------------------------------------------------------------------------- group tables


def test_group_table_lookup() -> None:
    table = GroupTable([GroupRule(3, "c", "10.0.0.*|10.0.1.7"), GroupRule(1, "a", "10.0.0.5| "),
                        GroupRule(2, "b", "10.0.1.7"), GroupRule(5, "e", "host-x")],
                       [GroupPriority(9, "1|2,3;x;;", 2, "late"), GroupPriority(8, "4", 1, "")])
    assert table.group_of_ip("10.0.0.5") == 1  # exact beats star
    assert table.group_of_ip("10.0.0.6") == 3  # a.b.c.*
    assert table.group_of_ip("10.0.1.7") == 3  # rules applied in group_id order: last wins
    assert table.group_of_ip("host-x") == 5 and table.group_of_ip("host-y") == -1
    assert table.group_of_ip("10.0.2.1") == -1 and table.group_of_ip("") == -1
    assert table.client_group("10.0.0.9") == 3 and table.client_group("10.0.0.9") == 3
    assert table.group_of_name("b") == 2 and table.group_of_name("zz") == -1
    assert table.group_of_name("") == -1
    assert [p.id for p in table.priorities] == [8, 9]
    assert table.priorities[1].groups == frozenset({1, 2, 3})
    station = table.station("late")
    assert station is not None and station.id == 9
    assert table.station("none") is None


def test_client_group_is_minus_one_without_ip_rules() -> None:
    assert GroupTable().client_group("10.0.0.1") == -1


# ---------------------------------------------------------------- group-priority algorithm


RULES = [GroupRule(1, "g1", "10.1.0.*"), GroupRule(2, "g2", "10.2.0.*"),
         GroupRule(3, "g3", "10.3.0.*"), GroupRule(4, "g4", "10.4.0.*")]
G1, G2, G3, G4 = "10.1.0.1", "10.2.0.1", "10.3.0.1", "10.4.0.1"
NOGROUP_CLIENT = "192.168.9.9"


def grouped(host: str, active: bool = True, enable: str = "y") -> InstanceRow:
    return row(host, enable_group=enable, present_state="active" if active else "inactive")


def test_no_group_rules_every_client_gets_everything() -> None:
    idx = index(grouped("10.1.0.5"), grouped("10.2.0.5", active=False))
    assert group_answer(idx, G1) == (["10.1.0.5:10000"], ["10.2.0.5:10000"])


def test_client_outside_every_group_gets_everything() -> None:
    idx = index(grouped("10.1.0.5"), grouped("10.2.0.5", active=False), rules=RULES)
    assert group_answer(idx, NOGROUP_CLIENT) == (["10.1.0.5:10000"], ["10.2.0.5:10000"])


def test_same_group_first() -> None:
    idx = index(grouped("10.1.0.5"), grouped("10.1.0.6", active=False), grouped("10.2.0.5"),
                grouped("10.3.0.5", enable="n"), rules=RULES)
    assert group_answer(idx, G1) == (["10.1.0.5:10000"], ["10.1.0.6:10000"])
    assert group_answer(idx, G2) == (["10.2.0.5:10000"], [])
    assert idx.find_object_by_id_4_all(OBJ, G1) == idx.find_object_by_id_in_same_group(OBJ, G1)


def test_priority_rows_in_list_order_when_the_group_has_no_active_endpoint() -> None:
    prios = [GroupPriority(10, "3|4", 2, "b"), GroupPriority(11, "1,9", 1, "a"),
             GroupPriority(12, "1;2", 3, "c")]
    rows = [grouped("10.1.0.5", active=False), grouped("10.2.0.5"), grouped("10.2.0.6", False),
            grouped("10.3.0.5"), grouped("10.3.0.6", enable="n")]
    idx = index(*rows, rules=RULES, prios=prios)
    # g1: same group only inactive → row 11 (groups 1, 9: still nothing) → row 10 skipped (no 1)
    # → row 12 (groups 1, 2).
    assert group_answer(idx, G1) == (["10.2.0.5:10000"], ["10.1.0.5:10000", "10.2.0.6:10000"])
    # g4 is only in row 10 (groups 3, 4).
    assert group_answer(idx, G4) == (["10.3.0.5:10000"], [])


def test_then_ungrouped_endpoints_then_everything() -> None:
    idx = index(grouped("10.2.0.5"), grouped("10.3.0.5", enable="n"),
                grouped("10.3.0.6", active=False, enable="n"), rules=RULES,
                prios=[GroupPriority(1, "1|3", 1, "")])
    assert group_answer(idx, G1) == (["10.3.0.5:10000"], ["10.3.0.6:10000"])
    idx = index(grouped("10.2.0.5"), grouped("10.3.0.6", active=False, enable="n"),
                rules=RULES)
    assert group_answer(idx, G1) == (["10.2.0.5:10000"], ["10.3.0.6:10000"])
    idx = index(grouped("10.2.0.5", active=False), grouped("10.1.0.5", active=False),
                rules=RULES)
    assert group_answer(idx, G1) == ([], ["10.1.0.5:10000", "10.2.0.5:10000"])


# ---------------------------------------------------------------------------------- station


def test_station_selects_by_grouprealid() -> None:
    prios = [GroupPriority(1, "9", 1, "sz"), GroupPriority(2, "1|2", 2, "sz"),
             GroupPriority(3, "1|2", 0, "gz")]
    idx = index(grouped("10.1.0.5", enable="n"), grouped("10.2.0.5", active=False),
                grouped("10.3.0.5"), rules=RULES, prios=prios)
    ret, active, inactive = idx.find_object_by_id_in_same_station(OBJ, "gz", G3)
    assert (ret, eps(active), eps(inactive)) == (0, ["10.1.0.5:10000"], ["10.2.0.5:10000"])
    assert idx.find_object_by_id_in_same_station(OBJ, "sz") == (0, [], [])  # first "sz" row
    assert idx.find_object_by_id_in_same_station(OBJ, "bj") == (-1, [], [])
    assert index(row()).find_object_by_id_in_same_station(OBJ, "") == (-1, [], [])


# -------------------------------------------------------------------------- set algorithm


def in_set(host: str, set_id: str, active: bool = True, **kw: Any) -> InstanceRow:
    name, area, group = set_id.split(".")
    return row(host, enable_set="Y", set_name=name, set_area=area, set_group=group,
               present_state="active" if active else "inactive", **kw)


SET_ROWS = [in_set("10.0.0.1", "sz.a.1"), in_set("10.0.0.2", "sz.a.1", active=False),
            in_set("10.0.0.3", "sz.a.2"), in_set("10.0.0.4", "sz.a.*"),
            in_set("10.0.0.5", "sz.b.1"), row("10.0.0.6")]


@pytest.mark.parametrize("set_id", ["sz.a", "sz.a.1.x", "*.a.1", "sz.*.1", "", "sz"])
def test_bad_set_ids_return_minus_one(set_id: str) -> None:
    assert index(*SET_ROWS).find_object_by_id_in_same_set(OBJ, set_id, "1.1.1.1") == (-1, [], [])


def test_set_id_parts_are_split_like_sepstr() -> None:
    assert set_answer(index(*SET_ROWS), "sz..a.1.") == (0, ["10.0.0.1:10000"], ["10.0.0.2:10000"])


def test_exact_set_group() -> None:
    idx = index(*SET_ROWS)
    assert set_answer(idx, "sz.a.1") == (0, ["10.0.0.1:10000"], ["10.0.0.2:10000"])
    assert set_answer(idx, "sz.a.2") == (0, ["10.0.0.3:10000"], [])


def test_wildcard_group_when_no_exact_match() -> None:
    idx = index(*SET_ROWS)
    assert set_answer(idx, "sz.a.7") == (0, ["10.0.0.4:10000"], [])
    assert set_answer(idx, "sz.b.7") == (-1, [], [])
    assert set_answer(idx, "sz.c.1") == (-1, [], [])


def test_star_group_takes_the_whole_area() -> None:
    idx = index(*SET_ROWS)
    assert set_answer(idx, "sz.a.*") == (
        0, ["10.0.0.1:10000", "10.0.0.3:10000", "10.0.0.4:10000"], ["10.0.0.2:10000"])
    assert set_answer(idx, "sz.b.*") == (0, ["10.0.0.5:10000"], [])
    assert set_answer(idx, "sz.c.*") == (-1, [], [])


def test_no_set_endpoints_or_no_such_set_name_falls_back_to_groups() -> None:
    rows = [row("10.1.0.5", enable_group="y"), row("10.2.0.5", enable_group="y")]
    idx = index(*rows, in_set("10.0.0.9", "sz.a.1"), rules=RULES)
    assert set_answer(idx, "gz.a.1", client=G2) == (0, ["10.2.0.5:10000"], [])
    assert set_answer(idx, "sz.a.1", client=G2) == (0, ["10.0.0.9:10000"], [])
    idx = index(*rows, rules=RULES)
    assert set_answer(idx, "sz.a.1", client=G1) == (0, ["10.1.0.5:10000"], [])


def test_invalid_set_rows_keep_set_id_but_stay_out_of_the_set_cache() -> None:
    rows = [in_set("10.0.0.1", "*.a.1"), in_set("10.0.0.2", "sz.*.1"),
            row("10.0.0.3", enable_set="y", set_name="sz", set_area="a", set_group=""),
            row("10.0.0.4", enable_set="y", set_name="sz", set_area="", set_group="1"),
            row("10.0.0.5", enable_set="n", set_name="sz", set_area="a", set_group="1")]
    idx = index(*rows)
    assert [e.setId for e in found(idx)] == [
        "*.a.1", "sz.*.1", "sz.a.", "sz..1", ""]
    # Nothing is in the set cache, so every set query falls back to "everything".
    assert set_answer(idx, "sz.a.1")[1] == eps(idx.find_object_by_id(OBJ))


def test_only_set_endpoints_are_returned_from_the_set_steps() -> None:
    idx = index(*SET_ROWS)
    assert "10.0.0.6:10000" not in set_answer(idx, "sz.a.*")[1]


# ------------------------------------------------------------------------- encoded answers


def decode(method: str, body: bytes) -> tuple[Any, ...]:
    result: Any = QUERY[method].result.tars_decode(body)
    if method == "findObjectById":
        return (result.tars_ret,)
    return result.tars_ret, result.activeEp, result.inactiveEp


@pytest.mark.parametrize("rules", [[], RULES])
def test_encoded_answers_decode_to_the_same_lists(rules: list[GroupRule]) -> None:
    rows = [*SET_ROWS, grouped("10.1.0.5"), grouped("10.2.0.5", active=False),
            row("10.9.0.1", servant="Other.Obj")]
    prios = [GroupPriority(1, "1|2", 1, "st")]
    idx = index(*rows, rules=rules, prios=prios)
    for servant in (OBJ, "Other.Obj", "Unknown.Obj"):
        for _ in range(2):  # computed, then memoised
            assert decode("findObjectById", idx.encoded_by_id(servant)) == (
                idx.find_object_by_id(servant),)
            assert decode("findObjectById4Any", idx.encoded_4_any(servant)) == (
                idx.find_object_by_id_4_any(servant))
            for host in (G1, G2, NOGROUP_CLIENT, ""):
                assert decode("findObjectByIdInSameGroup", idx.encoded_same_group(
                    servant, host)) == idx.find_object_by_id_in_same_group(servant, host)
                assert decode("findObjectById4All", idx.encoded_4_all(servant, host)) == (
                    idx.find_object_by_id_4_all(servant, host))
                for set_id in ("sz.a.1", "sz.a.*", "sz.a.9", "sz.c.1", "gz.a.1", "bad"):
                    assert decode("findObjectByIdInSameSet", idx.encoded_same_set(
                        servant, set_id, host)) == idx.find_object_by_id_in_same_set(
                        servant, set_id, host)
            for station in ("st", "none"):
                assert decode("findObjectByIdInSameStation", idx.encoded_same_station(
                    servant, station)) == idx.find_object_by_id_in_same_station(servant, station)


def test_encoded_answers_follow_updates() -> None:
    idx = index(row("10.0.0.1"), in_set("10.0.0.2", "sz.a.1"))
    before = (idx.encoded_by_id(OBJ), idx.encoded_same_group(OBJ, ""),
              idx.encoded_same_set(OBJ, "sz.a.1", ""), idx.encoded_4_any(OBJ))
    idx.apply_changes({("App", "Srv"): [row("10.0.0.1"), in_set("10.0.0.2", "sz.a.1", False)]})
    assert decode("findObjectById", idx.encoded_by_id(OBJ)) == (idx.find_object_by_id(OBJ),)
    assert decode("findObjectByIdInSameSet", idx.encoded_same_set(OBJ, "sz.a.1", "")) == (
        0, [], idx.find_object_by_id_4_any(OBJ)[2])
    after = (idx.encoded_by_id(OBJ), idx.encoded_same_group(OBJ, ""),
             idx.encoded_same_set(OBJ, "sz.a.1", ""), idx.encoded_4_any(OBJ))
    assert all(a != b for a, b in zip(before, after, strict=True))


def test_memo_tables_stay_bounded() -> None:
    idx = index(*SET_ROWS)
    for n in range(1000):
        idx.encoded_same_set(OBJ, f"sz.a.{n}", "")
        idx.find_object_by_id_in_same_set(OBJ, f"sz.b.{n}", "")
    entry = idx._entries[OBJ]
    assert len(entry.enc_set) <= 256 and len(entry._set_memo) <= 256
    assert len(idx._set_ids) <= 256


# ------------------------------------------------------------------------------- updates


def test_incremental_change_add_and_delete() -> None:
    a1, a2 = row("10.0.0.1", node="n1"), row("10.0.0.2", node="n2")
    b1 = row("10.0.0.7", app="B", server="Web", servant="B.Web.Obj", node="n1")
    idx = index(a1, a2, b1)
    v = idx.version
    idx.apply_changes({("App", "Srv"): [a1, dataclasses.replace(a2, present_state="inactive")]})
    assert eps(idx.find_object_by_id(OBJ)) == ["10.0.0.1:10000"] and idx.version == v + 1
    idx.apply_changes(deleted={("App", "Srv", "n1")})
    assert eps(idx.find_object_by_id_4_any(OBJ)[2]) == ["10.0.0.2:10000"]
    assert idx.find_object_by_id(OBJ) == []
    idx.apply_changes({("C", "New"): [row("10.0.0.8", app="C", server="New", servant=OBJ)]})
    assert eps(idx.find_object_by_id(OBJ)) == ["10.0.0.8:10000"]
    idx.apply_changes({("App", "Srv"): [], ("C", "New"): []})
    assert idx.servants() == ["B.Web.Obj"]
    assert idx.instances_by_state() == {"active": 1}
    # Deletions are applied before changes, so a re-registered instance survives.
    idx.apply_changes({("B", "Web"): [b1]}, deleted={("B", "Web", "n1")})
    assert idx.servants() == ["B.Web.Obj"]
    assert idx.snapshot() == RegistrySnapshot((b1,))


def test_no_op_updates_keep_the_version_and_the_memos() -> None:
    snap = RegistrySnapshot((row(),), (GroupRule(1, "g", "10.0.0.1"),))
    idx = RegistryIndex(snap)
    body = idx.encoded_same_group(OBJ, "")
    v = idx.version
    idx.replace_all(snap)
    idx.apply_changes({("App", "Srv"): [row()]}, deleted={("No", "Such", "node")})
    idx.apply_changes(group_rules=snap.group_rules)
    idx.apply_changes()
    assert idx.version == v and idx.encoded_same_group(OBJ, "") is body


def test_group_tables_can_be_replaced_incrementally() -> None:
    idx = index(grouped("10.1.0.5"), grouped("10.2.0.5"))
    assert group_answer(idx, G1)[0] == ["10.1.0.5:10000", "10.2.0.5:10000"]
    idx.apply_changes(group_rules=RULES)
    assert group_answer(idx, G1)[0] == ["10.1.0.5:10000"]
    idx.apply_changes(group_priorities=[GroupPriority(1, "1", 1, "st")])
    assert idx.find_object_by_id_in_same_station(OBJ, "st")[0] == 0
    idx.apply_changes(group_rules=[])
    assert group_answer(idx, G1)[0] == ["10.1.0.5:10000", "10.2.0.5:10000"]


def test_rows_must_belong_to_their_server_key() -> None:
    idx = index(row())
    v = idx.version
    with pytest.raises(ValueError, match="listed under"):
        idx.apply_changes({("App", "Srv"): [row()], ("X", "Y"): [row()]})
    assert idx.version == v and idx.snapshot() == RegistrySnapshot((row(),))


def test_servants_and_instances_by_state() -> None:
    idx = index(row("10.0.0.1", servant="B.Obj"), row("10.0.0.1", servant="A.Obj"),
                row("10.0.0.2", present_state="activating", node="n2"),
                row("10.0.0.3", app="X", present_state="Inactive", node="n3"))
    assert idx.servants() == ["A.Obj", "App.Srv.Obj", "B.Obj"]
    assert idx.instances_by_state() == {"active": 1, "activating": 1, "inactive": 1}
    idx.instances_by_state()["active"] = 99  # a copy
    assert idx.instances_by_state()["active"] == 1
