"""UDP endpoints against TarsNode's @tars/rpc: each side as client and as server, and the wire.

@tars/rpc 2.0.15 (core/client/Transceiver.js, core/server/NetThread.js, core/rpc-tars/) sends
each request and each answer as one datagram holding one frame with the TCP length prefix;
its receivers feed each datagram to a fresh stream splitter (so they would also take several
frames from one datagram, which no TARS peer sends).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from k8stars.tars.client import Communicator
from k8stars.tars.codec import StructType
from k8stars.tars.codec.plain import from_plain
from k8stars.tars.packet import RequestPacket, ResponsePacket, encode_frame
from k8stars.tars.server import Server

from .calc_servant import CALC, CalcImp
from .node_rpc import calc_server, node_available
from .static_query import StaticQuery
from .test_rpc_interop import (
    ALL_TYPES,
    PY_CALC,
    SAMPLES,
    converse_with_node_calc,
    node_calls,
    run,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not node_available(), reason="Node.js / npm not available"),
]

UDP = "udp -h 127.0.0.1 -p 0 -t 60000"
ADD: Any = CALC.methods["add"]


async def udp_server(**servants: Any) -> Server:
    server = Server(app="App", server="PyServer")
    for name, servant in servants.items():
        server.add_servant(name, servant, UDP)
    await server.start()
    return server


class _Capture(asyncio.DatagramProtocol):
    """Records every datagram; answers each request frame as a Calc ``add`` would."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data)
        req = RequestPacket.tars_decode(data[4:])
        if req.cPacketType == 1:
            return
        args = ADD.args.tars_decode(req.sBuffer)
        body = ADD.result(tars_ret=args.a + args.b).tars_encode()
        assert self.transport is not None
        self.transport.sendto(encode_frame(ResponsePacket(
            iVersion=1, cPacketType=0, iRequestId=req.iRequestId, iMessageType=0, iRet=0,
            sBuffer=body, status={}, sResultDesc="", context={})), addr)


