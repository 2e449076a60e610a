"""TARS RPC client: a :class:`Communicator` and the :class:`ServantProxy` objects it makes.

::

    comm = Communicator(locator="tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890")
    calc = comm.proxy(idl.interface("Interop.Calc"), "App.Server.CalcObj",
                      idempotent={"add"})     # or True: every method
    await calc.add(1, 2)                      # 3
    await calc.divide(7, 2)                   # (ret, quotient, remainder)
    await calc.touch("x", _oneway=True)       # no reply awaited
    await comm.close()

A call returns what the server wrote: the return value (if not void) followed by the out
parameters, as None, the single value or a tuple. Call options: ``_timeout`` (seconds),
``_context`` (dict sent in the packet), ``_oneway`` and ``_idempotent`` (overrides the proxy's
``idempotent`` setting for this call).

Design: one TCP connection (or UDP socket) per endpoint, shared by all proxies of a
communicator. Calls on a connection are multiplexed by ``iRequestId``: the transport's frame
callback resolves the matching future of a ``dict[int, Future]``; at its deadline a call fails
with TarsTimeoutError and a late answer is dropped. Calls with equal timeouts expire in the
order they were made, so each timeout value has one FIFO queue and one timer, not a timer per
call. Proxies round-robin over their object's endpoints, skipping endpoints that failed to connect
until their backoff (0.5 s doubling to 30 s) has passed; when all are down the least recently
failed one is tried; the next call after a lost connection reconnects. A connection on which
two calls in a row timed out without anything at all arriving is presumed dead and closed (a
peer or path gone silently, where TCP alone would retransmit for minutes).

Failover: when a connection is lost, each of its pending calls is sent again on another up
endpoint of its proxy (round robin, each endpoint at most once, within the call's original
deadline) if that is safe: always when its request was never handed to the transport (still
queued, or the connection was already closed), and when it was in flight only if the call is
idempotent. Otherwise, or when no endpoint is left, it fails with TarsConnectError naming
what was tried. Oneway calls, timeouts and answers with an error code are never retried.
A communicator belongs to one event loop.

UDP endpoints (``udp -h H -p P``): one socket per endpoint, connected to it, each request one
datagram, answers matched by request id as on TCP, proxies round-robin over their tcp and udp
endpoints alike. There is no connection to lose, so nothing is resent: a call without an
answer times out, and a socket error (an ICMP port unreachable) fails the endpoint's pending
calls with TarsConnectError and marks it down like a refused connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections import deque
from collections.abc import Coroutine, Iterable
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from .client_config import ClientConfig
from .codec import Struct
from .config import TarsConfig
from .endpoint import Endpoint, ProxySpec, parse_proxy
from .errors import (
    TarsConnectError,
    TarsDecodeError,
    TarsFrameError,
    TarsNoEndpointError,
    TarsRemoteError,
    TarsRpcError,
    TarsTimeoutError,
)
from .idl.loader import RETURN_FIELD, Interface, Method, framework
from .locator import EndpointSource, Locator, RegistryEndpoints, StaticEndpoints
from .packet import (
    MessageType,
    PacketType,
    RequestPacket,
    ResponsePacket,
    ReturnCode,
    Version,
    encode_frame,
)
from .transport import MAX_DATAGRAM_SIZE, DatagramFrameProtocol, FramedProtocol

__all__ = ["ClientConfig", "Communicator", "RemoteMethod", "ServantProxy"]

log = logging.getLogger("k8stars.tars.client")

S = TypeVar("S", bound=Struct)
T = TypeVar("T")

_MAX_REQUEST_ID = 2**31 - 1
_TARS_VERSION = int(Version.TARS)
_NORMAL = int(PacketType.NORMAL)
_ONEWAY = int(PacketType.ONEWAY)
_NO_CONTEXT: dict[str, str] = {}
_SETNAME_KEY = "STATUS_SETNAME_VALUE"
#: Distinct timeout values that get a FIFO queue; calls with further values get their own timer.
_MAX_TIMEOUT_QUEUES = 32
#: Expire calls this early (s) rather than re-arming a timer the loop fires a hair early.
_TIMER_SLACK = 0.001
#: Frames collected before a write is forced within one loop iteration.
_MAX_BATCH = 64

_Entry = tuple[float, "asyncio.Future[ResponsePacket]", "_Connection", int, "ServantProxy", str,
               float]


class _ConnectionLost(TarsConnectError):
    """A call's connection closed before its answer (internal: callers see TarsConnectError).

    ``sent`` False: the request never reached the transport, so the server cannot have run it.
    ``resend`` False: never sent again (udp: there was no connection to lose).
    """

    def __init__(self, message: str, *, sent: bool, resend: bool = True) -> None:
        super().__init__(message)
        self.sent = sent
        self.resend = resend


class _Link(Protocol):
    """What a connection needs of its transport protocol (stream or datagram)."""

    def send(self, frame: bytes) -> bool: ...
    async def drain(self) -> None: ...
    def abort(self, exc: Exception | None = None) -> None: ...


class _TimeoutQueue:
    """Deadlines of calls made with one timeout value, in call order, behind a single timer.

    Answered calls are dropped from the head as new ones arrive, so the queue holds about
    the calls in flight.
    """

    __slots__ = ("_entries", "_loop", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._entries: deque[_Entry] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, entry: _Entry) -> bool:
        """Queue a call; False if its deadline is before the last one's (it waited longer
        for a connection than the calls queued after it) and it needs its own timer."""
        entries = self._entries
        while entries and entries[0][1].done():
            entries.popleft()
        if entries and entry[0] < entries[-1][0]:
            return False
        entries.append(entry)
        if self._timer is None:
            self._timer = self._loop.call_at(entry[0], self._fire)
        return True

    def _fire(self) -> None:
        self._timer = None
        entries = self._entries
        limit = self._loop.time() + _TIMER_SLACK
        while entries:
            deadline, fut, conn, rid, proxy, func, timeout = entries[0]
            if not fut.done():
                if deadline > limit:
                    self._timer = self._loop.call_at(deadline, self._fire)
                    return
                conn.expire(rid, proxy, func, timeout)
            entries.popleft()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._entries.clear()


class _Connection:
    """One connection to a peer: the pending calls by request id."""

    __slots__ = ("_loop", "_next_id", "_out", "_silent_since", "closed", "last_read",
                 "max_frame_size", "peer", "pending", "protocol")

    def __init__(self, peer: _Peer, loop: asyncio.AbstractEventLoop,
                 max_frame_size: int) -> None:
        self.peer = peer
        self._loop = loop
        self._out: list[bytes] = []
        self.max_frame_size = max_frame_size
        self.pending: dict[int, asyncio.Future[ResponsePacket]] = {}
        self.protocol: _Link | None = None
        self.closed = False
        self.last_read = loop.time()  # when a frame last arrived (or the connection opened)
        self._silent_since: float | None = None  # a timeout that saw nothing arrive, at
        self._next_id = 1

    def make_protocol(self) -> asyncio.BaseProtocol:
        self.protocol = protocol = FramedProtocol(self._on_frame, self._on_lost,
                                                  max_frame_size=self.max_frame_size)
        return protocol

    def write(self, frame: bytes) -> bool:
        """Queue a frame; frames queued in one loop iteration go out in one write."""
        if self.closed:
            return False
        out = self._out
        if not out:
            self._loop.call_soon(self._flush)
        out.append(frame)
        if len(out) >= _MAX_BATCH:
            self._flush()  # a caller that never yields (oneway loop) still hits drain()
        return True

    def _flush(self) -> None:
        out = self._out
        if out and self.protocol is not None:
            if self.protocol.send(out[0] if len(out) == 1 else b"".join(out)):
                out.clear()
            else:
                # The transport is closing: keep the frames for _on_lost (due soon) to fail
                # their calls as never sent, and accept no more.
                self.closed = True

    def new_id(self) -> int:
        """The next request id: never 0, wrapping from 2^31-1 to 1, not in use."""
        rid = self._next_id
        self._next_id = rid + 1 if rid < _MAX_REQUEST_ID else 1
        if rid in self.pending:
            while rid in self.pending:
                rid = rid + 1 if rid < _MAX_REQUEST_ID else 1
            self._next_id = rid + 1 if rid < _MAX_REQUEST_ID else 1
        return rid

    def _on_frame(self, body: bytes) -> None:
        self.last_read = self._loop.time()
        try:
            resp = ResponsePacket.tars_decode(body)
        except TarsDecodeError as exc:
            self._undecodable(exc)
            return
        fut = self.pending.pop(resp.iRequestId, None)
        if fut is None:
            log.debug("dropping response id %d from %s: no call waits for it",
                      resp.iRequestId, self.peer.label)
        elif not fut.done():
            fut.set_result(resp)

    def _undecodable(self, exc: TarsDecodeError) -> None:
        log.warning("closing connection to %s: undecodable response packet: %s",
                    self.peer.label, exc)
        assert self.protocol is not None
        self.protocol.abort(exc)

    def _on_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.peer.connection_lost(self)
        pending, self.pending = self.pending, {}
        unsent = self._unsent_ids()
        lost = f"connection to {self.peer.label} lost"
        detail = "" if exc is None else (
            f": {exc.message if isinstance(exc, TarsRpcError) else exc}")
        if pending:
            log.info("%s%s; failing %d pending call(s), %d of them not sent", lost, detail,
                     len(pending), len(unsent))
        for rid, fut in pending.items():
            if not fut.done():
                if rid in unsent:
                    fut.set_exception(_ConnectionLost(f"{lost} before sending{detail}",
                                                      sent=False))
                else:
                    fut.set_exception(_ConnectionLost(lost + detail, sent=True))

    def _unsent_ids(self) -> set[int]:
        """Empty the output queue; the request ids of the frames it held (never sent)."""
        out = self._out
        ids = {RequestPacket.tars_decode(frame[4:]).iRequestId for frame in out}
        out.clear()
        return ids

    def expire(self, rid: int, proxy: ServantProxy, func: str, timeout: float) -> None:
        """Timer callback: the call ``rid`` got no answer in time."""
        fut = self.pending.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_exception(TarsTimeoutError(
                f"{proxy.obj_name}.{func} at {self.peer.label}: "
                f"no response within {round(timeout * 1000)} ms"))
            self._check_silence(timeout)

    def _check_silence(self, timeout: float) -> None:
        """After a timeout. A call that timed out although nothing at all arrived during its
        wait, sent after an earlier such timeout with nothing arriving since, means the peer
        or the path to it is gone without a FIN or RST (partition, dead host): close, so that
        the next call opens a connection that gets through as soon as the network does instead
        of waiting out TCP's retransmissions. A slow server that answers late resets this."""
        now = self._loop.time()
        if now - self.last_read < timeout or self.closed:
            return
        earlier = self._silent_since
        if earlier is None or earlier < self.last_read:
            self._silent_since = now
            return
        if now - timeout < earlier:  # sent before the earlier timeout: no new evidence
            return
        log.warning("closing connection to %s: calls time out and nothing arrived for %.1f s",
                    self.peer.label, now - self.last_read)
        self.close(f"nothing received for {now - self.last_read:.1f} s")

    def close(self, reason: str) -> None:
        if self.protocol is not None:  # no-op once lost; ``closed`` may be set before that
            self.protocol.abort(TarsConnectError(reason))


