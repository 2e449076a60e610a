"""The asyncio edge: a framed TARS byte stream over a transport (TCP, or one datagram).

This is the only module of the protocol stack that touches asyncio transports. Everything
above it (server dispatch, client multiplexing) receives whole frame bodies and sends whole
frames; everything below it (:mod:`.packet`, :mod:`.codec`) is sans-IO.

Over TCP frames follow each other in a stream (:class:`FramedProtocol`); over UDP each datagram
carries exactly one frame, with the same 4-byte length prefix (:class:`DatagramFrameProtocol`),
as TARS peers send it (checked against @tars/rpc in ``tests/interop/test_udp_interop.py``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from .errors import TarsFrameError
from .packet import DEFAULT_MAX_FRAME_SIZE, MIN_FRAME_SIZE, FrameDecoder

__all__ = [
    "KEEPALIVE",
    "MAX_DATAGRAM_SIZE",
    "DatagramFrameProtocol",
    "FramedProtocol",
    "enable_keepalive",
]

log = logging.getLogger("k8stars.tars.transport")

#: TCP keepalive of every connection: (idle s, interval s, probes). A peer gone without a FIN or
#: RST (a node lost, a partition) is noticed after idle + interval × probes = 90 s of silence,
#: so neither side keeps its half of the connection (a file descriptor) for ever.
KEEPALIVE = (60, 10, 3)

#: The largest frame one UDP datagram carries: 65535 − 20 (IPv4 header) − 8 (UDP header).
MAX_DATAGRAM_SIZE = 65507

_LENGTH = struct.Struct(">I")


def enable_keepalive(sock: socket.socket, settings: tuple[int, int, int] | None = None) -> None:
    """Turn TCP keepalive on for ``sock`` with ``settings`` (default :data:`KEEPALIVE`)."""
    idle, interval, probes = KEEPALIVE if settings is None else settings
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval),
                        ("TCP_KEEPCNT", probes)):
        option = getattr(socket, name, None)  # Linux; macOS has only some of them
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _address(addr: Any) -> tuple[str, int] | None:
    """``(host, port)`` of a socket address (IPv6 addresses come with two more fields)."""
    return (str(addr[0]), int(addr[1])) if isinstance(addr, tuple) else None


def _address_text(addr: tuple[str, int] | None) -> str:
    return f"{addr[0]}:{addr[1]}" if addr else "unknown peer"


class _Edge:
    """What both edges share: the transport, the peer, flow control (``drain``), closing, and
    ``on_lost`` called exactly once."""

    transport: asyncio.Transport | asyncio.DatagramTransport | None

    def __init__(self, on_lost: Callable[[Exception | None], None] | None) -> None:
        self._on_lost = on_lost
        self.transport = None
        self.peer: tuple[str, int] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False

    # -- asyncio callbacks (flow control) -------------------------------------------------

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- API -----------------------------------------------------------------------------

    @property
    def peer_text(self) -> str:
        """``host:port`` of the peer, for logs."""
        return _address_text(self.peer)

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self._closed and not self.transport.is_closing()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        await self._writable.wait()

    def close(self) -> None:
        """Close after the buffered data is sent."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self, exc: Exception | None = None) -> None:
        """Drop the connection (or socket) at once."""
        if self.transport is not None:
            self.transport.abort()
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_lost is not None:
            self._on_lost(exc)