class _Answers(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


def add_request(rid: int, a: int, b: int, servant: str) -> bytes:
    return encode_frame(RequestPacket(
        iVersion=1, cPacketType=0, iMessageType=0, iRequestId=rid, sServantName=servant,
        sFuncName="add", sBuffer=ADD.args(a=a, b=b).tars_encode(),
        iTimeout=3000, context={}, status={}))


def test_node_client_calls_python_udp_server() -> None:
    async def scenario() -> None:
        calc = CalcImp()
        server = await udp_server(**{PY_CALC: calc})
        try:
            proxy = server.proxy(PY_CALC)
            assert "@udp -h 127.0.0.1" in proxy
            results = await node_calls([
                {"op": "add", "args": [2, 40]},
                {"op": "echo", "args": ["grüße ✓" * 2000]},
                {"op": "divide", "args": [17, 5]},
                {"op": "roundTrip", "args": [SAMPLES["all_types"]]},
                {"op": "countWords", "args": [["a", "b", "a"]]},
                {"op": "touch", "args": ["x"], "oneway": True},
                {"op": "touch", "args": ["y"]},
                {"op": "echo", "args": ["__touched__"]},
                {"op": "fail", "args": ["boom"]},
                {"op": "fail", "args": ["code=-42:custom"]},
                {"op": "tars_ping"},
            ], proxy=proxy)
            tup = await node_calls([{"op": "divide", "args": [9, 2]}], proxy=proxy, tup=3)
            wrong = await node_calls([{"op": "add", "args": [1, 2]}],
                                     proxy=proxy.replace(PY_CALC, "App.PyServer.Nope"))
        finally:
            await server.stop(1)
        assert [r["ret"] for r in results[:3]] == [42, "grüße ✓" * 2000, 0]
        assert results[2]["outs"] == {"quotient": 3, "remainder": 2}
        expected = from_plain(SAMPLES["all_types"], StructType(ALL_TYPES))
        assert from_plain(results[3]["ret"], StructType(ALL_TYPES)) == expected
        assert sorted(results[4]["ret"]) == [["a", 2], ["b", 1]]
        assert results[7]["ret"] == "x,y" and calc.touched == ["x", "y"]
        assert (results[8]["code"], "ValueError: boom" in results[8]["message"]) == (-99, True)
        assert (results[9]["code"], results[9]["message"]) == (-42, "custom")
        assert results[10]["ok"]
        assert tup[0]["ok"] and tup[0]["outs"] == {"quotient": 4, "remainder": 1}
        assert wrong[0]["code"] == -4

    run(scenario)


def test_python_client_calls_node_udp_server() -> None:
    async def scenario() -> None:
        with calc_server(endpoint=UDP) as node:
            assert node.endpoint.startswith("udp ")
            async with Communicator() as comm:
                calc = comm.proxy(CALC, node.proxy)
                await converse_with_node_calc(calc, "ünïcode" * 4000)
                sums = await asyncio.gather(*(calc.add(i, 1) for i in range(40)))
                assert sums == [i + 1 for i in range(40)]

    run(scenario)


def test_node_client_resolves_udp_endpoint_through_python_queryf() -> None:
    async def scenario() -> None:
        calc_server_ = await udp_server(**{PY_CALC: CalcImp()})
        query = StaticQuery({PY_CALC: [calc_server_.endpoint(PY_CALC)]})
        registry = Server(app="tars", server="tarsregistry")
        registry.add_servant("tars.tarsregistry.QueryObj", query, "tcp -h 127.0.0.1 -p 0")
        await registry.start()
        try:
            results = await node_calls(
                [{"op": "add", "args": [3, 4]}, {"op": "echo", "args": ["via locator"]}],
                proxy=PY_CALC, locator=registry.proxy("tars.tarsregistry.QueryObj"))
        finally:
            await registry.stop(1)
            await calc_server_.stop(1)
        assert [r["ret"] for r in results] == [7, "via locator"]

    run(scenario)


def test_node_udp_wire_framing() -> None:
    """What @tars/rpc really puts in datagrams, seen from raw sockets on both sides."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        transport, capture = await loop.create_datagram_endpoint(
            _Capture, local_addr=("127.0.0.1", 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            results = await node_calls([
                {"op": "add", "args": [1, 2]},
                {"op": "touch", "args": ["z"], "oneway": True},
                {"op": "add", "args": [3, 4]},
            ], proxy=f"App.Raw.CalcObj@udp -h 127.0.0.1 -p {port} -t 3000")
        finally:
            transport.close()
        assert [r["ret"] for r in results if r["ok"]] == [3, 7]
        # one request per datagram, its 4-byte prefix the datagram's size
        assert len(capture.datagrams) == 3
        assert all(struct.unpack_from(">I", d)[0] == len(d) for d in capture.datagrams)
        requests = [RequestPacket.tars_decode(d[4:]) for d in capture.datagrams]
        assert [(r.sFuncName, r.cPacketType) for r in requests] == [
            ("add", 0), ("touch", 1), ("add", 0)]

        with calc_server(endpoint=UDP) as node:
            transport, answers = await loop.create_datagram_endpoint(
                _Answers, remote_addr=("127.0.0.1", node.port))
            try:
                transport.sendto(add_request(5, 20, 22, node.servant))
                data = await asyncio.wait_for(answers.queue.get(), 10)
                # two frames in one datagram: @tars/rpc's server splits it like a stream
                transport.sendto(add_request(6, 1, 1, node.servant)
                                 + add_request(7, 2, 2, node.servant))
                both = [await asyncio.wait_for(answers.queue.get(), 10) for _ in range(2)]
            finally:
                transport.close()
        assert struct.unpack_from(">I", data)[0] == len(data)
        resp = ResponsePacket.tars_decode(data[4:])
        assert (resp.iRequestId, resp.iRet) == (5, 0)
        assert ADD.result.tars_decode(resp.sBuffer).tars_ret == 42
        assert sorted(ResponsePacket.tars_decode(d[4:]).iRequestId for d in both) == [6, 7]
        assert all(struct.unpack_from(">I", d)[0] == len(d) for d in both)

    run(scenario)