def _reason(exc: BaseException) -> str:
    """A short text for why a connection or socket failed."""
    if isinstance(exc, TarsRpcError):
        return exc.message
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class _DatagramConnection(_Connection):
    """A udp peer's socket, connected to it: each request leaves at once as one datagram.

    Answers are matched by request id and calls expire as on TCP; there is no connection to
    lose, so nothing is resent and silence closes nothing. A socket error (an ICMP port
    unreachable) fails the pending calls and marks the peer down.
    """

    __slots__ = ()

    def make_protocol(self) -> DatagramFrameProtocol:
        self.protocol = protocol = DatagramFrameProtocol(
            self._on_datagram, self._on_error, self._on_lost,
            max_frame_size=min(self.max_frame_size, MAX_DATAGRAM_SIZE), name=self.peer.label)
        return protocol

    def write(self, frame: bytes) -> bool:
        """Send ``frame`` as one datagram; a request too large for one fails its call."""
        protocol = self.protocol
        if self.closed or protocol is None:
            return False
        try:
            return protocol.send(frame)
        except TarsFrameError as exc:
            raise self._unsendable(frame, exc) from None

    def _unsendable(self, frame: bytes, exc: TarsFrameError) -> TarsRpcError:
        req = RequestPacket.tars_decode(frame[4:])
        self.pending.pop(req.iRequestId, None)
        return TarsRpcError(f"{req.sServantName}.{req.sFuncName} at {self.peer.label}: "
                            f"request not sent: {exc}", code=ReturnCode.SEND_REQUEST_ERR)

    def _on_datagram(self, body: bytes, addr: Any) -> None:
        self.peer.failures = 0  # it answers: a later error starts the backoff afresh
        self._on_frame(body)

    def _undecodable(self, exc: TarsDecodeError) -> None:
        log.warning("dropping a datagram from %s: undecodable response packet: %s",
                    self.peer.label, exc)

    def _check_silence(self, timeout: float) -> None:
        """Silence closes nothing: there is no connection to replace, calls just time out."""

    def _on_error(self, exc: OSError) -> None:
        if self.closed:
            return
        reason = _reason(exc)
        self.peer._failed(self._loop.time(), f"{self.peer.label}: {reason}")
        self.close(reason)

    def _on_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.peer.connection_lost(self)
        pending, self.pending = self.pending, {}
        message = f"{self.peer.label}: {'socket closed' if exc is None else _reason(exc)}"
        if pending:
            log.info("%s; failing %d pending call(s)", message, len(pending))
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(_ConnectionLost(message, sent=True, resend=False))


