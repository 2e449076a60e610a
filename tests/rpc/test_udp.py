"""UDP endpoints: our client and our server over real datagram sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from k8stars.tars.client import Communicator
from k8stars.tars.client_config import ClientConfig
from k8stars.tars.codec import INT
from k8stars.tars.endpoint import parse_endpoint
from k8stars.tars.errors import (
    TarsConnectError,
    TarsRemoteError,
    TarsRpcError,
    TarsTimeoutError,
)
from k8stars.tars.packet import RequestPacket, ResponsePacket, UniAttribute
from k8stars.tars.servant import current
from k8stars.tars.server import Adapter, Server
from k8stars.tars.transport import MAX_DATAGRAM_SIZE

from .test_server_support import (
    CALC,
    OBJ,
    CalcImp,
    args_body,
    async_test,
    call,
    eventually,
    request,
    result,
)

UDP = "udp -h 127.0.0.1 -p 0 -t 3000"


class BigImp(CalcImp):
    """``echo("big:N")`` answers N characters; ``echo("port")`` the caller's port."""

    async def echo(self, s: str) -> str:
        if s.startswith("big:"):
            return "x" * int(s[4:])
        if s == "port":
            return str(current().port)
        return await super().echo(s)


@asynccontextmanager
async def udp_server(servant: CalcImp | None = None, endpoint: str = UDP,
                     **adapter_kw: Any) -> AsyncIterator[Server]:
    """A started server serving ``servant`` (a BigImp by default) as OBJ on a udp endpoint."""
    server = Server()
    server.add_servant(OBJ, servant if servant is not None else BigImp(), Adapter(
        name="CalcAdapter", endpoint=parse_endpoint(endpoint), servant=OBJ, **adapter_kw))
    await server.start()
    try:
        yield server
    finally:
        await server.stop(1.0)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


class RawUdp:
    """A plain UDP socket connected to a server: send any bytes, read whole datagrams."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _Collect) -> None:
        self.transport = transport
        self.protocol = protocol

    @classmethod
    async def open(cls, port: int) -> RawUdp:
        transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
            _Collect, remote_addr=("127.0.0.1", port))
        return cls(transport, protocol)

    def send(self, data: bytes) -> None:
        self.transport.sendto(data)

    async def datagram(self, timeout: float = 5.0) -> bytes:
        return await asyncio.wait_for(self.protocol.queue.get(), timeout)

    async def response(self) -> ResponsePacket:
        """The next answer: one datagram holding exactly one frame."""
        data = await self.datagram()
        assert struct.unpack_from(">I", data)[0] == len(data)
        return ResponsePacket.tars_decode(data[4:])

    def close(self) -> None:
        self.transport.close()


def free_udp_port() -> int:
    """A udp port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proxy(comm: Communicator, server: Server, obj: str = OBJ) -> Any:
    return comm.proxy(CALC, f"{obj}@{server.endpoint(OBJ).render()}")


@async_test
async def test_values_out_params_and_context() -> None:
    async with udp_server() as server, Communicator() as comm:
        assert server.endpoint(OBJ).protocol == "udp" and server.endpoint(OBJ).port > 0
        calc = proxy(comm, server)
        assert await calc.add(20, 22) == 42
        assert await calc.divide(7, 2) == (0, 3, 1)
        assert await calc.countWords(["a", "b", "a"]) == {"a": 2, "b": 1}
        assert await calc.echo("grüße ✓") == "grüße ✓"
        assert await calc.echo("ctx", _context={"k": "v"}) == (
            f"{OBJ}.echo from 127.0.0.1")
        assert int(await calc.echo("port")) > 0
        assert await calc.echo("x" * 60000) == "x" * 60000  # large, but fits a datagram
        await calc.tars_ping()
        assert [p.label for p in comm._peers.values()] == [
            f"udp 127.0.0.1:{server.endpoint(OBJ).port}"]
        assert server.status()[0].peers == ()


