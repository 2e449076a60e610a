"""Server limits and hostile input: queuecap, queuetimeout, maxconns, bad frames, flow
control, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from typing import Any

import pytest

from k8stars.tars.server import Server

from .test_server_support import (
    OBJ,
    CalcImp,
    Wire,
    adapter,
    args_body,
    async_test,
    call,
    eventually,
    request,
    result,
    serving,
)


def connections(server: Server) -> list[Any]:
    return [c for rt in server._adapters.values() for c in rt.connections]


class BlockingImp(CalcImp):
    def touch(self, name: str) -> None:  # type: ignore[override]
        time.sleep(0.15)  # holds the event loop: later frames of the chunk wait


@async_test
async def test_queuecap_overload() -> None:
    imp = CalcImp()
    async with serving(imp, queuecap=2) as (_, port):
        wire = await Wire.open(port)
        await wire.send(call("echo", s="wait:a", request_id=1), call("echo", s="wait:b",
                                                                        request_id=2))
        await eventually(lambda: len(imp.started) == 2)
        resp = await wire.call(call("add", a=1, b=2, request_id=3))
        assert (resp.iRequestId, resp.iRet) == (3, -9) and "queuecap 2" in resp.sResultDesc
        assert (await wire.call(request("tars_ping", request_id=4))).iRet == 0  # not queued
        imp.release("a")
        assert (await wire.response()).iRequestId == 1
        resp = await wire.call(call("add", a=1, b=2, request_id=5))
        assert resp.iRet == 0
        imp.release("b")
        assert (await wire.response()).iRequestId == 2
        await wire.close()


@async_test
async def test_queuetimeout_from_adapter() -> None:
    async with serving(BlockingImp(), queuetimeout=50) as (_, port):
        wire = await Wire.open(port)
        await wire.send(call("touch", name="x", request_id=1), call("add", a=1, b=2,
                                                                    request_id=2))
        assert (await wire.response()).iRet == 0
        resp = await wire.response()
        assert (resp.iRequestId, resp.iRet) == (2, -6)
        assert "server invoke timeout" in resp.sResultDesc
        assert (await wire.call(call("add", a=1, b=2, request_id=3))).iRet == 0
        await wire.close()


@async_test
async def test_queuetimeout_from_request_timeout() -> None:
    async with serving(BlockingImp(), queuetimeout=0) as (_, port):
        wire = await Wire.open(port)
        short = request("add", args_body("add", a=1, b=2), request_id=2, timeout=50)
        unlimited = request("add", args_body("add", a=1, b=2), request_id=3, timeout=0)
        await wire.send(call("touch", name="x", request_id=1), short, unlimited)
        codes = [(r.iRequestId, r.iRet) for r in [await wire.response() for _ in range(3)]]
        assert codes == [(1, 0), (2, -6), (3, 0)]
        await wire.close()


@async_test
async def test_maxconns(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(maxconns=2) as (server, port):
        first, second = await Wire.open(port), await Wire.open(port)
        await eventually(lambda: len(connections(server)) == 2)
        with caplog.at_level(logging.WARNING, "k8stars.tars.server"):
            third = await Wire.open(port)
            assert await third.closed_by_peer()
        assert "maxconns 2" in caplog.text
        for wire in (first, second):
            assert (await wire.call(call("add", a=1, b=2))).iRet == 0
        await first.close()
        await eventually(lambda: len(connections(server)) == 1)
        fourth = await Wire.open(port)
        assert (await fourth.call(call("add", a=1, b=2))).iRet == 0
        for wire in (second, third, fourth):
            await wire.close()


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x02abc",                      # length below the minimum
    struct.pack(">I", 2**31) + b"\x00" * 64,     # 2 GiB announced
    struct.pack(">I", 20) + b"\xff" * 16,        # complete frame, not a RequestPacket
    struct.pack(">I", 9) + b"\x10\x01\x2c\x3c\x40",  # RequestPacket cut short inside
], ids=["short-length", "2GiB", "not-a-request", "truncated-packet"])
@async_test
async def test_bad_frames_close_only_that_connection(garbage: bytes,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    async with serving() as (_, port):
        good = await Wire.open(port)
        bad = await Wire.open(port)
        with caplog.at_level(logging.WARNING):
            await bad.send(call("add", a=1, b=1, request_id=1), garbage)
            assert await bad.closed_by_peer()
        assert "closing connection from 127.0.0.1:" in caplog.text
        assert (await good.call(call("add", a=2, b=2))).iRet == 0
        await good.close()
        await bad.close()


@async_test
async def test_random_garbage_and_bounded_buffers() -> None:
    server = Server(max_frame_size=4096)
    server.add_servant(OBJ, CalcImp(), adapter())
    async with server:
        port = server.endpoint(OBJ).port
        rng = random.Random(7)
        for _ in range(20):
            wire = await Wire.open(port)
            with contextlib.suppress(ConnectionError):
                await wire.send(rng.randbytes(rng.randrange(1, 20000)))
            # either closed at once, or waiting for the rest of a frame of at most 4 KiB
            assert all(c._decoder.buffered < 4096 for c in connections(server))
            await wire.close()
        # a frame announcing more than max_frame_size is refused before its body arrives
        wire = await Wire.open(port)
        await wire.send(struct.pack(">I", 5000) + b"\x00" * 100)
        assert await wire.closed_by_peer()
        # a truncated frame just waits; the server keeps serving others
        slow = await Wire.open(port)
        await slow.send(struct.pack(">I", 200) + b"\x10\x01")
        other = await Wire.open(port)
        assert (await other.call(call("add", a=2, b=3))).iRet == 0
        await eventually(lambda: any(c._decoder.buffered == 6 for c in connections(server)))
        for w in (wire, slow, other):
            await w.close()


@async_test
async def test_flow_control_pauses_reading_without_losing_answers() -> None:
    async with serving() as (server, port):
        wire = await Wire.open(port)
        text = "y" * 256 * 1024
        n = 40
        wire.writer.write(b"".join(call("echo", s=text, request_id=i + 1) for i in range(n)))
        await eventually(lambda: any(c.paused for c in connections(server)))
        ids = []
        for _ in range(n):
            resp = await wire.response()
            assert result("echo", resp).tars_ret == text  # type: ignore[attr-defined]
            ids.append(resp.iRequestId)
        assert sorted(ids) == list(range(1, n + 1))
        await wire.close()


@async_test
async def test_graceful_stop_finishes_in_flight_call() -> None:
    imp = CalcImp()
    async with serving(imp) as (server, port):
        busy = await Wire.open(port)
        idle = await Wire.open(port)
        await busy.send(call("echo", s="wait:k", request_id=1))
        await eventually(lambda: imp.started == ["wait:k"])
        stopping = asyncio.ensure_future(server.stop(5.0))
        assert await idle.closed_by_peer()  # idle connections close at once
        with pytest.raises(ConnectionRefusedError):
            await Wire.open(port)
        assert not stopping.done()
        imp.release("k")
        resp = await busy.response()
        assert (resp.iRequestId, resp.iRet) == (1, 0)
        assert await busy.closed_by_peer()
        await asyncio.wait_for(stopping, 2)
        await server.wait_closed()
        await busy.close()
        await idle.close()


@async_test
async def test_stop_deadline_cancels_and_drops() -> None:
    imp = CalcImp()
    async with serving(imp) as (server, port):
        wire = await Wire.open(port)
        await wire.send(call("echo", s="wait:never", request_id=1))
        await eventually(lambda: len(imp.started) == 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop(0.1)
        assert loop.time() - started < 1.5
        assert await wire.closed_by_peer()
        assert not any(rt.tasks for rt in server._adapters.values())
        await wire.close()


@async_test
async def test_serve_forever_returns_after_stop() -> None:
    server = Server()
    server.add_servant(OBJ, CalcImp(), adapter())
    forever = asyncio.ensure_future(server.serve_forever())
    await eventually(lambda: server.started_at is not None)
    wire = await Wire.open(server.endpoint(OBJ).port)
    assert (await wire.call(call("add", a=1, b=2))).iRet == 0
    server.request_stop(1.0)
    await asyncio.wait_for(forever, 2)
    await wire.close()


@async_test
async def test_allow_list(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(allow=("10.0.0.*",)) as (_, port):
        with caplog.at_level(logging.WARNING, "k8stars.tars.server"):
            wire = await Wire.open(port)
            assert await wire.closed_by_peer()
        assert "not in allow list" in caplog.text
        await wire.close()
    async with serving(allow=("10.0.0.*", "127.0.0.1")) as (_, port):
        wire = await Wire.open(port)
        assert (await wire.call(call("add", a=1, b=2))).iRet == 0
        await wire.close()