class _Peer:
    """An endpoint (host, port) of a communicator: its connection and up/down state."""

    __slots__ = ("_comm", "_connecting", "conn", "failed_at", "failures", "host", "label",
                 "port", "retry_at")

    _connection_class: type[_Connection] = _Connection

    def __init__(self, comm: Communicator, host: str, port: int) -> None:
        self._comm = comm
        self.host = host
        self.port = port
        self.label = f"{host}:{port}"
        self.conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection | TarsConnectError] | None = None
        self.failures = 0
        self.retry_at = 0.0  # 0: up; else the loop time from which a retry is allowed
        self.failed_at = 0.0

    def is_up(self, now: float) -> bool:
        return self.conn is not None or self.retry_at <= now

    async def connect(self, deadline: float) -> _Connection:
        """The open connection, connecting first (one attempt shared by concurrent calls)."""
        conn = self.conn
        if conn is not None:
            return conn
        loop = self._comm._loop
        assert loop is not None
        task = self._connecting
        if task is None:
            task = self._connecting = self._comm._spawn(self._open())
        try:
            result = await asyncio.wait_for(asyncio.shield(task), deadline - loop.time())
        except asyncio.TimeoutError:
            raise TarsTimeoutError(f"connecting to {self.label} did not finish in time"
                                   ) from None
        except asyncio.CancelledError:
            if task.cancelled() and self._comm._closed:
                raise TarsConnectError(f"cannot connect to {self.label}: communicator closed"
                                       ) from None
            raise
        if isinstance(result, TarsConnectError):
            raise TarsConnectError(result.message)
        return result

    async def _open(self) -> _Connection | TarsConnectError:
        comm = self._comm
        loop = comm._loop
        assert loop is not None
        conn = self._connection_class(self, loop, comm.config.max_frame_size)
        try:
            await asyncio.wait_for(self._establish(loop, conn),
                                   comm.config.connect_timeout / 1000)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else _reason(exc)
            return self._failed(loop.time(), f"cannot connect to {self.label}: {reason}")
        finally:
            self._connecting = None
        if comm._closed:
            conn.close("communicator closed")
            return TarsConnectError(f"cannot connect to {self.label}: communicator closed")
        self._opened(conn)
        return conn

    def _opened(self, conn: _Connection) -> None:
        self.conn = conn
        self.failures = 0
        self.retry_at = 0.0

    async def _establish(self, loop: asyncio.AbstractEventLoop, conn: _Connection) -> None:
        await loop.create_connection(conn.make_protocol, self.host, self.port)

    def _failed(self, now: float, reason: str) -> TarsConnectError:
        config = self._comm.config
        self.failures += 1
        delay = min(config.reconnect_backoff_min * 2 ** min(self.failures - 1, 20),
                    config.reconnect_backoff_max) / 1000
        self.failed_at = now
        self.retry_at = now + delay
        log.warning("%s; endpoint marked down for %.1f s", reason, delay)
        return TarsConnectError(reason)

    def connection_lost(self, conn: _Connection) -> None:
        if self.conn is conn:
            self.conn = None

    def close(self, reason: str) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self.conn is not None:
            self.conn.close(reason)


