"""The servants: QueryImp's pre-encoded answers equal the index's own (group rules, stations,
sets, client host from the context), RawResult on the wire (TARS and TUP), the registry's HTTP
endpoints and metrics."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from k8stars.registry.index import RegistryIndex
from k8stars.registry.metrics import CallStats, Histogram
from k8stars.registry.model import GroupPriority, GroupRule, InstanceRow, RegistrySnapshot
from k8stars.registry.servants import QueryImp, parse_clean_command
from k8stars.tars.client import Communicator
from k8stars.tars.idl.loader import framework
from k8stars.tars.packet import UniAttribute
from k8stars.tars.servant import RawResult
from k8stars.tars.server import Server

from .conftest import MetricsReq, startup
from .test_service_harness import QUERY, replica, run

IDL = framework()
EndpointF: Any = IDL.struct("tars.EndpointF")


def _row(node: str, servant: str = "A.S.Obj", **kw: Any) -> InstanceRow:
    return InstanceRow(application="A", server_name="S", node_name=node, servant=servant,
                       endpoint=f"tcp -h {node} -p 9000 -t 3000", **kw)  # fmt: skip


SNAPSHOT = RegistrySnapshot(
    instances=(
        _row("10.1.0.1", enable_group="Y"),
        _row("10.2.0.1", enable_group="Y"),
        _row("10.3.0.1"),
        _row("10.1.0.2", present_state="inactive", enable_group="Y"),
        _row("10.4.0.1", enable_set="Y", set_name="sz", set_area="a", set_group="1"),
        _row("10.4.0.2", enable_set="Y", set_name="sz", set_area="a", set_group="*"),
    ),
    group_rules=(GroupRule(1, "g1", "10.1.0.*"), GroupRule(2, "g2", "10.2.0.*")),
    group_priorities=(GroupPriority(1, "1|2", 0, "st12"), GroupPriority(2, "2", 1, "st2")),
)


def _eps(items: list[Any]) -> list[tuple[str, int, int, int, str]]:
    return [(e.host, e.port, e.groupworkid, e.grouprealid, e.setId) for e in items]


def test_query_answers_equal_the_index_answers() -> None:
    index = RegistryIndex(SNAPSHOT)
    stats = CallStats()

    async def scenario() -> None:
        server = Server()
        server.add_servant("tars.tarsregistry.QueryObj", QueryImp(index, stats),
                           "tcp -h 127.0.0.1 -p 0 -t 3000")  # fmt: skip
        await server.start()
        try:
            async with Communicator() as comm:
                q = comm.proxy(QUERY, server.proxy("tars.tarsregistry.QueryObj"))
                obj = "A.S.Obj"
                assert _eps(await q.findObjectById(obj)) == _eps(index.find_object_by_id(obj))
                ret, a, i = await q.findObjectById4Any(obj)
                want = index.find_object_by_id_4_any(obj)
                assert (ret, _eps(a), _eps(i)) == (want[0], _eps(want[1]), _eps(want[2]))
                for host in ("10.1.0.9", "10.2.0.9", "10.9.9.9", ""):
                    ctx = {"node_name": host} if host else None
                    for method, fn in (
                        ("findObjectByIdInSameGroup", index.find_object_by_id_in_same_group),
                        ("findObjectById4All", index.find_object_by_id_4_all),
                    ):
                        ret, a, i = await q.method(method)(obj, _context=ctx)
                        want = fn(obj, host or "127.0.0.1")
                        assert (ret, _eps(a), _eps(i)) == (want[0], _eps(want[1]),
                                                           _eps(want[2])), (method, host)
                    for station in ("st12", "st2", "nowhere"):
                        ret, a, i = await q.findObjectByIdInSameStation(obj, station,
                                                                        _context=ctx)
                        want = index.find_object_by_id_in_same_station(obj, station)
                        assert (ret, _eps(a), _eps(i)) == (want[0], _eps(want[1]), _eps(want[2]))
                    for set_id in ("sz.a.1", "sz.a.2", "sz.a.*", "bj.a.1", "bad"):
                        ret, a, i = await q.findObjectByIdInSameSet(obj, set_id, _context=ctx)
                        want = index.find_object_by_id_in_same_set(obj, set_id,
                                                                   host or "127.0.0.1")
                        assert (ret, _eps(a), _eps(i)) == (want[0], _eps(want[1]),
                                                           _eps(want[2])), (set_id, host)
                # the group rules really matter for these hosts
                _, a, _ = await q.findObjectByIdInSameGroup(obj, _context={"node_name":
                                                                           "10.2.0.5"})
                assert [e.host for e in a] == ["10.2.0.1"]
                assert await q.findObjectById("No.Such.Obj") == []
                assert await q.findObjectNodeName(obj) == (-1, [])
                assert await q.getLocker(IDL.struct("tars.GetMasterSlaveLock")()) == -1
        finally:
            await server.stop(1)

    run(scenario())
    assert stats.count("tars.tarsregistry.QueryObj", "findObjectByIdInSameSet", "ok") == 20
    assert stats.latency[("tars.tarsregistry.QueryObj", "findObjectById")].count == 2


def test_raw_result_is_sent_as_is_and_decoded_for_tup() -> None:
    method = QueryImp.tars_methods["findObjectByIdInSameGroup"]
    active = [EndpointF(host="10.0.0.1", port=1, timeout=3, istcp=1, grid=0)]
    body = method.encode_result((0, active, []))
    assert method.encode_result(RawResult(body)) == body
    tup = method.encode_tup_result(RawResult(body))
    assert tup == method.encode_tup_result((0, active, []))
    assert UniAttribute.decode(tup).get("activeEp", method.method.out_params[0].type) == active
    by_id = QueryImp.tars_methods["findObjectById"]
    raw = RawResult(by_id.encode_result(active))
    assert by_id.encode_tup_result(raw) == by_id.encode_tup_result(active)
    assert repr(RawResult(b"abc")) == "RawResult(3 bytes)"


def test_histogram_and_clean_command_parsing() -> None:
    hist = Histogram((0.1, 1.0))
    for value in (0.05, 0.5, 0.5, 5.0):
        hist.observe(value)
    assert hist.buckets() == [("0.1", 1.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert hist.quantile(0.5) == 1.0 and Histogram((1.0,)).quantile(0.5) is None
    assert parse_clean_command("clean") == (True, None)
    assert parse_clean_command("clean n") == (False, None)
    assert parse_clean_command("clean N 2024-01-02 03:04:05") == (False, "2024-01-02 03:04:05")
    assert parse_clean_command("clean y 2024-01-02") == (True, "2024-01-02")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_metrics_sd_and_healthz_over_http(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"

    async def scenario() -> None:
        async with replica(url, metrics_port=0) as r:
            from k8stars.registry.metrics import MetricsHttpServer

            http = MetricsHttpServer(r.runtime.metrics, sd=r.service.get_metrics_adapters,
                                     health=r.service.health)  # fmt: skip
            await http.start("127.0.0.1", 0)
            base = f"http://127.0.0.1:{http.port}"
            try:
                await r.registry.onStartup(startup("10.0.0.1"))
                await r.registry.onStartup(startup("10.0.0.2", setID="sz.a.1"))
                for node in ("10.0.0.1", "10.0.0.2"):
                    await r.registry.registerMetrics(MetricsReq(
                        nodeName=node, application="App", server="Srv", metricsPort=0))
                await r.query.findObjectById("App.Srv.Obj")
                status, text = await asyncio.to_thread(_get, f"{base}/metrics")
                assert status == 200
                assert ('tarsregistry_calls_total{method="onStartup",result="ok",'
                        'servant="tars.tarsregistry.Registry"} 2.0') in text
                assert 'tarsregistry_calls_total{method="findObjectById"' in text
                assert 'tarsregistry_instances{state="active"} 3.0' in text  # + own servants
                assert "tarsregistry_database_up 1.0" in text
                assert "tarsregistry_degraded 0.0" in text
                assert 'tarsregistry_pending_writes{kind="heartbeat"} 0.0' in text
                assert "tarsregistry_change_propagation_seconds_count" in text
                assert "tarsregistry_call_duration_seconds_bucket" in text
                status, text = await asyncio.to_thread(_get, f"{base}/sd")
                assert status == 200
                assert json.loads(text) == [
                    {"targets": ["10.0.0.1:9325"],
                     "labels": {"application": "App", "server": "Srv", "set": ""}},
                    {"targets": ["10.0.0.2:9325"],
                     "labels": {"application": "App", "server": "Srv", "set": "sz.a.1"}},
                ]  # fmt: skip
                status, text = await asyncio.to_thread(_get, f"{base}/sd?set=sz.a.1")
                assert [g["targets"] for g in json.loads(text)] == [["10.0.0.2:9325"]]
                status, text = await asyncio.to_thread(_get, f"{base}/sd?application=" + "x" * 300)
                assert status == 400
                assert await asyncio.to_thread(_get, f"{base}/healthz") == (200, "ok\n")
                assert (await asyncio.to_thread(_get, f"{base}/nope"))[0] == 404
            finally:
                await http.stop()

    run(scenario())