@async_test
async def test_calls_multiplexed_on_one_socket() -> None:
    imp = BigImp()
    async with udp_server(imp) as server, Communicator() as comm:
        calc = proxy(comm, server)
        slow = asyncio.ensure_future(calc.echo("wait:k"))
        await eventually(lambda: imp.started == ["wait:k"])
        sums = await asyncio.gather(*(calc.add(i, i) for i in range(50)))
        assert sums == [2 * i for i in range(50)]  # answered before the first call
        imp.release("k")
        assert await slow == "wait:k"
        assert len(comm._peers) == 1


@async_test
async def test_remote_errors() -> None:
    async with udp_server() as server, Communicator() as comm:
        calc = proxy(comm, server)
        with pytest.raises(TarsRemoteError) as info:
            await calc.divide(1, 0)
        assert (info.value.code, info.value.message.endswith("division by zero")) == (7, True)
        with pytest.raises(TarsRemoteError) as info:
            await calc.fail("boom")
        assert info.value.code == -99 and "ValueError: boom" in info.value.message
        resp = await calc.invoke_raw("nope", b"", check=False)
        assert resp is not None and resp.iRet == -3
        with pytest.raises(TarsRemoteError) as info:
            await proxy(comm, server, "Other.Calc.CalcObj").add(1, 2)
        assert info.value.code == -4
        assert await calc.add(1, 1) == 2


@async_test
async def test_oneway_and_ping() -> None:
    imp = BigImp()
    async with udp_server(imp) as server, Communicator() as comm:
        calc = proxy(comm, server)
        assert await calc.touch("a", _oneway=True) is None
        await calc.tars_ping(oneway=True)
        await eventually(lambda: imp.touched == ["a"])
        await calc.tars_ping()
        raw = await RawUdp.open(server.endpoint(OBJ).port)
        try:
            raw.send(request("touch", args_body("touch", name="b"), request_id=5, oneway=True))
            raw.send(request("tars_ping", request_id=6))
            resp = await raw.response()  # the oneway call got no answer
            assert (resp.iRequestId, resp.iRet) == (6, 0)
            await eventually(lambda: imp.touched == ["a", "b"])
        finally:
            raw.close()


@async_test
async def test_timeout_and_late_answer_dropped() -> None:
    imp = BigImp()
    async with udp_server(imp) as server, Communicator() as comm:
        calc = proxy(comm, server)
        with pytest.raises(TarsTimeoutError, match=r"at udp 127\.0\.0\.1:"):
            await calc.echo("wait:k", _timeout=0.2)
        imp.release("k")  # its answer arrives now and is dropped
        assert await calc.add(2, 3) == 5
        assert await calc.echo("again") == "again"
        (peer,) = comm._peers.values()
        assert peer.conn is not None and peer.conn.pending == {}


@async_test
async def test_raw_datagrams_one_frame_each_tup_too() -> None:
    async with udp_server() as server:
        raw = await RawUdp.open(server.endpoint(OBJ).port)
        try:
            raw.send(call("add", a=2, b=3, request_id=11))
            resp = await raw.response()
            assert (resp.iRequestId, resp.iRet) == (11, 0)
            assert result("add", resp).tars_ret == 5  # type: ignore[attr-defined]
            tup = UniAttribute()
            tup.put("a", INT, 4)
            tup.put("b", INT, 5)
            raw.send(request("add", tup.encode(), request_id=12, version=3))
            data = await raw.datagram()
            assert struct.unpack_from(">I", data)[0] == len(data)
            answer = RequestPacket.tars_decode(data[4:])
            assert (answer.iRequestId, answer.iVersion) == (12, 3)
            assert UniAttribute.decode(answer.sBuffer).get("", INT) == 9
        finally:
            raw.close()