class _DatagramPeer(_Peer):
    """A udp endpoint: its socket opens at once (no handshake), errors mark it down."""

    __slots__ = ()

    _connection_class = _DatagramConnection

    def __init__(self, comm: Communicator, host: str, port: int) -> None:
        super().__init__(comm, host, port)
        self.label = f"udp {host}:{port}"

    async def _establish(self, loop: asyncio.AbstractEventLoop, conn: _Connection) -> None:
        await loop.create_datagram_endpoint(conn.make_protocol,
                                            remote_addr=(self.host, self.port))

    def _opened(self, conn: _Connection) -> None:
        """A new socket proves nothing: the backoff restarts only once an answer arrives."""
        self.conn = conn
        self.retry_at = 0.0


class RemoteMethod:
    """A bound interface method:
    ``await method(*args, _timeout=, _context=, _oneway=, _idempotent=)``."""

    __slots__ = ("_args_cls", "_getter", "_n_args", "_names", "_proxy", "_result_cls",
                 "method", "name")

    def __init__(self, proxy: ServantProxy, method: Method) -> None:
        self._proxy = proxy
        self.method = method
        self.name = method.name
        self._names = tuple(p.attr for p in method.in_params)
        self._n_args = len(self._names)
        self._args_cls = method.args
        outputs = [p.attr for p in method.out_params]
        if method.return_type is not None:
            outputs.insert(0, RETURN_FIELD)
        self._result_cls: type[Struct] | None = method.result if outputs else None
        self._getter = attrgetter(*outputs) if outputs else None

    def __repr__(self) -> str:
        return f"<RemoteMethod {self._proxy.obj_name}.{self.name}>"

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        names = self._names
        if len(args) > len(names):
            raise TypeError(f"{self.name}() takes {len(names)} argument(s), {len(args)} given")
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"{self.name}() has no in parameter {key!r}")
            if key in values:
                raise TypeError(f"{self.name}() got two values for {key!r}")
            values[key] = value
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"{self.name}() is missing argument(s): {', '.join(missing)}")
        return values

    async def __call__(self, *args: Any, _timeout: float | None = None,
                       _context: dict[str, str] | None = None, _oneway: bool = False,
                       _idempotent: bool | None = None, **kwargs: Any) -> Any:
        if kwargs or len(args) != self._n_args:
            values = self._bind(args, kwargs)
        else:
            values = dict(zip(self._names, args, strict=False))
        body = self._args_cls(**values).tars_encode()
        result = await self._proxy._call(self.name, body, _timeout, _context, _oneway,
                                         self._result_cls, True, _idempotent)
        if result is None or self._getter is None:
            return None
        return self._getter(result)


