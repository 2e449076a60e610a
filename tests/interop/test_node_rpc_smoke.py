"""Smoke test of the TarsNode (@tars/rpc) RPC peer: Node client <-> Node server.

Checks the test infrastructure itself (calc_glue.js, calc_server.js, calc_client.js,
rpc_load.js, query_stub.js and node_rpc.py) before it is pointed at our own server and client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .node_rpc import (
    CALC_SERVANT,
    NodeProcess,
    calc_server,
    node_available,
    query_stub,
    run_calc_client,
    run_rpc_load,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not node_available(), reason="Node.js / npm not available"),
]

ALL_TYPES: dict[str, Any] = {
    "b": True, "i8": -128, "i16": 32767, "i32": -2147483648, "i64": "-9223372036854775808",
    "f32": 1.5, "f64": -0.1, "s": "héllo ✓", "blob": "00ff10", "ints": [1, -2, 3],
    "strs": ["a", ""], "counts": [["x", 1], ["y", -1]],
    "byId": [[1, {"id": 1, "label": "one"}], [7, {"id": 7, "label": "inner"}]],
    "inner": {"id": 42, "label": "in"},
    "inners": [{"id": 1, "label": "inner"}, {"id": 2, "label": "two"}],
    "u8": 255, "u16": 65535, "u32": 4294967295, "color": 6, "opt": "set",
    "nested": [["1", "9223372036854775807"], []], "tagged": [["k", ["v1", "v2"]]],
}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[NodeProcess]:
    with calc_server(admin=True) as srv:
        yield srv


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["ok"] is True, result
    return result


def test_ready_line(server: NodeProcess) -> None:
    assert server.servant == CALC_SERVANT
    assert server.proxy == f"{CALC_SERVANT}@{server.endpoint}"
    assert server.endpoint.startswith("tcp -h 127.0.0.1 -p ") and server.port > 0
    assert server.admin_proxy is not None and server.admin_proxy.startswith("AdminObj@tcp -h ")
    assert server.ready["rpc"] == "2.0.15"


def test_every_calc_method(server: NodeProcess) -> None:
    calls: list[dict[str, Any]] = [
        {"op": "add", "args": [40, 2]},
        {"op": "add", "args": [2147483647, 1]},
        {"op": "echo", "args": ["héllo ✓"]},
        {"op": "divide", "args": [7, 2]},
        {"op": "divide", "args": [-7, 2]},
        {"op": "divide", "args": [7, 0]},
        {"op": "roundTrip", "args": [ALL_TYPES]},
        {"op": "countWords", "args": [["a", "b", "a", ""]]},
        {"op": "touch", "args": ["first"]},
        {"op": "touch", "args": ["second"]},
        {"op": "echo", "args": ["__touched__"]},
        {"op": "tars_ping"},
    ]
    res = [_ok(r) for r in run_calc_client(calls, proxy=server.proxy)]
    assert [r["op"] for r in res] == [c["op"] for c in calls]
    assert res[0]["ret"] == 42 and res[0]["outs"] == {}
    assert res[1]["ret"] == -2147483648  # int32 wrap-around
    assert res[2]["ret"] == "héllo ✓"
    assert (res[3]["ret"], res[3]["outs"]) == (0, {"quotient": 3, "remainder": 1})
    assert (res[4]["ret"], res[4]["outs"]) == (0, {"quotient": -3, "remainder": -1})
    assert (res[5]["ret"], res[5]["outs"]) == (-1, {"quotient": 0, "remainder": 0})
    ret = res[6]["ret"]
    for key in ("b", "i8", "i16", "i32", "i64", "s", "blob", "ints", "strs", "inner", "inners",
                "u8", "u16", "u32", "color", "opt", "nested", "tagged"):  # fmt: skip
        assert ret[key] == ALL_TYPES[key], key
    assert ret["f32"] == 1.5 and ret["f64"] == -0.1
    assert dict(map(tuple, ret["counts"])) == {"x": 1, "y": -1}
    assert res[6]["outs"] == {"inners": ALL_TYPES["inners"]}
    assert dict(map(tuple, res[7]["ret"])) == {"a": 2, "b": 1, "": 1}
    assert res[8]["ret"] is None and res[8]["outs"] == {}
    assert res[10]["ret"].split(",")[-2:] == ["first", "second"]
    assert res[11]["sbuffer"] == "0c"  # tars2node answers tars_ping with int32 0 at tag 0


def test_errors(server: NodeProcess) -> None:
    calls: list[dict[str, Any]] = [
        {"op": "fail", "args": ["boom"]},
        {"op": "fail", "args": ["code=-99:custom"]},
        {"op": "add", "args": [1]},
        {"op": "nope", "args": []},
        {"op": "echo", "args": ["still fine"]},
    ]
    res = run_calc_client(calls, proxy=server.proxy)
    assert res[0] == {**res[0], "ok": False, "code": -1, "message": "BindAdapter Exception:boom"}
    assert res[1] == {**res[1], "ok": False, "code": -99, "message": "BindAdapter Exception:custom"}
    assert res[2]["ok"] is False and res[2]["code"] is None
    assert res[2]["message"].startswith("invalid call:")
    assert res[3]["ok"] is False and res[3]["code"] is None
    assert _ok(res[4])["ret"] == "still fine"


def test_unreachable_times_out() -> None:
    with calc_server() as srv:
        proxy = srv.proxy
    (res,) = run_calc_client([{"op": "add", "args": [1, 2]}], proxy=proxy, timeout_ms=300)
    assert res["ok"] is False and res["code"] == -13001


def test_tup(server: NodeProcess) -> None:
    calls: list[dict[str, Any]] = [
        {"op": "add", "args": [1, 2]},
        {"op": "divide", "args": [9, 4]},
        {"op": "roundTrip", "args": [ALL_TYPES]},
        {"op": "fail", "args": ["tup"]},
    ]
    res = run_calc_client(calls, proxy=server.proxy, tup=3)
    assert _ok(res[0])["ret"] == 3
    assert _ok(res[1])["outs"] == {"quotient": 2, "remainder": 1}
    assert _ok(res[2])["outs"] == {"inners": ALL_TYPES["inners"]}
    # TUP answers carry the code in status STATUS_RESULT_CODE; @tars/rpc drops the text.
    assert res[3]["ok"] is False and res[3]["code"] == -1


def test_admin_notify(server: NodeProcess) -> None:
    calls: list[dict[str, Any]] = [
        {"op": "notify", "target": "admin", "args": ["tars.setloglevel DEBUG"]},
        {"op": "notify", "target": "admin", "args": ["tars.viewversion"]},
        {"op": "notify", "target": "admin", "args": ["preheatCheck"]},
        {"op": "getPid", "target": "admin"},
        {"op": "tars_ping", "target": "admin"},
        {"op": "echo", "args": ["__notified__"]},
    ]
    res = run_calc_client(calls, proxy=server.proxy, admin=server.admin_proxy)
    assert [r.get("ret") for r in res[:3]] == ["ok", "2.0.15", "success"]
    assert res[3]["ok"] is False and res[3]["code"] == -3  # node-agent's AdminF has no getPid
    assert _ok(res[4])["sbuffer"] == "0c"
    assert _ok(res[5])["ret"].split("\n")[-3:] == [
        "tars.setloglevel DEBUG", "tars.viewversion", "preheatCheck",
    ]  # fmt: skip


def test_locator(server: NodeProcess) -> None:
    with query_stub({CALC_SERVANT: server.endpoint}) as registry:
        res = run_calc_client(
            [{"op": "add", "args": [2, 3]}, {"op": "echo", "args": ["via locator"]}],
            proxy=CALC_SERVANT, locator=registry.proxy,
        )  # fmt: skip
        assert [_ok(r)["ret"] for r in res] == [5, "via locator"]
        (unknown,) = run_calc_client(
            [{"op": "add", "args": [2, 3]}], proxy="App.NodeServer.Nobody",
            locator=registry.proxy, timeout_ms=300,
        )  # fmt: skip
        assert unknown["ok"] is False and unknown["code"] == -13001


CONFIG = """\
<tars>
  <application>
    enableset=N
    setdivision=NULL
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890
      async-invoke-timeout=5000
      modulename=App.NodeServer
    </client>
    <server>
      app=App
      server=NodeServer
      localip=127.0.0.1
      local=tcp -h 127.0.0.1 -p 0 -t 30000
      logpath=/tmp/
      <App.NodeServer.CalcObjAdapter>
        allow
        endpoint=tcp -h 127.0.0.1 -p 0 -t 60000
        handlegroup=App.NodeServer.CalcObjAdapter
        maxconns=200000
        protocol=tars
        queuecap=10000
        queuetimeout=60000
        servant=App.NodeServer.CalcObj
        threads=5
      </App.NodeServer.CalcObjAdapter>
    </server>
  </application>
