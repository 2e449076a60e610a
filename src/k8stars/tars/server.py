"""The asyncio TARS server: adapters (listening endpoints) serving :class:`Servant` objects.

::

    server = Server()
    server.add_servant("App.Server.CalcObj", CalcImp(), "tcp -h 127.0.0.1 -p 10015")
    await server.start()
    ...
    await server.stop(5.0)      # graceful: in-flight calls get up to 5 s

Adapters listen on ``tcp`` or ``udp`` endpoints. Over UDP each datagram carries one request
frame and its answer goes back to the sender as one datagram; malformed datagrams are dropped
(logged with the sender), an answer too large for a datagram is replaced by a -2 error.

Each frame is decoded and checked (servant -4, ``tars_ping``, function -3, overload -9,
queue timeout -6, arguments -1) at once; a synchronous method runs inline, a coroutine
method as its own task (or eagerly, see :class:`Server`), so responses may leave out of
order; answers produced while one received chunk is handled go out in one write, and a
peer that does not read its answers is not read from either. A frame that is not a
RequestPacket closes its connection; a failing method is answered (-99 or the code of a
:class:`~k8stars.tars.errors.TarsRpcError`) and the connection stays up. Oneway calls get no
answer. TUP (iVersion 3) calls are answered as TarsCpp does: with a RequestPacket whose
sBuffer holds the named results and whose status carries a non-zero result code.

:func:`serve` runs a program started with ``--config=FILE``: its adapters, AdminObj on the
``local`` endpoint, log files, and a graceful stop on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import signal
import sys
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from contextvars import copy_context
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from .config import ConfigError
from .endpoint import Endpoint, parse_endpoint
from .errors import TarsDecodeError, TarsEncodeError, TarsFrameError, TarsRpcError
from .logs import set_log_level, setup_logging
from .packet import (
    DEFAULT_MAX_FRAME_SIZE,
    RequestPacket,
    ResponsePacket,
    ReturnCode,
    UniAttribute,
    encode_frame,
)
from .servant import _CURRENT, Current, MethodEntry, Servant
from .server_config import Adapter, ServerConfig
from .stats import ServantStats, ServerStats
from .transport import MAX_DATAGRAM_SIZE, DatagramFrameProtocol, FramedProtocol

if TYPE_CHECKING:
    from .admin import AdminServant

__all__ = ["Adapter", "AdapterStatus", "Server", "serve", "serve_async"]

log = logging.getLogger("k8stars.tars.server")

_PING = "tars_ping"
_EMPTY: dict[str, str] = {}
_EMPTY_TUP = UniAttribute().encode()
_ONEWAY = 1
_TUP = 3
_monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class AdapterStatus:
    """A snapshot of one adapter: where it listens, its peers and calls in flight."""

    adapter: Adapter
    endpoint: Endpoint
    peers: tuple[str, ...]
    inflight: int


class _Caller(Protocol):
    """Where a request came from, as dispatch sees it: a TCP connection or one datagram."""

    received_at: float
    inflight: int
    paused: bool
    closing: bool

    @property
    def peer(self) -> tuple[str, int] | None: ...
    @property
    def peer_text(self) -> str: ...
    def send(self, frame: bytes) -> bool: ...
    def close(self) -> None: ...
    async def drain(self) -> None: ...
    def done_one(self) -> None: ...
    def drop(self, reason: str, exc: Exception) -> None: ...


class _Connection(FramedProtocol):
    """One accepted TCP connection of an adapter."""

    def __init__(self, adapter: _AdapterRuntime) -> None:
        super().__init__(self._frame, self._lost, max_frame_size=adapter.server.max_frame_size)
        self.adapter = adapter
        self.inflight = 0
        self.received_at = 0.0
        self.paused = False
        self.closing = False  # close as soon as no call is in flight
        self._batch: list[bytes] | None = None
        self._close_after_batch = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.adapter.accept(self)

    def data_received(self, data: bytes) -> None:
        # Answers produced while this chunk is handled leave in one write (and one syscall).
        self.received_at = _monotonic()
        batch = self._batch = []
        try:
            super().data_received(data)
        finally:
            self._batch = None
        if batch:
            super().send(batch[0] if len(batch) == 1 else b"".join(batch))
        if self._close_after_batch:
            self.close()

    def send(self, frame: bytes) -> bool:
        if self._batch is not None and self.is_open:
            self._batch.append(frame)
            return True
        return super().send(frame)

    def close(self) -> None:
        if self._batch is not None:
            self._close_after_batch = True
        else:
            super().close()

    def pause_writing(self) -> None:
        # The peer does not read its answers: stop reading its requests until it does.
        super().pause_writing()
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False
        if self.is_open:
            assert self.transport is not None
            self.transport.resume_reading()

    def _frame(self, frame: bytes) -> None:
        if self.is_open:  # frames after a fatal one in the same chunk are dropped
            self.adapter.dispatch(self, frame)

    def _lost(self, exc: Exception | None) -> None:
        self.adapter.lost(self, exc)

    def done_one(self) -> None:
        """A call of this connection finished; close it if it is draining."""
        self.inflight -= 1
        if self.closing and self.inflight == 0:
            self.close()

    def drop(self, reason: str, exc: Exception) -> None:
        """A frame that cannot be served: the stream is not trusted any more."""
        log.warning("%s: closing connection from %s: %s", self.adapter.name, self.peer_text,
                    reason)
        self.abort(exc)


class _DatagramCall:
    """One request datagram: answered to its sender in one datagram, nothing to close."""

    __slots__ = ("adapter", "addr", "body", "inflight", "peer", "received_at", "too_large")

    paused = False
    closing = False

    def __init__(self, adapter: _AdapterRuntime, body: bytes, addr: Any) -> None:
        self.adapter = adapter
        self.body = body
        self.addr = addr
        self.peer = (str(addr[0]), int(addr[1]))
        self.received_at = _monotonic()
        self.inflight = 0
        self.too_large = False

    @property
    def peer_text(self) -> str:
        return f"{self.peer[0]}:{self.peer[1]}"

    def send(self, frame: bytes) -> bool:
        endpoint = self.adapter.datagram
        if endpoint is None:
            return False
        try:
            return endpoint.send(frame, self.addr)
        except TarsFrameError as exc:
            self._answer_too_large(exc)
            return False

    def _answer_too_large(self, exc: TarsFrameError) -> None:
        """Log, and answer with a -2 error instead (once: if even that does not fit, drop)."""
        req = RequestPacket.tars_decode(self.body)  # it decoded before it could be answered
        adapter = self.adapter
        log.error("%s: the answer to %s.%s from %s is not sent: %s", adapter.name,
                  req.sServantName, req.sFuncName, self.peer_text, exc)
        if not self.too_large:
            self.too_large = True
            adapter.reply(self, req, ReturnCode.SERVER_ENCODE_ERR, b"",
                          f"the answer of {req.sFuncName} does not fit in a UDP datagram: {exc}")

    def close(self) -> None:
        """Nothing to close: the adapter's socket stays open."""

    async def drain(self) -> None:
        """Answers are never held back: UDP has no flow control to wait for."""

    def done_one(self) -> None:
        self.inflight -= 1
        if self.adapter.server.stopping:
            self.adapter.server._check_drained()

    def drop(self, reason: str, exc: Exception) -> None:
        log.warning("%s: dropping a datagram from %s: %s", self.adapter.name, self.peer_text,
                    reason)