def _idempotent_setting(interface: Interface | None, idempotent: bool | Iterable[str]
                        ) -> bool | frozenset[str]:
    """``idempotent`` as a bool or a set of method names checked against ``interface``."""
    if isinstance(idempotent, bool):
        return idempotent
    names = frozenset((idempotent,) if isinstance(idempotent, str) else idempotent)
    if interface is not None:
        unknown = names - interface.methods.keys() - {"tars_ping"}
        if unknown:
            raise ValueError(f"{interface.qualified_name} has no method(s) "
                             f"{', '.join(sorted(unknown))} to mark idempotent")
    return names


class ServantProxy:
    """Calls to one object (servant name) through a :class:`Communicator`.

    The interface's methods are attributes (``await proxy.add(1, 2)``); a method whose name
    clashes with this class's API is reached through :meth:`method`. ``idempotent`` (True, or
    the names of the methods that are) lets calls lost in flight be retried on another
    endpoint; the per-call option ``_idempotent`` overrides it.
    """

    def __init__(self, comm: Communicator, interface: Interface | None, obj_name: str,
                 source: EndpointSource, idempotent: bool | Iterable[str] = False) -> None:
        self._comm = comm
        self._idempotent = _idempotent_setting(interface, idempotent)
        self.interface = interface
        self.obj_name = obj_name
        self._source = source
        self._version = -1
        self._peers: list[_Peer] = []
        self._rr = 0
        config = comm.config
        self._timeout = config.sync_invoke_timeout / 1000
        self._timeout_ms = config.sync_invoke_timeout
        self._queue: _TimeoutQueue | None = None
        self._status: dict[str, str] = {}
        self._message_type = 0
        if config.set_division is not None:
            self._status = {_SETNAME_KEY: config.set_division}
            self._message_type = int(MessageType.SETNAME)
        self._methods: dict[str, RemoteMethod] = {}
        if interface is not None:
            for name, method in interface.methods.items():
                remote = self._methods[name] = RemoteMethod(self, method)
                if not name.startswith("_") and not hasattr(type(self), name):
                    self.__dict__[name] = remote

    def __getattr__(self, name: str) -> RemoteMethod:
        methods = self.__dict__.get("_methods")
        if methods is not None and name in methods:
            return methods[name]  # type: ignore[no-any-return]
        raise AttributeError(f"{type(self).__name__} for {self.__dict__.get('obj_name')} "
                             f"has no method {name!r}")

    def __repr__(self) -> str:
        return f"<ServantProxy {self.obj_name}>"

    def method(self, name: str) -> RemoteMethod:
        """The interface method ``name``."""
        try:
            return self._methods[name]
        except KeyError:
            iface = self.interface.qualified_name if self.interface else "no interface"
            raise AttributeError(f"{iface} has no method {name!r}") from None

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints currently known for the object (empty before the first lookup)."""
        return self._source.endpoints or ()

    async def refresh_endpoints(self) -> tuple[Endpoint, ...]:
        """Look the object up in the registry now (direct proxies: their fixed list)."""
        source = self._source
        if isinstance(source, RegistryEndpoints):
            self._comm._bind_loop()
            await source.refresh()
        return source.endpoints or ()

    async def invoke(self, func: str, args: Struct | None, result_cls: type[S] | None, *,
                     timeout: float | None = None, context: dict[str, str] | None = None,
                     oneway: bool = False, idempotent: bool | None = None) -> S | None:
        """Call ``func`` with an args struct; the decoded result struct (None if no result)."""
        body = args.tars_encode() if args is not None else b""
        result: S | None = await self._call(func, body, timeout, context, oneway, result_cls,
                                            True, idempotent)
        return result

    async def invoke_raw(self, func: str, body: bytes, *, timeout: float | None = None,
                         context: dict[str, str] | None = None, oneway: bool = False,
                         check: bool = True, idempotent: bool | None = None
                         ) -> ResponsePacket | None:
        """Call ``func`` with an encoded ``sBuffer``; the ResponsePacket (None if oneway).

        With ``check=False`` a non-zero ``iRet`` is returned instead of raised.
        """
        resp: ResponsePacket | None = await self._call(func, body, timeout, context, oneway,
                                                       None, check, idempotent)
        return resp

    async def tars_ping(self, *, timeout: float | None = None, oneway: bool = False) -> None:
        """Send ``tars_ping``; returns when the server answers (at once if ``oneway``)."""
        await self._call("tars_ping", b"", timeout, None, oneway, None)

    # -- the call path ----------------------------------------------------------------------

    async def _call(self, func: str, body: bytes, timeout: float | None,
                    context: dict[str, str] | None, oneway: bool,
                    result_cls: type[Struct] | None, check: bool = True,
                    idempotent: bool | None = None) -> Any:
        """Send one request; the decoded ``result_cls`` or, without one, the ResponsePacket.

        A lost connection hands the call to :meth:`_fail_over` (``idempotent`` None: the
        proxy's setting); nothing on the successful path serves failover.
        """
        comm = self._comm
        loop = comm._loop
        if loop is None or comm._closed:
            loop = comm._bind_loop()
        if timeout is None:
            timeout, timeout_ms = self._timeout, self._timeout_ms
        elif timeout > 0:
            timeout_ms = max(1, round(timeout * 1000))
        else:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        deadline = loop.time() + timeout
        peer = self._pick(loop)
        if peer is None:
            peer = await self._pick_slow(loop, deadline)
        conn = peer.conn
        if conn is None:
            conn = await self._connect(loop, peer, deadline)
            peer = conn.peer
        rid = conn.new_id()
        frame = encode_frame(RequestPacket(
            iVersion=_TARS_VERSION, cPacketType=_ONEWAY if oneway else _NORMAL,
            iMessageType=self._message_type, iRequestId=rid, sServantName=self.obj_name,
            sFuncName=func, sBuffer=body, iTimeout=timeout_ms,
            context=_NO_CONTEXT if context is None else context, status=self._status))
        if oneway:
            if not conn.write(frame):
                raise TarsConnectError(f"{self.obj_name}.{func}: connection to {peer.label} "
                                       "closed before sending")
            assert conn.protocol is not None
            await conn.protocol.drain()
            return None
        fut: asyncio.Future[ResponsePacket] = loop.create_future()
        pending = conn.pending
        pending[rid] = fut
        if not conn.write(frame):
            fut.set_exception(_ConnectionLost(f"connection to {peer.label} closed before "
                                              "sending", sent=False))
        if timeout == self._timeout:
            queue = self._queue
            if queue is None:
                queue = self._queue = comm._timeout_queue(timeout)
        else:
            queue = comm._timeout_queue(timeout)
        if queue is not None and queue.add((deadline, fut, conn, rid, self, func, timeout)):
            try:
                resp = await fut
            except _ConnectionLost as lost:
                resp, peer = await self._fail_over(loop, func, body, context, timeout,
                                                   deadline, idempotent, peer, lost)
            finally:
                pending.pop(rid, None)
        else:
            timer = loop.call_at(deadline, conn.expire, rid, self, func, timeout)
            try:
                resp = await fut
            except _ConnectionLost as lost:
                timer.cancel()
                resp, peer = await self._fail_over(loop, func, body, context, timeout,
                                                   deadline, idempotent, peer, lost)
            finally:
                timer.cancel()
                pending.pop(rid, None)
        if resp.iRet != 0 and check:
            desc = resp.sResultDesc or f"server returned code {resp.iRet}"
            raise TarsRemoteError(f"{self.obj_name}.{func} at {peer.label}: {desc}",
                                  code=resp.iRet)
        if result_cls is None:
            return resp
        try:
            return result_cls.tars_decode(resp.sBuffer)
        except TarsDecodeError as exc:
            raise TarsRpcError(f"{self.obj_name}.{func} at {peer.label}: cannot decode the "
                               f"response: {exc}", code=ReturnCode.CLIENT_DECODE_ERR) from None

    def _pick(self, loop: asyncio.AbstractEventLoop) -> _Peer | None:
        """Round robin over up peers; None when the endpoint list must be awaited."""
        source = self._source
        if not source.poll():
            return None
        if source.version != self._version:
            self._rebuild()
        peers = self._peers
        n = len(peers)
        if n <= 1:
            return peers[0] if n else None
        i = self._rr % n
        self._rr = i + 1
        peer = peers[i]
        if peer.conn is not None or not peer.retry_at:
            return peer
        now = loop.time()
        for k in range(n):
            peer = peers[(i + k) % n]
            if peer.is_up(now):
                return peer
        return min(peers, key=lambda p: p.failed_at)  # all down: the least recently failed

    async def _fail_over(self, loop: asyncio.AbstractEventLoop, func: str, body: bytes,
                         context: dict[str, str] | None, timeout: float, deadline: float,
                         idempotent: bool | None, peer: _Peer, lost: _ConnectionLost
                         ) -> tuple[ResponsePacket, _Peer]:
        """Send a call whose connection was lost again, on other peers, when that is safe.

        A request never sent is always resent; one lost in flight only if the call is
        idempotent. Each other up peer is tried at most once, in round-robin order, before
        the call's original deadline. Returns the answer and the peer that gave it; raises
        TarsConnectError naming the attempts, or TarsTimeoutError at the deadline.
        """
        if idempotent is None:
            setting = self._idempotent
            idempotent = setting if isinstance(setting, bool) else func in setting
        where = f"{self.obj_name}.{func}"
        tried = [peer]
        attempts = [lost.message]
        retry = lost.resend and (idempotent or not lost.sent)
        while retry:
            if self._comm._closed:
                break
            if loop.time() >= deadline:
                raise TarsTimeoutError(f"{where}: no response within {round(timeout * 1000)} "
                                       f"ms; tried: {'; '.join(attempts)}") from None
            other = self._pick_other(loop, tried)
            if other is None:
                break
            peer = other
            tried.append(peer)
            log.debug("%s: retrying on %s after: %s", where, peer.label, attempts[-1])
            try:
                return await self._send_again(loop, peer, func, body, context, timeout,
                                              deadline), peer
            except _ConnectionLost as exc:
                attempts.append(exc.message)
                retry = exc.resend and (idempotent or not exc.sent)
            except TarsConnectError as exc:  # could not connect: nothing was sent
                attempts.append(exc.message)
            except TarsTimeoutError as exc:
                raise TarsTimeoutError(f"{exc.message}; tried before: "
                                       f"{'; '.join(attempts)}") from None
        closed = self._comm._closed
        if len(attempts) == 1 and (closed or not retry):
            raise TarsConnectError(f"{where}: {lost.message}") from None  # as without failover
        if closed:
            why = "communicator closed"
        elif retry:
            why = "no other endpoint available"
        else:
            why = "not retried: the call is not idempotent"
        raise TarsConnectError(f"{where}: {'; '.join(attempts)} ({why})") from None

    async def _send_again(self, loop: asyncio.AbstractEventLoop, peer: _Peer, func: str,
                          body: bytes, context: dict[str, str] | None, timeout: float,
                          deadline: float) -> ResponsePacket:
        """One more attempt of a call on ``peer``, expiring at the original ``deadline``."""
        conn = await peer.connect(deadline)
        rid = conn.new_id()
        remaining_ms = max(1, round((deadline - loop.time()) * 1000))
        frame = encode_frame(RequestPacket(
            iVersion=_TARS_VERSION, cPacketType=_NORMAL, iMessageType=self._message_type,
            iRequestId=rid, sServantName=self.obj_name, sFuncName=func, sBuffer=body,
            iTimeout=remaining_ms, context=_NO_CONTEXT if context is None else context,
            status=self._status))
        fut: asyncio.Future[ResponsePacket] = loop.create_future()
        conn.pending[rid] = fut
        if not conn.write(frame):
            conn.pending.pop(rid, None)
            raise _ConnectionLost(f"connection to {peer.label} closed before sending",
                                  sent=False)
        timer = loop.call_at(deadline, conn.expire, rid, self, func, timeout)
        try:
            return await fut
        finally:
            timer.cancel()
            conn.pending.pop(rid, None)

    def _pick_other(self, loop: asyncio.AbstractEventLoop, tried: list[_Peer]) -> _Peer | None:
        """The next up peer in round-robin order that is not in ``tried``."""
        source = self._source
        if source.poll() and source.version != self._version:
            self._rebuild()
        peers = self._peers
        n = len(peers)
        now = loop.time()
        for k in range(n):
            i = (self._rr + k) % n
            peer = peers[i]
            if peer not in tried and peer.is_up(now):
                self._rr = i + 1
                return peer
        return None

    def _rebuild(self) -> None:
        source = self._source
        endpoints = source.endpoints or ()
        usable = [ep for ep in endpoints if ep.protocol != "ssl"]
        if len(usable) != len(endpoints):
            log.warning("%s: ssl endpoints are not supported; ignoring %s", self.obj_name,
                        ", ".join(str(ep) for ep in endpoints if ep.protocol == "ssl"))
        self._peers = [self._comm._peer(ep) for ep in usable]
        self._version = source.version

    async def _pick_slow(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Peer:
        if self._comm._closed:
            raise TarsConnectError(f"{self.obj_name}: communicator is closed")
        if not self._source.poll():
            try:
                await asyncio.wait_for(self._source.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                raise TarsTimeoutError(f"{self.obj_name}: endpoint lookup did not finish "
                                       "within the call timeout") from None
        peer = self._pick(loop)
        if peer is None:
            raise TarsNoEndpointError(f"{self.obj_name}: no active tcp or udp endpoint")
        return peer

    async def _connect(self, loop: asyncio.AbstractEventLoop, peer: _Peer,
                       deadline: float) -> _Connection:
        """Connect to ``peer``, failing over to other up peers when it refuses."""
        tried = [peer]
        while True:
            try:
                return await peer.connect(deadline)
            except TarsConnectError:
                now = loop.time()
                others = [p for p in self._peers if p not in tried and p.is_up(now)]
                if not others or self._comm._closed:
                    raise
                peer = others[0]
                tried.append(peer)


class Communicator:
    """Creates proxies and owns their connections, endpoint lists and background refreshes.

    Keyword options override fields of ``config`` (see :class:`ClientConfig`; times in ms).
    """

    def __init__(self, config: ClientConfig | None = None, *, locator: str | None = None,
                 sync_invoke_timeout: int | None = None,
                 refresh_endpoint_interval: int | None = None,
                 connect_timeout: int | None = None, node_name: str | None = None,
                 set_division: str | None = None) -> None:
        base = config or ClientConfig()
        overrides: dict[str, Any] = {
            "locator": locator, "sync_invoke_timeout": sync_invoke_timeout,
            "refresh_endpoint_interval": refresh_endpoint_interval,
            "connect_timeout": connect_timeout, "node_name": node_name,
            "set_division": set_division,
        }
        self.config = dataclasses.replace(
            base, **{k: v for k, v in overrides.items() if v is not None})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._peers: dict[tuple[str, str, int], _Peer] = {}
        self._sources: dict[str, RegistryEndpoints] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locator: Locator | None = None
        self._queues: dict[float, _TimeoutQueue] = {}

    @classmethod
    def from_config(cls, cfg: TarsConfig) -> Communicator:
        """A communicator set up from a config file's client section (see ClientConfig)."""
        return cls(ClientConfig.from_tars_config(cfg))

    def __repr__(self) -> str:
        return f"<Communicator locator={self.config.locator!r}>"

    async def __aenter__(self) -> Communicator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def proxy(self, interface: Interface | None, proxy: str | ProxySpec, *,
              idempotent: bool | Iterable[str] = False) -> ServantProxy:
        """A proxy for ``Obj@endpoints`` (direct) or ``Obj`` (resolved through the locator).

        ``idempotent``: True or the names of the methods whose calls may be retried on
        another endpoint after their connection was lost in flight (see ServantProxy).
        """
        spec = parse_proxy(proxy) if isinstance(proxy, str) else proxy
        if spec.is_direct:
            source: EndpointSource = StaticEndpoints(spec.obj_name, spec.endpoints)
        else:
            source = self._registry_source(spec.obj_name)
        return ServantProxy(self, interface, spec.obj_name, source, idempotent)

    @property
    def locator(self) -> Locator | None:
        """The registry client (None without a ``locator`` setting)."""
        if self._locator is None and self.config.locator is not None:
            spec = parse_proxy(self.config.locator)
            # lookups only read: one lost with a registry replica is asked of another
            query = ServantProxy(self, framework().interface("tars.QueryF"), spec.obj_name,
                                 StaticEndpoints(spec.obj_name, spec.endpoints), idempotent=True)
            self._locator = Locator(query, self.config, self._spawn)
            # TarsCpp: the locator's own list is refreshed through the registry too.
            own = RegistryEndpoints(spec.obj_name, self._locator, spec.endpoints)
            self._sources[spec.obj_name] = own
            query._source = own
        return self._locator

    def _registry_source(self, obj_name: str) -> RegistryEndpoints:
        source = self._sources.get(obj_name)
        if source is None:
            locator = self.locator
            if locator is None:
                raise ValueError(f'"{obj_name}" has no endpoints and the communicator has no '
                                 "locator")
            source = self._sources.get(obj_name)  # the locator's own object was just added
            if source is None:
                source = self._sources[obj_name] = RegistryEndpoints(obj_name, locator)
        return source

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise TarsConnectError("communicator is closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = self._bind_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _timeout_queue(self, timeout: float) -> _TimeoutQueue | None:
        """The queue of calls with this timeout (None: too many distinct values)."""
        queue = self._queues.get(timeout)
        if queue is None and len(self._queues) < _MAX_TIMEOUT_QUEUES:
            assert self._loop is not None
            queue = self._queues[timeout] = _TimeoutQueue(self._loop)
        return queue

    def _peer(self, endpoint: Endpoint) -> _Peer:
        key = (endpoint.protocol, endpoint.host, endpoint.port)
        peer = self._peers.get(key)
        if peer is None:
            cls = _DatagramPeer if endpoint.protocol == "udp" else _Peer
            peer = self._peers[key] = cls(self, endpoint.host, endpoint.port)
        return peer

    async def close(self) -> None:
        """Stop background refreshes, close every connection and fail pending calls."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for peer in self._peers.values():
            peer.close("communicator closed")
        for queue in self._queues.values():
            queue.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports finish closing