</tars>
"""


def test_config_file_and_admin_shutdown(tmp_path: Path) -> None:
    conf = tmp_path / "App.NodeServer.config.conf"
    conf.write_text(CONFIG, encoding="utf-8")
    with calc_server(config=conf, admin=True) as srv:
        assert srv.adapters == [{
            "name": "App.NodeServer.CalcObjAdapter", "servant": CALC_SERVANT,
            "endpoint": srv.endpoint,
        }]  # fmt: skip
        assert srv.admin_proxy is not None
        res = run_calc_client(
            [{"op": "add", "args": [20, 22]}, {"op": "shutdown", "target": "admin"}],
            proxy=srv.proxy, admin=srv.admin_proxy,
        )  # fmt: skip
        assert _ok(res[0])["ret"] == 42
        assert _ok(res[1])["ret"] is None
        assert srv.process.wait(timeout=5) == 0


def test_load_one_second(server: NodeProcess) -> None:
    out = run_rpc_load(server.proxy, call="add", concurrency=8, seconds=1.0, warmup=0.2)
    assert out["errors"] == 0 and out["error_codes"] == {}
    assert out["calls"] > 100 and out["calls_per_s"] == pytest.approx(out["calls"], rel=0.01)
    assert 0 < out["p50_ms"] <= out["p99_ms"] <= out["max_ms"]
    assert out["connections"] == 1  # @tars/rpc: one connection per endpoint by default
    echo = run_rpc_load(server.proxy, call="echo4k", concurrency=2, seconds=0.3, warmup=0.1)
    assert echo["errors"] == 0 and echo["calls"] > 10
