"""Test helpers for the server tests: raw frames over asyncio streams, an Interop.Calc servant.

Requests are encoded by hand with RequestPacket and read back as ResponsePacket (or, for TUP,
as RequestPacket); no client module is used.
"""

from __future__ import annotations

import asyncio
import functools
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from k8stars.tars.codec import Struct
from k8stars.tars.endpoint import parse_endpoint
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.idl.loader import Interface, TarsIdl, load
from k8stars.tars.packet import RequestPacket, ResponsePacket, encode_frame
from k8stars.tars.servant import Servant, current
from k8stars.tars.server import Adapter, Server

IDL_DIR = Path(__file__).resolve().parents[1] / "interop" / "idl"
OBJ = "Test.Calc.CalcObj"


@functools.cache
def interop_idl() -> TarsIdl:
    return load(IDL_DIR / "InteropRpc.tars", [IDL_DIR])


def calc_interface() -> Interface:
    return interop_idl().interface("Interop.Calc")


CALC = calc_interface()


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test function in a fresh event loop, bounded to 20 s."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 20))

    return wrapper


class CalcImp(Servant, interface=CALC):
    """Interop.Calc. ``echo("wait:<key>")`` waits until ``release(key)``; ``echo("ctx")``
    answers the request context key ``k`` and sets a response context; ``touch`` records."""

    def __init__(self) -> None:
        self.touched: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []

    def gate(self, key: str) -> asyncio.Event:
        return self.gates.setdefault(key, asyncio.Event())

    def release(self, key: str) -> None:
        self.gate(key).set()

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def echo(self, s: str) -> str:
        if s.startswith("wait:"):
            self.started.append(s)
            await self.gate(s[5:]).wait()
        elif s == "ctx":
            cur = current()
            cur.response_context["seen"] = cur.context.get("k", "")
            return f"{cur.servant_name}.{cur.func_name} from {cur.host}"
        return s

    def divide(self, a: int, b: int) -> tuple[int, int, int]:
        if b == 0:
            raise TarsRpcError("division by zero", 7)
        return 0, a // b, a % b

    async def roundTrip(self, value: Any) -> tuple[Any, list[Any]]:
        return value, list(value.inners)

    def countWords(self, words: list[str]) -> dict[str, int]:
        return dict(Counter(words))

    async def touch(self, name: str) -> None:
        self.touched.append(name)

    def fail(self, message: str) -> int:
        raise ValueError(message)


def args_body(func: str, **kwargs: Any) -> bytes:
    """The sBuffer of a call to ``func`` of Interop.Calc."""
    return CALC.methods[func].args(**kwargs).tars_encode()


def request(func: str, body: bytes = b"", *, request_id: int = 1, servant: str = OBJ,
            version: int = 1, oneway: bool = False, timeout: int = 3000,
            context: dict[str, str] | None = None, message_type: int = 0) -> bytes:
    """One request frame."""
    return encode_frame(RequestPacket(
        iVersion=version, cPacketType=1 if oneway else 0, iMessageType=message_type,
        iRequestId=request_id, sServantName=servant, sFuncName=func, sBuffer=body,
        iTimeout=timeout, context=context or {}, status={}))


def call(func: str, *, request_id: int = 1, **kwargs: Any) -> bytes:
    """A request frame for ``func(**kwargs)``."""
    return request(func, args_body(func, **kwargs), request_id=request_id)


def result(func: str, resp: ResponsePacket) -> Struct:
    return CALC.methods[func].result.tars_decode(resp.sBuffer)


class Wire:
    """A raw TCP connection to a server: send frames, read response frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> Wire:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))
        await self.writer.drain()

    async def read_frame(self, timeout: float = 5.0) -> bytes:
        head = await asyncio.wait_for(self.reader.readexactly(4), timeout)
        (length,) = struct.unpack(">I", head)
        return await asyncio.wait_for(self.reader.readexactly(length - 4), timeout)

    async def response(self, timeout: float = 5.0) -> ResponsePacket:
        return ResponsePacket.tars_decode(await self.read_frame(timeout))

    async def call(self, frame: bytes) -> ResponsePacket:
        await self.send(frame)
        return await self.response()

    async def no_data(self, wait: float = 0.1) -> bool:
        """True when nothing arrives within ``wait`` seconds (and the link is still open)."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), wait)
        except asyncio.TimeoutError:
            return True
        del data
        return False

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (EOF or reset) within ``timeout``."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except ConnectionError:
            return True
        return True

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


def adapter(servant: str = OBJ, **kw: Any) -> Adapter:
    return Adapter(name=f"{servant}Adapter", endpoint=parse_endpoint("tcp -h 127.0.0.1 -p 0"),
                   servant=servant, **kw)


@asynccontextmanager
async def serving(servant: Servant | None = None, **adapter_kw: Any) -> AsyncIterator[
        tuple[Server, int]]:
    """A started server with ``servant`` (a CalcImp by default) as OBJ; yields (server, port)."""
    server = Server()
    server.add_servant(OBJ, servant if servant is not None else CalcImp(), adapter(**adapter_kw))
    await server.start()
    try:
        yield server, server.endpoint(OBJ).port
    finally:
        await server.stop(1.0)


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``check`` until it holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