class FramedProtocol(_Edge, asyncio.Protocol):
    """Splits the received stream into frame bodies and hands each to ``on_frame``.

    A malformed length prefix closes only this connection (logged with the peer address).
    ``on_lost`` is called once, with the exception that ended the connection or None.
    Writers may ``await drain()`` to respect the transport's flow control.
    """

    transport: asyncio.Transport | None

    def __init__(
        self,
        on_frame: Callable[[bytes], None],
        on_lost: Callable[[Exception | None], None] | None = None,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        super().__init__(on_lost)
        self._on_frame = on_frame
        self._decoder = FrameDecoder(max_frame_size)

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = _address(transport.get_extra_info("peername"))
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.type == socket.SOCK_STREAM and sock.family in (
                socket.AF_INET, socket.AF_INET6):
            try:
                enable_keepalive(sock)
            except OSError as exc:  # not fatal: the connection works without it
                log.debug("no TCP keepalive for %s: %s", self.peer_text, exc)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except TarsFrameError as exc:
            log.warning("closing connection from %s: %s", self.peer_text, exc)
            self.abort(exc)
            return
        for frame in frames:
            self._on_frame(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()
        self._finish(exc)

    # -- API -----------------------------------------------------------------------------

    def send(self, frame: bytes) -> bool:
        """Queue a whole frame; False when the connection is already closed."""
        if not self.is_open:
            return False
        assert self.transport is not None
        self.transport.write(frame)
        return True


class DatagramFrameProtocol(_Edge, asyncio.DatagramProtocol):
    """TARS over UDP: each datagram carries exactly one frame, length prefix included.

    ``on_frame(body, addr)`` gets the body of each well-formed datagram; one whose length
    prefix is not its size (truncated, padded, several frames) or is outside
    ``MIN_FRAME_SIZE..max_frame_size`` is dropped with one log line naming its sender.
    ``on_error(exc)`` gets socket errors (on a connected socket: an ICMP port unreachable as
    ConnectionRefusedError); ``on_lost(exc)`` is called once when the socket closes.
    """

    transport: asyncio.DatagramTransport | None

    def __init__(
        self,
        on_frame: Callable[[bytes, Any], None],
        on_error: Callable[[OSError], None] | None = None,
        on_lost: Callable[[Exception | None], None] | None = None,
        *,
        max_frame_size: int = MAX_DATAGRAM_SIZE,
        name: str = "udp",
    ) -> None:
        super().__init__(on_lost)  # ``peer``: the remote address of a connected socket
        self._on_frame = on_frame
        self._on_error = on_error
        self.max_frame_size = max_frame_size
        self.name = name
        self.local: tuple[str, int] | None = None
        self._lost = asyncio.Event()

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = _address(transport.get_extra_info("peername"))
        self.local = _address(transport.get_extra_info("sockname"))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        size = len(data)
        total = _LENGTH.unpack_from(data)[0] if size >= 4 else -1
        if total == size and MIN_FRAME_SIZE <= total <= self.max_frame_size:
            self._on_frame(data[4:], addr)
        else:
            log.warning("%s: dropping a datagram of %d bytes from %s: %s", self.name, size,
                        _address_text(_address(addr)), self._fault(size, total))

    def _fault(self, size: int, total: int) -> str:
        if total < 0:
            return "shorter than a length prefix"
        if total != size:
            return f"its length prefix says {total}"
        return f"frame length {total} outside {MIN_FRAME_SIZE}..{self.max_frame_size}"

    def error_received(self, exc: Exception) -> None:
        if self._on_error is not None and isinstance(exc, OSError):
            self._on_error(exc)
        else:
            log.warning("%s: socket error: %s", self.name, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()
        self._lost.set()
        self._finish(exc)

    # -- API -----------------------------------------------------------------------------

    def send(self, frame: bytes, addr: Any = None) -> bool:
        """Send a whole frame as one datagram (to ``addr``, or to the connected peer); False
        when the socket is closed. Raises TarsFrameError if it exceeds MAX_DATAGRAM_SIZE."""
        if len(frame) > MAX_DATAGRAM_SIZE:
            raise TarsFrameError(f"a frame of {len(frame)} bytes exceeds the UDP datagram "
                                 f"limit of {MAX_DATAGRAM_SIZE} bytes")
        if not self.is_open:
            return False
        assert self.transport is not None
        self.transport.sendto(frame, addr)
        return True

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        if self.transport is not None:
            await self._lost.wait()