MALFORMED = [
    b"\x00\x00",                                       # shorter than a prefix
    struct.pack(">I", 4),                              # below the minimum frame size
    call("add", a=1, b=2, request_id=1)[:-3],          # truncated: prefix > size
    call("add", a=1, b=2, request_id=2) + b"\x00",     # trailing byte: prefix < size
    call("add", a=1, b=2, request_id=3) * 2,           # two frames in one datagram
    struct.pack(">I", 20) + b"\xff" * 16,              # a frame, but not a RequestPacket
    struct.pack(">I", 0xFFFFFFFF) + b"x" * 10,         # absurd length
]


@async_test
async def test_malformed_datagrams_dropped_server_keeps_answering(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with udp_server() as server, Communicator() as comm:
        calc = proxy(comm, server)
        raw = await RawUdp.open(server.endpoint(OBJ).port)
        sender = f"127.0.0.1:{raw.transport.get_extra_info('sockname')[1]}"
        try:
            for i, data in enumerate(MALFORMED):
                raw.send(data)
                assert await calc.add(i, 1) == i + 1  # another sender is served meanwhile
            raw.send(call("add", a=40, b=2, request_id=99))
            resp = await raw.response()  # the first answer: none came for the bad ones
            assert resp.iRequestId == 99
            assert result("add", resp).tars_ret == 42  # type: ignore[attr-defined]
        finally:
            raw.close()
    dropped = [r for r in caplog.records if "dropping a datagram" in r.getMessage()]
    assert len(dropped) == len(MALFORMED)
    assert all(sender in r.getMessage() for r in dropped)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@async_test
async def test_oversize_answer_fails_that_call(caplog: pytest.LogCaptureFixture) -> None:
    async with udp_server() as server, Communicator() as comm:
        calc = proxy(comm, server)
        size = MAX_DATAGRAM_SIZE - 100
        assert len(await calc.echo(f"big:{size}")) == size
        with pytest.raises(TarsRemoteError) as info:
            await calc.echo("big:70000")
        assert info.value.code == -2 and "does not fit in a UDP datagram" in info.value.message
        assert await calc.add(1, 2) == 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "65507" in errors[0].getMessage()
    assert f"{OBJ}.echo" in errors[0].getMessage()


@async_test
async def test_oversize_request_fails_that_call() -> None:
    async with udp_server() as server, Communicator() as comm:
        calc = proxy(comm, server)
        with pytest.raises(TarsRpcError) as info:
            await calc.echo("x" * 70000)
        assert info.value.code == -13 and "65507" in info.value.message
        with pytest.raises(TarsRpcError) as info:
            await calc.touch("x" * 70000, _oneway=True)
        assert info.value.code == -13
        assert await calc.add(1, 2) == 3
        (peer,) = comm._peers.values()
        assert peer.conn is not None and peer.conn.pending == {}


@async_test
async def test_mixed_tcp_and_udp_endpoints_round_robin() -> None:
    tcp_imp, udp_imp = BigImp(), BigImp()
    tcp = Server()
    tcp.add_servant(OBJ, tcp_imp, "tcp -h 127.0.0.1 -p 0 -t 3000")
    await tcp.start()
    try:
        async with udp_server(udp_imp) as udp, Communicator() as comm:
            calc = comm.proxy(CALC, f"{OBJ}@{tcp.endpoint(OBJ).render()}:"
                                    f"{udp.endpoint(OBJ).render()}")
            for i in range(6):
                await calc.touch(str(i))
            assert len(tcp_imp.touched) == len(udp_imp.touched) == 3
            assert sorted(tcp_imp.touched + udp_imp.touched, key=int) == list("012345")
            assert sorted(p.label for p in comm._peers.values()) == sorted([
                f"127.0.0.1:{tcp.endpoint(OBJ).port}", f"udp 127.0.0.1:{udp.endpoint(OBJ).port}"])
    finally:
        await tcp.stop(1.0)


@async_test
async def test_same_port_tcp_and_udp_are_two_peers() -> None:
    tcp = Server()
    tcp.add_servant(OBJ, BigImp(), "tcp -h 127.0.0.1 -p 0 -t 3000")
    await tcp.start()
    port = tcp.endpoint(OBJ).port
    try:
        async with udp_server(endpoint=f"udp -h 127.0.0.1 -p {port}") as udp, \
                Communicator() as comm:
            assert udp.endpoint(OBJ).port == port
            calc = comm.proxy(CALC, f"{OBJ}@tcp -h 127.0.0.1 -p {port}:udp -h 127.0.0.1 "
                                    f"-p {port}")
            assert [await calc.add(i, 0) for i in range(4)] == [0, 1, 2, 3]
            assert len(comm._peers) == 2
    finally:
        await tcp.stop(1.0)


@async_test
async def test_port_unreachable_fails_calls_and_marks_endpoint_down() -> None:
    dead = free_udp_port()
    tcp = Server()
    tcp.add_servant(OBJ, BigImp(), "tcp -h 127.0.0.1 -p 0 -t 3000")
    await tcp.start()
    config = ClientConfig(reconnect_backoff_min=60000, reconnect_backoff_max=60000)
    try:
        async with Communicator(config) as comm:
            calc = comm.proxy(CALC, f"{OBJ}@udp -h 127.0.0.1 -p {dead}:"
                                    f"{tcp.endpoint(OBJ).render()}", idempotent=True)
            with pytest.raises(TarsConnectError) as info:
                await calc.add(1, 2)  # round robin starts with the udp endpoint
            assert info.value.message == (f"{OBJ}.add: udp 127.0.0.1:{dead}: "
                                          "Connection refused")
            assert [await calc.add(i, 1) for i in range(4)] == [1, 2, 3, 4]  # tcp only now
    finally:
        await tcp.stop(1.0)


@async_test
async def test_queuecap_and_allow_apply() -> None:
    imp = BigImp()
    async with udp_server(imp, queuecap=1) as server, Communicator() as comm:
        calc = proxy(comm, server)
        slow = asyncio.ensure_future(calc.echo("wait:k"))
        await eventually(lambda: imp.started == ["wait:k"])
        with pytest.raises(TarsRemoteError) as info:
            await calc.echo("second")
        assert info.value.code == -9
        imp.release("k")
        assert await slow == "wait:k"
    async with udp_server(allow=("10.0.*",)) as server, Communicator() as comm:
        with pytest.raises(TarsTimeoutError):
            await proxy(comm, server).add(1, 2, _timeout=0.2)


@async_test
async def test_graceful_stop_answers_in_flight_calls_then_closes() -> None:
    imp = BigImp()
    server = Server()
    server.add_servant(OBJ, imp, UDP)
    await server.start()
    async with Communicator() as comm:
        calc = proxy(comm, server)
        slow = asyncio.ensure_future(calc.echo("wait:k"))
        await eventually(lambda: imp.started == ["wait:k"])
        stopping = asyncio.ensure_future(server.stop(5.0))
        await eventually(lambda: server.stopping)
        with pytest.raises(TarsTimeoutError):
            await calc.add(1, 2, _timeout=0.2)  # not served while stopping
        assert not stopping.done()
        imp.release("k")
        assert await slow == "wait:k"
        await stopping
        assert server._adapters["Test.Calc.CalcObjAdapter"].datagram is not None
        assert not server._adapters["Test.Calc.CalcObjAdapter"].datagram.is_open
        with pytest.raises(TarsConnectError, match="Connection refused"):
            await calc.add(1, 2)


@async_test
async def test_communicator_close_fails_pending_udp_calls() -> None:
    imp = BigImp()
    async with udp_server(imp) as server:
        comm = Communicator()
        calc = proxy(comm, server)
        slow = asyncio.ensure_future(calc.echo("wait:k"))
        await eventually(lambda: imp.started == ["wait:k"])
        await comm.close()
        with pytest.raises(TarsConnectError, match="communicator closed"):
            await slow
        imp.release("k")