class _AdapterRuntime:
    """The live state of one adapter: listener, connections, in-flight calls, dispatch."""

    #: What :meth:`invoke` makes each call's :class:`Current` with.
    current_type: Callable[[RequestPacket, str, _Caller], Current] = Current

    def __init__(self, server: Server, settings: Adapter, servant: Servant) -> None:
        self.server = server
        self.settings = settings
        self.name = settings.name
        self.servant_name = settings.servant
        self.servant = servant
        self.methods: dict[str, tuple[MethodEntry, Callable[..., Any]]] = {
            name: (entry, getattr(servant, entry.attr))
            for name, entry in type(servant).tars_methods.items()
        }
        self.queuecap = settings.queuecap
        self.queuetimeout = settings.queuetimeout
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.inflight = 0
        self.listener: asyncio.Server | None = None
        self.datagram: DatagramFrameProtocol | None = None
        self.bound = settings.endpoint

    # -- connections ---------------------------------------------------------------------

    def accept(self, conn: _Connection) -> None:
        host = conn.peer[0] if conn.peer else ""
        if self.server.stopping:
            conn.abort()
        elif len(self.connections) >= self.settings.maxconns:
            log.warning("%s: refusing connection from %s: maxconns %d reached", self.name,
                        conn.peer_text, self.settings.maxconns)
            conn.abort()
        elif not self.settings.allows(host):
            log.warning("%s: refusing connection from %s: not in allow list", self.name,
                        conn.peer_text)
            conn.abort()
        else:
            self.connections.add(conn)

    def lost(self, conn: _Connection, exc: Exception | None) -> None:
        self.connections.discard(conn)
        if exc is not None:
            log.debug("%s: connection from %s lost: %s", self.name, conn.peer_text, exc)
        if self.server.stopping:
            self.server._check_drained()

    def busy(self) -> bool:
        """Connections are open, or (udp) calls are in flight."""
        return bool(self.connections) or (self.datagram is not None and self.inflight > 0)

    def receive_datagram(self, body: bytes, addr: Any) -> None:
        """One request datagram (udp adapters); the transport checked its length prefix."""
        call = _DatagramCall(self, body, addr)
        if self.server.stopping:
            log.debug("%s: stopping, dropping a datagram from %s", self.name, call.peer_text)
        elif not self.settings.allows(call.peer[0]):
            log.warning("%s: dropping a datagram from %s: not in allow list", self.name,
                        call.peer_text)
        else:
            self.dispatch(call, body)

    def close_datagram(self) -> None:
        if self.datagram is not None:
            self.datagram.close()

    # -- dispatch ------------------------------------------------------------------------

    def dispatch(self, conn: _Caller, frame: bytes) -> None:
        try:
            req = RequestPacket.tars_decode(frame)
        except TarsDecodeError as exc:
            conn.drop(f"not a RequestPacket: {exc}", exc)
            return
        if req.sServantName != self.servant_name:
            self.reply(conn, req, ReturnCode.SERVER_NO_SERVANT_ERR, b"",
                       f"no servant {req.sServantName!r} here (adapter {self.name} serves "
                       f"{self.servant_name})")
            return
        func = req.sFuncName
        if func == _PING:
            self.reply(conn, req, 0, b"", "")
            return
        found = self.methods.get(func)
        if found is None:
            self.reply(conn, req, ReturnCode.SERVER_NO_FUNC_ERR, b"",
                       f"no function {func!r} in {self.servant_name}")
            return
        if self.inflight >= self.queuecap:
            self.reply(conn, req, ReturnCode.SERVER_OVERLOAD, b"",
                       f"server overload: {self.inflight} calls in flight (queuecap "
                       f"{self.queuecap})")
            return
        limit = self.queuetimeout
        timeout = req.iTimeout
        if timeout > 0 and (limit <= 0 or timeout < limit):
            limit = timeout
        if limit > 0 and (_monotonic() - conn.received_at) * 1000.0 > limit:
            self.reply(conn, req, ReturnCode.SERVER_QUEUE_TIMEOUT, b"",
                       f"server invoke timeout: queued longer than {limit} ms")
            return
        entry, fn = found
        try:
            if req.iVersion == 1:
                args = entry.decode_args(req.sBuffer)
            elif req.iVersion == _TUP:
                args = entry.decode_tup_args(req.sBuffer)
            else:
                self.reply(conn, req, ReturnCode.SERVER_DECODE_ERR, b"",
                           f"iVersion {req.iVersion} is not supported (only 1 and 3)")
                return
        except TarsDecodeError as exc:
            self.reply(conn, req, ReturnCode.SERVER_DECODE_ERR, b"",
                       f"cannot decode the arguments of {func}: {exc}")
            return
        # Each call runs in its own copy of the context: what a method sets there (current()
        # included) never leaks into the next call on the connection.
        copy_context().run(self.invoke, conn, req, entry, fn, args)

    def invoke(self, conn: _Caller, req: RequestPacket, entry: MethodEntry,
               fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        cur = self.current_type(req, self.name, conn)
        _CURRENT.set(cur)
        if entry.is_async:
            self.start_call(conn, req, entry, cur, fn(*args))
            return
        try:
            result = fn(*args)
        except Exception as exc:
            self.fail(conn, req, cur, exc)
            return
        if type(result) is types.CoroutineType:  # e.g. a sync wrapper around a coroutine
            self.start_call(conn, req, entry, cur, result)
            return
        self.answer(conn, req, entry, cur, result)

    def start_call(self, conn: _Caller, req: RequestPacket, entry: MethodEntry,
                   cur: Current, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine method; a Task is only kept for one that suspends."""
        loop = self.server.loop
        if sys.version_info >= (3, 12):
            if self.server.eager:
                self.inflight += 1
                conn.inflight += 1
                task = asyncio.Task(self.run(conn, req, entry, cur, coro), loop=loop,
                                    eager_start=True)
                if not task.done():
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                return
        elif self.server.eager:
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                self.answer(conn, req, entry, cur, stop.value)
                return
            except Exception as exc:
                self.fail(conn, req, cur, exc)
                return
            coro = _resume(coro, yielded)
        self.inflight += 1
        conn.inflight += 1
        task = loop.create_task(self.run(conn, req, entry, cur, coro))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, conn: _Caller, req: RequestPacket, entry: MethodEntry,
                  cur: Current, coro: Awaitable[Any]) -> None:
        try:
            try:
                result = await coro
            except Exception as exc:
                self.fail(conn, req, cur, exc)
                return
            if conn.paused:
                await conn.drain()
            self.answer(conn, req, entry, cur, result)
        finally:
            self.inflight -= 1
            conn.done_one()

    def answer(self, conn: _Caller, req: RequestPacket, entry: MethodEntry, cur: Current,
               result: Any) -> None:
        if req.cPacketType == _ONEWAY:
            return
        try:
            if req.iVersion == _TUP:
                buffer = entry.encode_tup_result(result)
            else:
                buffer = entry.encode_result(result)
        except TarsEncodeError as exc:
            log.error("%s.%s: cannot encode the result %.200r: %s", self.servant_name,
                      req.sFuncName, result, exc)
            self.reply(conn, req, ReturnCode.SERVER_ENCODE_ERR, b"",
                       f"cannot encode the result of {req.sFuncName}: {exc}", cur)
            return
        self.reply(conn, req, 0, buffer, "", cur)

    def fail(self, conn: _Caller, req: RequestPacket, cur: Current,
             exc: Exception) -> None:
        if isinstance(exc, TarsRpcError):
            code = exc.code if exc.code != 0 and exc.code >= -99 else -99
            desc = exc.message
            log.debug("%s.%s from %s: %s", self.servant_name, req.sFuncName, conn.peer_text, exc)
        else:
            code = ReturnCode.SERVER_UNKNOWN_ERR
            desc = f"{type(exc).__name__}: {exc}"
            log.error("%s.%s from %s raised %s", self.servant_name, req.sFuncName,
                      conn.peer_text, desc, exc_info=exc)
        self.reply(conn, req, code, b"", desc, cur)

    def reply(self, conn: _Caller, req: RequestPacket, ret: int, buffer: bytes, desc: str,
              cur: Current | None = None) -> None:
        if req.cPacketType == _ONEWAY:
            return
        context = status = None
        if cur is not None:
            context = cur._response_context
            status = cur._response_status
        if req.iVersion == _TUP:
            frame = _tup_response(req, ret, buffer, desc, context, status)
        else:
            frame = encode_frame(ResponsePacket(
                iVersion=req.iVersion, cPacketType=0, iRequestId=req.iRequestId,
                iMessageType=req.iMessageType, iRet=ret, sBuffer=buffer,
                status=status or _EMPTY, sResultDesc=desc, context=context or _EMPTY))
        conn.send(frame)
        if conn.closing and conn.inflight == 0:
            conn.close()

    def status(self) -> AdapterStatus:
        peers = tuple(sorted(c.peer_text for c in self.connections))
        return AdapterStatus(self.settings, self.bound, peers, self.inflight)


class _TimedCurrent(Current):
    """A :class:`Current` that remembers when its request's bytes arrived."""

    __slots__ = ("started",)

    def __init__(self, request: RequestPacket, adapter: str, conn: _Caller) -> None:
        super().__init__(request, adapter, conn)
        self.started = conn.received_at


class _MeasuredAdapter(_AdapterRuntime):
    """An adapter that records each call in :class:`~k8stars.tars.stats.ServantStats`: the
    time from the arrival of the request's bytes to its answer (or, oneway, its return).
    Used only when the server has stats, so a server without them does no extra work."""

    current_type = _TimedCurrent

    def __init__(self, server: Server, settings: Adapter, servant: Servant,
                 stats: ServantStats) -> None:
        super().__init__(server, settings, servant)
        self.stats = stats

    def answer(self, conn: _Caller, req: RequestPacket, entry: MethodEntry, cur: Current,
               result: Any) -> None:
        if req.cPacketType == _ONEWAY:  # never reaches reply()
            self.stats.record(req.sFuncName, 0, _monotonic() - self._started(conn, cur))
        super().answer(conn, req, entry, cur, result)

    def reply(self, conn: _Caller, req: RequestPacket, ret: int, buffer: bytes, desc: str,
              cur: Current | None = None) -> None:
        self.stats.record(req.sFuncName, ret, _monotonic() - self._started(conn, cur))
        super().reply(conn, req, ret, buffer, desc, cur)

    @staticmethod
    def _started(conn: _Caller, cur: Current | None) -> float:
        # without a Current the call is answered within dispatch: conn.received_at is its own
        return cur.started if isinstance(cur, _TimedCurrent) else conn.received_at


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Go on with a coroutine that was stepped once outside a task and yielded ``yielded``."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _tup_response(req: RequestPacket, ret: int, buffer: bytes, desc: str,
                  context: dict[str, str] | None, status: dict[str, str] | None) -> bytes:
    """TarsCpp's answer to a TUP call: a RequestPacket carrying the result map."""
    status = dict(status or ())
    if ret != 0:
        status["STATUS_RESULT_CODE"] = str(int(ret))
    if desc:
        status["STATUS_RESULT_DESC"] = desc
    return encode_frame(RequestPacket(
        iVersion=req.iVersion, cPacketType=0, iMessageType=req.iMessageType,
        iRequestId=req.iRequestId, sServantName=req.sServantName, sFuncName=req.sFuncName,
        sBuffer=buffer if ret == 0 and buffer else _EMPTY_TUP, iTimeout=0,
        context=context or _EMPTY, status=status))


def _as_adapter(name: str, where: Adapter | Endpoint | str) -> Adapter:
    if isinstance(where, Adapter):
        if where.servant != name:
            raise ValueError(f"adapter {where.name} serves {where.servant}, not {name}")
        return where
    endpoint = parse_endpoint(where) if isinstance(where, str) else where
    return Adapter(name=f"{name}Adapter", endpoint=endpoint, servant=name)


class Server:
    """Adapters and their servants, served over asyncio.

    ``max_frame_size`` bounds each request frame (longer ones close the connection).
    ``graceful_timeout`` (s) is the stop deadline used by signals and AdminObj ``shutdown``.

    ``eager`` runs a coroutine method's first step at once, in the read callback, and keeps
    a Task only for a call that suspends (saves about half the CPU of a call that completes
    at once). It defaults to on from Python 3.12, where it uses eager tasks. Before 3.12
    ``eager=True`` is an opt-in with one caveat: until the method first suspends it runs
    outside any task (``asyncio.current_task()`` is None, so ``asyncio.timeout()`` and
    ``TaskGroup`` fail there).

    ``admin`` is the :class:`~k8stars.tars.admin.AdminServant` when one is attached
    (:meth:`from_config` always attaches one).

    ``stats`` (a :class:`~k8stars.tars.stats.ServerStats`) records the calls of every servant
    added afterwards: counts by method and return code, and latency. Without it the dispatch
    path does no extra work.
    """

    def __init__(self, *, app: str = "", server: str = "",
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 graceful_timeout: float = 60.0, eager: bool | None = None,
                 stats: ServerStats | None = None) -> None:
        self.app = app
        self.stats = stats
        self.eager = sys.version_info >= (3, 12) if eager is None else eager
        self.server = server
        self.max_frame_size = max_frame_size
        self.graceful_timeout = graceful_timeout
        self.admin: AdminServant | None = None
        self.started_at: float | None = None
        self.stopping = False
        self._adapters: dict[str, _AdapterRuntime] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained: asyncio.Future[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._closed: asyncio.Event | None = None

    # -- configuration -------------------------------------------------------------------

    def add_servant(self, name: str, servant: Servant, where: Adapter | Endpoint | str) -> Adapter:
        """Serve ``servant`` as ``name`` on an adapter (or a new one for an endpoint)."""
        if self._loop is not None:
            raise RuntimeError("add servants before start()")
        if type(servant).tars_interface is None:
            raise TypeError(f"{type(servant).__qualname__} declares no interface")
        adapter = _as_adapter(name, where)
        if adapter.protocol != "tars":
            raise ValueError(f"adapter {adapter.name}: protocol {adapter.protocol} is not "
                             "supported yet")
        if adapter.endpoint.protocol not in ("tcp", "udp"):
            raise ValueError(f"adapter {adapter.name}: {adapter.endpoint.protocol} endpoints "
                             "are not supported yet (tcp and udp only)")
        if adapter.name in self._adapters:
            raise ValueError(f"adapter {adapter.name} is already defined")
        if any(a.servant_name == name for a in self._adapters.values()):
            raise ValueError(f"servant {name} is already served")
        if self.stats is None:
            runtime = _AdapterRuntime(self, adapter, servant)
        else:
            methods = (*type(servant).tars_methods, _PING)
            runtime = _MeasuredAdapter(self, adapter, servant, self.stats.servant(name, methods))
        self._adapters[adapter.name] = runtime
        return adapter

    def add_admin(self, endpoint: Endpoint | str,
                  config: ServerConfig | None = None) -> AdminServant:
        """Serve a new AdminObj on ``endpoint`` (the ``local`` endpoint) and return it."""
        from .admin import ADMIN_SERVANT, AdminServant

        if isinstance(endpoint, str):
            endpoint = parse_endpoint(endpoint)
        admin = AdminServant(self, config=config)
        self.add_servant(ADMIN_SERVANT, admin, Adapter(
            name="AdminAdapter", endpoint=endpoint, servant=ADMIN_SERVANT))
        self.admin = admin
        return admin

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the server is not started")
        return self._loop

    @property
    def adapters(self) -> list[Adapter]:
        return [rt.settings for rt in self._adapters.values()]

    def endpoint(self, servant: str) -> Endpoint:
        """Where ``servant`` listens (with the real port once started)."""
        for rt in self._adapters.values():
            if rt.servant_name == servant:
                return rt.bound
        raise KeyError(f"no servant {servant!r}")

    def proxy(self, servant: str) -> str:
        """``Servant@endpoint``, ready for a client."""
        return f"{servant}@{self.endpoint(servant).render()}"

    def status(self) -> list[AdapterStatus]:
        """One snapshot per adapter, in the order they were added."""
        return [rt.status() for rt in self._adapters.values()]

    @property
    def uptime(self) -> float:
        """Seconds since start() (0 before)."""
        return 0.0 if self.started_at is None else _monotonic() - self.started_at

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on every adapter's endpoint (port 0 picks a free port)."""
        if self._loop is not None:
            raise RuntimeError("the server was already started")
        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        try:
            for rt in self._adapters.values():
                await self._listen(rt)
        except BaseException:
            for rt in self._adapters.values():
                if rt.listener is not None:
                    rt.listener.close()
                rt.close_datagram()
            raise
        self.started_at = _monotonic()

    async def _listen(self, rt: _AdapterRuntime) -> None:
        ep = rt.settings.endpoint
        host = ep.bind_host or ep.host
        if ep.protocol == "udp":
            port = await self._listen_udp(rt, host, ep.port)
        else:
            rt.listener = await self.loop.create_server(
                lambda: _Connection(rt), host, ep.port, reuse_address=True, backlog=1024)
            port = rt.listener.sockets[0].getsockname()[1]
        rt.bound = replace(ep, port=port)
        log.info("%s: serving %s on %s", rt.name, rt.servant_name, rt.bound)

    async def _listen_udp(self, rt: _AdapterRuntime, host: str, port: int) -> int:
        """Open the adapter's datagram socket; the port it got."""
        size = min(self.max_frame_size, MAX_DATAGRAM_SIZE)
        _, protocol = await self.loop.create_datagram_endpoint(
            lambda: DatagramFrameProtocol(rt.receive_datagram, max_frame_size=size,
                                          name=rt.name),
            local_addr=(host, port))
        rt.datagram = protocol
        assert protocol.local is not None
        return protocol.local[1]

    def request_stop(self, deadline: float | None = None) -> asyncio.Task[None]:
        """Start a graceful stop in the background (signals, AdminObj ``shutdown``)."""
        if self._stop_task is None:
            self._stop_task = self.loop.create_task(
                self._stop(self.graceful_timeout if deadline is None else deadline))
        return self._stop_task

    async def stop(self, deadline: float | None = 10.0) -> None:
        """Stop accepting, let in-flight calls finish for up to ``deadline`` seconds, close."""
        if self._loop is None:
            return
        await asyncio.shield(self.request_stop(deadline))

    async def _stop(self, deadline: float | None) -> None:
        self.stopping = True
        log.info("stopping: closing %d listener(s)", len(self._adapters))
        for rt in self._adapters.values():
            if rt.listener is not None:
                rt.listener.close()
            for conn in list(rt.connections):
                conn.closing = True
                if conn.inflight == 0:
                    conn.close()
        self._drained = self.loop.create_future()
        self._check_drained()
        try:
            await asyncio.wait_for(asyncio.shield(self._drained), deadline)
        except asyncio.TimeoutError:
            self._abort_all(deadline)
        for rt in self._adapters.values():
            if rt.listener is not None:
                await rt.listener.wait_closed()
            if rt.datagram is not None:
                rt.datagram.close()
                await rt.datagram.wait_closed()
        assert self._closed is not None
        self._closed.set()
        log.info("stopped")

    def _abort_all(self, deadline: float | None) -> None:
        tasks = [t for rt in self._adapters.values() for t in rt.tasks]
        conns = [c for rt in self._adapters.values() for c in rt.connections]
        log.warning("stop deadline of %s s passed: cancelling %d call(s), dropping %d "
                    "connection(s)", deadline, len(tasks), len(conns))
        for task in tasks:
            task.cancel()
        for conn in conns:
            conn.abort()

    def _check_drained(self) -> None:
        drained = self._drained
        if drained is not None and not drained.done() and not any(
                rt.busy() for rt in self._adapters.values()):
            drained.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until a stop has finished."""
        if self._closed is None:
            raise RuntimeError("the server is not started")
        await self._closed.wait()

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until stopped."""
        if self._loop is None:
            await self.start()
        await self.wait_closed()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- from a config file --------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: ServerConfig, servants: Mapping[str, Servant]) -> Server:
        """A server for the adapters of ``cfg`` and AdminObj on ``local``.

        Every servant needs an adapter in the config (ConfigError otherwise); adapters
        without a servant implementation are skipped with a warning.
        """
        from .admin import AdminServant

        server = cls(app=cfg.app, server=cfg.server, max_frame_size=cfg.max_packet_length,
                     graceful_timeout=cfg.gracedown_timeout / 1000.0)
        for name in servants:
            if cfg.adapter_for(name) is None:
                raise ConfigError(f"no adapter serves {name}", cfg.source)
        for adapter in cfg.adapters:
            impl = servants.get(adapter.servant)
            if impl is None:
                log.warning("adapter %s: no implementation for %s, not served", adapter.name,
                            adapter.servant)
                continue
            server.add_servant(adapter.servant, impl, adapter)
        if cfg.local is not None:
            server.add_admin(cfg.local, cfg)
        else:  # not served, but the application may still register commands and hooks
            server.admin = AdminServant(server, config=cfg)
        return server


def _config_path(argv: Sequence[str] | None) -> str:
    parser = argparse.ArgumentParser(description="Run a TARS server from its config file.")
    parser.add_argument("--config", required=True, help="TARS config file")
    args, _ = parser.parse_known_args(argv)
    return str(args.config)


def _setup_logs(cfg: ServerConfig) -> None:
    if cfg.logpath:
        setup_logging(cfg.logpath, cfg.app, cfg.server, level=cfg.log_level,
                      max_bytes=cfg.log_size, backups=cfg.log_num)
    else:
        if not logging.getLogger().handlers:
            logging.basicConfig(stream=sys.stderr)
        set_log_level(cfg.log_level)


async def serve_async(
    servants: Mapping[str, Servant],
    argv: Sequence[str] | None = None,
    *,
    configure: Callable[[Server], object] | None = None,
) -> int:
    """Serve ``servants`` as configured by ``--config=FILE`` until SIGTERM/SIGINT or an
    AdminObj ``shutdown``; ``configure(server)`` (sync or async) runs before start, e.g. to
    register admin commands. Returns the exit status."""
    cfg = ServerConfig.load(_config_path(sys.argv[1:] if argv is None else argv))
    _setup_logs(cfg)
    server = Server.from_config(cfg, servants)
    if configure is not None:
        result = configure(server)
        if inspect.isawaitable(result):
            await result
    await server.start()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, _on_signal, server, sig)
    log.info("%s started (pid %d)", cfg.name, os.getpid())
    try:
        await server.wait_closed()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return 0


def _on_signal(server: Server, sig: signal.Signals) -> None:
    log.info("received %s: stopping", sig.name)
    server.request_stop()


def serve(
    servants: Mapping[str, Servant],
    argv: Sequence[str] | None = None,
    *,
    configure: Callable[[Server], object] | None = None,
) -> int:
    """Blocking :func:`serve_async`; a bad config file prints its error and returns 1."""
    try:
        return asyncio.run(serve_async(servants, argv, configure=configure))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 1

