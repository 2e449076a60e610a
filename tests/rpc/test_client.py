"""Client calls over real sockets against a raw test server (direct proxies)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from k8stars.tars.client import Communicator
from k8stars.tars.client_config import ClientConfig
from k8stars.tars.errors import (
    TarsConnectError,
    TarsRemoteError,
    TarsRpcError,
    TarsTimeoutError,
)
from k8stars.tars.packet import RequestPacket, ResponsePacket

from .test_client_support import (
    RawServer,
    async_test,
    calc_handler,
    calc_interface,
    eventually,
    free_port,
    interop_idl,
    reply,
)

OBJ = "Interop.Calc.CalcObj"


def calc_proxy(comm: Communicator, *servers: RawServer | int) -> Any:
    eps = ":".join(s.endpoint if isinstance(s, RawServer) else f"tcp -h 127.0.0.1 -p {s}"
                   for s in servers)
    return comm.proxy(calc_interface(), f"{OBJ}@{eps}")


@async_test
async def test_return_values_and_out_params() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        assert await calc.add(1, 2) == 3
        assert await calc.add(a=-5, b=2) == -3
        assert await calc.add(40, b=2) == 42
        assert await calc.echo("héllo") == "héllo"
        assert await calc.divide(7, 2) == (0, 3, 1)
        assert await calc.divide(7, 0) == (-1, 0, 0)
        assert await calc.touch("x") is None
        await calc.tars_ping()
        assert server.connections == 1
        req = server.calls("add")[0]
        assert (req.sServantName, req.iVersion, req.cPacketType, req.iTimeout) == (OBJ, 1, 0,
                                                                                  3000)
        assert req.context == {} and req.status == {} and req.iMessageType == 0


@async_test
async def test_argument_errors() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        with pytest.raises(TypeError, match="missing argument"):
            await calc.add(1)
        with pytest.raises(TypeError, match="no in parameter 'c'"):
            await calc.add(1, 2, c=3)
        with pytest.raises(TypeError, match="two values"):
            await calc.add(1, 2, a=3)
        with pytest.raises(AttributeError, match="nope"):
            calc.nope  # noqa: B018
        assert server.requests == []


@async_test
async def test_structs_and_maps() -> None:
    idl = interop_idl()
    all_types: Any = idl.struct("Interop.AllTypes")
    inner: Any = idl.struct("Interop.Inner")
    value = all_types(b=True, i8=-1, i16=300, i32=-70000, i64=2**40, f32=1.5, f64=-2.25,
                      s="s", blob=b"\x00\x01", ints=[1, 2], strs=["a"], counts={"x": 1},
                      byId={7: inner(id=7, label="seven")}, inner=inner(id=1),
                      inners=[inner(id=2), inner(id=3, label="three")])
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        echoed, inners = await calc.roundTrip(value)
        assert echoed == value
        assert inners == [inner(id=2), inner(id=3, label="three")]
        assert await calc.countWords(["a", "b", "a"]) == {"a": 2, "b": 1}
        # The low-level API: an args struct in, the result struct out.
        method: Any = calc_interface().methods["add"]
        result: Any = await calc.invoke("add", method.args(a=2, b=3), method.result)
        assert result.tars_ret == 5
        raw = await calc.invoke_raw("add", method.args(a=2, b=3).tars_encode())
        assert isinstance(raw, ResponsePacket)
        assert method.result.tars_decode(raw.sBuffer) == result


@async_test
async def test_concurrent_calls_answered_out_of_order_on_one_connection() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        done: list[str] = []

        async def echo(text: str, delay: float) -> str:
            answer: str = await calc.echo(f"delay:{delay}:{text}")
            done.append(answer)
            return answer

        texts = [f"t{i}" for i in range(20)]
        delays = [0.02 * (20 - i) for i in range(20)]  # the first sent is answered last
        answers = await asyncio.gather(*(echo(t, d) for t, d in zip(texts, delays,
                                                                      strict=True)))
        assert answers == texts
        assert done == texts[::-1]
        assert server.connections == 1
        ids = [r.iRequestId for r in server.requests]
        assert len(set(ids)) == 20 and 0 not in ids


@async_test
async def test_timeout_and_late_response_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="k8stars.tars.client")
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        start = time.monotonic()
        with pytest.raises(TarsTimeoutError) as info:
            await calc.echo("delay:0.3:late", _timeout=0.05)
        assert time.monotonic() - start < 0.25
        assert info.value.code == -7
        assert OBJ in str(info.value) and "echo" in str(info.value)
        assert "50 ms" in str(info.value)
        assert server.calls("echo")[0].iTimeout == 50
        await asyncio.sleep(0.35)  # the late answer arrives and is dropped
        assert any("dropping response" in r.message for r in caplog.records)
        assert await calc.echo("next") == "next"
        assert server.connections == 1


@async_test
async def test_sync_invoke_timeout_is_the_default() -> None:
    async with RawServer(calc_handler) as server, Communicator(sync_invoke_timeout=80) as comm:
        calc = calc_proxy(comm, server)
        with pytest.raises(TarsTimeoutError, match="80 ms"):
            await calc.echo("delay:0.5:x")
        assert server.calls("echo")[0].iTimeout == 80


@async_test
async def test_remote_errors() -> None:
    async def handler(req: RequestPacket) -> ResponsePacket | None:
        if req.sFuncName == "add":
            return reply(req, ret=-3)  # as if the server had no such function
        return await calc_handler(req)

    async with RawServer(handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        with pytest.raises(TarsRemoteError) as info:
            await calc.fail("boom")
        assert info.value.code == 1
        assert "boom" in info.value.message
        assert f"{OBJ}.fail at 127.0.0.1:{server.port}" in info.value.message
        with pytest.raises(TarsRemoteError, match="server returned code -3") as info:
            await calc.add(1, 2)
        assert info.value.code == -3
        with pytest.raises(TarsRpcError, match="cannot decode") as decode_info:
            await calc.echo("garbage")
        assert decode_info.value.code == -12
        raw = await calc.invoke_raw("add", b"", check=False)
        assert raw is not None and raw.iRet == -3
        assert await calc.echo("still fine") == "still fine"


@async_test
async def test_connection_refused() -> None:
    port = free_port()
    async with Communicator() as comm:
        calc = calc_proxy(comm, port)
        with pytest.raises(TarsConnectError) as info:
            await calc.add(1, 2)
        assert info.value.code == -8
        assert f"127.0.0.1:{port}" in str(info.value)
        assert "refused" in str(info.value).lower()
        # Marked down, but with a single endpoint it is still tried on the next call.
        with pytest.raises(TarsConnectError):
            await calc.add(1, 2)


@async_test
async def test_down_endpoint_skipped_by_round_robin_and_back() -> None:
    config = ClientConfig(reconnect_backoff_min=100, reconnect_backoff_max=200)
    dead = free_port()
    async with RawServer(calc_handler) as a, RawServer(calc_handler) as b, \
            Communicator(config) as comm:
        calc = calc_proxy(comm, a, dead, b)
        for i in range(9):
            assert await calc.add(i, 1) == i + 1
        # The dead endpoint failed over once, then was skipped: a and b share the calls.
        assert len(a.requests) + len(b.requests) == 9
        assert len(a.requests) >= 3 and len(b.requests) >= 3
        revived = await RawServer(calc_handler, port=dead).start()
        try:
            await asyncio.sleep(0.25)  # past the backoff

            async def revived_serves() -> bool:
                assert await calc.add(1, 1) == 2
                return len(revived.requests) > 0

            await eventually(revived_serves)
            before = len(revived.requests)
            for _ in range(6):
                await calc.add(1, 1)
            assert len(revived.requests) - before == 2  # one in three, round robin
        finally:
            await revived.stop()


@async_test
async def test_all_endpoints_down_tries_least_recently_failed() -> None:
    config = ClientConfig(reconnect_backoff_min=10000, reconnect_backoff_max=10000)
    p1, p2 = free_port(), free_port()
    async with Communicator(config) as comm:
        calc = calc_proxy(comm, p1, p2)
        with pytest.raises(TarsConnectError):
            await calc.add(1, 2)  # both refused: each tried once
        server = await RawServer(calc_handler, port=p1).start()
        try:
            # Both are down and in backoff; p1 failed first, so it is tried rather than
            # failing without trying.
            assert await calc.add(1, 2) == 3
        finally:
            await server.stop()


@async_test
async def test_connection_drop_fails_pending_calls() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        assert await calc.add(1, 1) == 2
        calls = [asyncio.ensure_future(calc.echo(f"delay:5:{i}")) for i in range(3)]
        await eventually(lambda: _true(len(server.calls("echo")) == 3))
        start = time.monotonic()
        server.drop_connections()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert time.monotonic() - start < 1
        assert all(isinstance(r, TarsConnectError) for r in results), results
        assert "lost" in str(results[0])
        assert await calc.add(2, 2) == 4  # reconnects lazily
        assert server.connections == 2


@async_test
async def test_oneway_and_ping() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        assert await calc.touch("x", _oneway=True) is None
        await calc.tars_ping(oneway=True)
        await eventually(lambda: _true(len(server.requests) == 2))
        assert [r.cPacketType for r in server.requests] == [1, 1]
        assert server.requests[1].sFuncName == "tars_ping"
        await calc.tars_ping()
        assert await calc.add(1, 2) == 3


@async_test
async def test_context_sent() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        assert await calc.add(1, 2, _context={"k": "v"}, _timeout=0.5) == 3
        req = server.calls("add")[0]
        assert req.context == {"k": "v"}
        assert req.iTimeout == 500


@async_test
async def test_request_ids_wrap_and_skip_zero() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        await calc.add(0, 0)
        (peer,) = comm._peers.values()
        assert peer.conn is not None
        peer.conn._next_id = 2**31 - 1
        await calc.add(0, 0)
        await calc.add(0, 0)
        assert [r.iRequestId for r in server.requests] == [1, 2**31 - 1, 1]


@async_test
async def test_close_fails_pending_and_later_calls() -> None:
    async with RawServer(calc_handler) as server:
        comm = Communicator()
        calc = calc_proxy(comm, server)
        call = asyncio.ensure_future(calc.echo("delay:5:x"))
        await eventually(lambda: _true(len(server.requests) == 1))
        await comm.close()
        with pytest.raises(TarsConnectError):
            await call
        with pytest.raises(TarsConnectError, match="closed"):
            await calc.add(1, 2)


async def _true(value: bool) -> bool:
    return value


@async_test
async def test_timeouts_with_mixed_values_and_answer_order() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        slow = asyncio.ensure_future(calc.echo("delay:0.4:slow", _timeout=0.2))
        fast = [asyncio.ensure_future(calc.echo(f"delay:0.05:f{i}", _timeout=0.2))
                for i in range(5)]
        short = asyncio.ensure_future(calc.echo("delay:1:short", _timeout=0.05))
        start = time.monotonic()
        with pytest.raises(TarsTimeoutError):
            await short  # expires on time although earlier calls with longer timeouts wait
        assert time.monotonic() - start < 0.15
        assert await asyncio.gather(*fast) == [f"f{i}" for i in range(5)]
        with pytest.raises(TarsTimeoutError):
            await slow  # behind answered calls in its queue, still expired at its deadline
        # More distinct timeout values than queues: the rest get a timer each.
        results = await asyncio.gather(
            *(calc.echo("delay:0.3:x", _timeout=0.01 + i / 1000) for i in range(40)),
            return_exceptions=True)
        assert all(isinstance(r, TarsTimeoutError) for r in results)
        assert await calc.echo("ok") == "ok"
        # calls timing out together are no evidence of a dead connection: it stays
        assert server.connections == 1


@async_test
async def test_connection_silent_through_two_timeouts_in_a_row_is_closed() -> None:
    async def mute(req: RequestPacket) -> ResponsePacket | None:
        return None  # reads every request, answers none (a path gone silently)

    async with RawServer(mute) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        with pytest.raises(TarsTimeoutError):
            await calc.echo("first", _timeout=0.05)
        assert server.connections == 1  # one silent timeout: kept
        with pytest.raises(TarsTimeoutError):
            await calc.echo("second", _timeout=0.05)  # sent after it, silent too: closed
        server.handler = calc_handler
        assert await calc.echo("third") == "third"
        assert server.connections == 2


@async_test
async def test_many_oneway_calls_without_yielding() -> None:
    async with RawServer(calc_handler) as server, Communicator() as comm:
        calc = calc_proxy(comm, server)
        for i in range(500):
            await calc.touch(f"n{i}", _oneway=True)
        await eventually(lambda: _true(len(server.requests) == 500))
        args: Any = calc_interface().methods["touch"].args
        names = [args.tars_decode(r.sBuffer).name for r in server.requests]
        assert names == [f"n{i}" for i in range(500)]
