"""Our RPC runtime against TarsNode's @tars/rpc: each side as client and as server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from k8stars.tars.client import Communicator
from k8stars.tars.codec import StructType
from k8stars.tars.codec.plain import from_plain, to_plain
from k8stars.tars.errors import TarsRemoteError
from k8stars.tars.idl.loader import framework
from k8stars.tars.servant import Servant
from k8stars.tars.server import Server

from .calc_servant import CALC, IDL, CalcImp
from .node_rpc import calc_server, node_available, run_calc_client
from .static_query import StaticQuery

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not node_available(), reason="Node.js / npm not available"),
]

SAMPLES = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "data"
                      / "samples.json").read_text())
ALL_TYPES = IDL.struct("Interop.AllTypes")
PY_CALC = "App.PyServer.CalcObj"
QUERY = framework().interface("tars.QueryF")
ADMIN = framework().interface("tars.AdminF")
EndpointF = framework().struct("tars.EndpointF")


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def node_calls(calls: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    return await asyncio.to_thread(run_calc_client, calls, **kwargs)


async def python_server(**servants: Servant) -> Server:
    server = Server(app="App", server="PyServer")
    for name, servant in servants.items():
        server.add_servant(name, servant, "tcp -h 127.0.0.1 -p 0 -t 60000")
    server.add_admin("tcp -h 127.0.0.1 -p 0 -t 60000")
    await server.start()
    return server


def test_node_client_calls_python_server() -> None:
    async def scenario() -> None:
        calc = CalcImp()
        server = await python_server(**{PY_CALC: calc})
        try:
            sample = SAMPLES["all_types"]
            results = await node_calls([
                {"op": "add", "args": [2, 40]},
                {"op": "echo", "args": ["grüße ✓"]},
                {"op": "divide", "args": [17, 5]},
                {"op": "divide", "args": [1, 0]},
                {"op": "roundTrip", "args": [sample]},
                {"op": "countWords", "args": [["a", "b", "a"]]},
                {"op": "touch", "args": ["x"], "oneway": True},
                {"op": "touch", "args": ["y"]},
                {"op": "echo", "args": ["__touched__"]},
                {"op": "fail", "args": ["boom"]},
                {"op": "fail", "args": ["code=-42:custom"]},
                {"op": "tars_ping"},
            ], proxy=server.proxy(PY_CALC))
        finally:
            await server.stop(1)
        ok = [r for r in results if r["ok"]]
        assert [r["ret"] for r in ok[:4]] == [42, "grüße ✓", 0, -1]
        assert results[2]["outs"] == {"quotient": 3, "remainder": 2}
        round_trip = results[4]
        expected = from_plain(sample, StructType(ALL_TYPES))
        assert from_plain(round_trip["ret"], StructType(ALL_TYPES)) == expected
        assert round_trip["outs"]["inners"] == to_plain(expected.inners, StructType(
            ALL_TYPES).cls.__tars_fields__[14].type)
        assert sorted(results[5]["ret"]) == [["a", 2], ["b", 1]]
        assert results[8]["ret"] == "x,y" and calc.touched == ["x", "y"]
        assert (results[9]["ok"], results[9]["code"]) == (False, -99)
        assert "ValueError: boom" in results[9]["message"]
        assert (results[10]["code"], results[10]["message"]) == (-42, "custom")
        assert results[11]["ok"]

    run(scenario)


def test_node_client_gets_minus_4_and_minus_3() -> None:
    async def scenario() -> None:
        server = await python_server(**{PY_CALC: CalcImp()})
        try:
            wrong_servant = f"App.PyServer.Nope@{server.endpoint(PY_CALC).render()}"
            missing_servant = await node_calls([{"op": "add", "args": [1, 2]}],
                                               proxy=wrong_servant)
            # AdminObj exists but has no function "add"
            missing_function = await node_calls([{"op": "add", "args": [1, 2]}],
                                                proxy=server.proxy("AdminObj"))
        finally:
            await server.stop(1)
        assert missing_servant[0]["code"] == -4
        assert missing_function[0]["code"] == -3

    run(scenario)


def test_setloglevel_from_node_client_through_admin_obj() -> None:
    async def scenario() -> None:
        server = await python_server(**{PY_CALC: CalcImp()})
        logging.getLogger().setLevel(logging.INFO)
        try:
            results = await node_calls([
                {"op": "notify", "args": ["tars.setloglevel DEBUG"], "target": "admin"},
                {"op": "notify", "args": ["tars.setloglevel LOUD"], "target": "admin"},
                {"op": "notify", "args": ["no.such.command"], "target": "admin"},
            ], proxy=server.proxy(PY_CALC), admin=server.proxy("AdminObj"))
            level = logging.getLogger().level
        finally:
            await server.stop(1)
            logging.getLogger().setLevel(logging.WARNING)
        assert results[0]["ret"] == "tars.setloglevel DEBUG succ"
        assert level == logging.DEBUG
        assert "LOUD" in results[1]["ret"] and "succ" not in results[1]["ret"]
        assert "no.such.command" in results[2]["ret"]

    run(scenario)


async def converse_with_node_calc(calc: Any, text: str) -> None:
    """Our client against the TarsNode Calc server: values, out params, structs, maps, oneway
    and normal calls in order, a custom error code, ping."""
    sample = from_plain(SAMPLES["all_types"], StructType(ALL_TYPES))
    assert await calc.add(20, 22) == 42
    assert await calc.echo(text) == text
    assert await calc.divide(-17, 5) == (0, -3, -2)
    value, inners = await calc.roundTrip(sample)
    assert value == sample and inners == sample.inners
    assert await calc.countWords(["x", "y", "x"]) == {"x": 2, "y": 1}
    await calc.touch("p", _oneway=True)
    await calc.touch("q")
    assert await calc.echo("__touched__") == "p,q"
    with pytest.raises(TarsRemoteError) as info:
        await calc.fail("code=-7:from node")
    assert info.value.code == -7
    await calc.tars_ping()


def test_python_client_calls_node_server() -> None:
    async def scenario() -> None:
        with calc_server(admin=True) as node:
            async with Communicator() as comm:
                calc = comm.proxy(CALC, node.proxy)
                await converse_with_node_calc(calc, "ünïcode")
                admin = comm.proxy(ADMIN, node.admin_proxy)
                assert await admin.notify("tars.setloglevel DEBUG") == "ok"
                assert await calc.echo("__notified__") == "tars.setloglevel DEBUG"

    run(scenario)


def test_node_client_resolves_through_python_queryf() -> None:
    async def scenario() -> None:
        calc_server_ = await python_server(**{PY_CALC: CalcImp()})
        query = StaticQuery({PY_CALC: [calc_server_.endpoint(PY_CALC)]})
        registry = await python_server(**{"tars.tarsregistry.QueryObj": query})
        try:
            results = await node_calls(
                [{"op": "add", "args": [3, 4]}, {"op": "echo", "args": ["via locator"]}],
                proxy=PY_CALC, locator=registry.proxy("tars.tarsregistry.QueryObj"))
        finally:
            await registry.stop(1)
            await calc_server_.stop(1)
        assert [r["ret"] for r in results] == [7, "via locator"]
        assert query.contexts and "node_name" in query.contexts[0]

    run(scenario)
