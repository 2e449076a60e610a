"""Test helpers for the client tests: a minimal raw TARS server over real sockets.

It decodes RequestPackets with FrameDecoder, hands each to an async handler (one task per
request, so answers may go out of order) and encodes the ResponsePacket the handler returns
(None: no answer). ``calc_handler`` dispatches Interop.Calc by hand, ``QueryServant`` answers
QueryF lookups from a table. No module of k8stars' server is used.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from k8stars.tars.codec import Struct
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.idl.loader import Interface, TarsIdl, framework, load
from k8stars.tars.packet import FrameDecoder, RequestPacket, ResponsePacket, encode_frame

IDL_DIR = Path(__file__).resolve().parents[1] / "interop" / "idl"

Handler = Callable[[RequestPacket], Awaitable[ResponsePacket | None]]


@functools.cache
def interop_idl() -> TarsIdl:
    return load(IDL_DIR / "InteropRpc.tars", [IDL_DIR])


def calc_interface() -> Interface:
    return interop_idl().interface("Interop.Calc")


def query_interface() -> Interface:
    return framework().interface("tars.QueryF")


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test function in a fresh event loop, bounded to 20 s."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 20))

    return wrapper


def free_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reply(req: RequestPacket, result: Struct | None = None, *, ret: int = 0, desc: str = "",
          body: bytes | None = None, request_id: int | None = None) -> ResponsePacket:
    """The ResponsePacket answering ``req``."""
    if body is None:
        body = result.tars_encode() if result is not None else b""
    return ResponsePacket(iVersion=req.iVersion, cPacketType=0,
                          iRequestId=req.iRequestId if request_id is None else request_id,
                          iMessageType=req.iMessageType, iRet=ret, sBuffer=body, status={},
                          sResultDesc=desc, context={})


class _ServerProtocol(asyncio.Protocol):
    def __init__(self, server: RawServer) -> None:
        self.server = server
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.transports.add(transport)
        self.server.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        for body in self.decoder.feed(data):
            req = RequestPacket.tars_decode(body)
            self.server.requests.append(req)
            task = asyncio.get_running_loop().create_task(self._answer(req))
            self.server.tasks.add(task)
            task.add_done_callback(self.server.tasks.discard)

    async def _answer(self, req: RequestPacket) -> None:
        if req.sFuncName == "tars_ping":
            resp: ResponsePacket | None = reply(req)
        else:
            resp = await self.server.handler(req)
        transport = self.transport
        if resp is not None and req.cPacketType == 0 and transport is not None \
                and not transport.is_closing():
            transport.write(encode_frame(resp))


class RawServer:
    """A listening socket on 127.0.0.1 whose requests go to ``handler``."""

    def __init__(self, handler: Handler, port: int = 0) -> None:
        self.handler = handler
        self.port = port
        self.requests: list[RequestPacket] = []
        self.connections = 0
        self.transports: set[asyncio.Transport] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.base_events.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"tcp -h 127.0.0.1 -p {self.port}"

    @property
    def ep(self) -> Endpoint:
        return Endpoint("tcp", "127.0.0.1", self.port)

    def calls(self, func: str) -> list[RequestPacket]:
        return [r for r in self.requests if r.sFuncName == func]

    async def start(self) -> RawServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _ServerProtocol(self), "127.0.0.1",
                                                self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def drop_connections(self) -> None:
        for transport in list(self.transports):
            transport.abort()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self.drop_connections()
            await self._server.wait_closed()
            self._server = None
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.sleep(0)

    async def __aenter__(self) -> RawServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def calc_handler(req: RequestPacket) -> ResponsePacket | None:
    """Interop.Calc by hand. ``echo("delay:<s>:<text>")`` answers after <s> seconds."""
    method = calc_interface().methods.get(req.sFuncName)
    if method is None:
        return reply(req, ret=-3)
    args: Any = method.args.tars_decode(req.sBuffer)
    result: Any = method.result
    name = req.sFuncName
    if name == "add":
        return reply(req, result(tars_ret=args.a + args.b))
    if name == "echo":
        text = args.s
        if text.startswith("delay:"):
            _, delay, text = text.split(":", 2)
            await asyncio.sleep(float(delay))
        if text == "garbage":
            return reply(req, body=b"\x0a\x0b")  # a struct where a string is declared
        return reply(req, result(tars_ret=text))
    if name == "divide":
        if args.b == 0:
            return reply(req, result(tars_ret=-1, quotient=0, remainder=0))
        return reply(req, result(tars_ret=0, quotient=args.a // args.b,
                                 remainder=args.a % args.b))
    if name == "roundTrip":
        return reply(req, result(tars_ret=args.value, inners=list(args.value.inners)))
    if name == "countWords":
        return reply(req, result(tars_ret=dict(Counter(args.words))))
    if name == "touch":
        return reply(req)
    assert name == "fail"
    return reply(req, ret=1, desc=args.message)


class QueryServant:
    """A QueryF servant answering from ``table`` (object name -> active endpoints).

    ``ret`` overrides the int result, ``broken`` makes it answer iRet -99.
    """

    def __init__(self, table: dict[str, list[Endpoint]] | None = None) -> None:
        self.table: dict[str, list[Endpoint]] = dict(table or {})
        self.ret = 0
        self.broken = False
        self.endpointf = framework().struct("tars.EndpointF")

    async def __call__(self, req: RequestPacket) -> ResponsePacket | None:
        if self.broken:
            return reply(req, ret=-99, desc="registry broken")
        method = query_interface().methods.get(req.sFuncName)
        if method is None or req.sFuncName not in ("findObjectByIdInSameGroup",
                                                   "findObjectByIdInSameSet"):
            return reply(req, ret=-3)
        args: Any = method.args.tars_decode(req.sBuffer)
        active = [self.endpointf(**ep.endpointf_fields("node"))
                  for ep in self.table.get(args.id, [])]
        return reply(req, method.result(tars_ret=self.ret,  # type: ignore[call-arg]
                                        activeEp=active, inactiveEp=[]))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Retry ``check`` every 20 ms until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
