"""The asyncio edge: a framed TARS byte stream over a transport (TCP, or one datagram).

This is the only module of the protocol stack that touches asyncio transports. Everything
above it (server dispatch, client multiplexing) receives whole frame bodies and sends whole
frames; everything below it (:mod:`.packet`, :mod:`.codec`) is sans-IO.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from .errors import TarsFrameError
from .packet import DEFAULT_MAX_FRAME_SIZE, FrameDecoder

__all__ = ["KEEPALIVE", "FramedProtocol", "enable_keepalive"]

log = logging.getLogger("k8stars.tars.transport")

#: TCP keepalive of every connection: (idle s, interval s, probes). A peer gone without a FIN or
#: RST (a node lost, a partition) is noticed after idle + interval × probes = 90 s of silence,
#: so neither side keeps its half of the connection (a file descriptor) for ever.
KEEPALIVE = (60, 10, 3)


def enable_keepalive(sock: socket.socket, settings: tuple[int, int, int] | None = None) -> None:
    """Turn TCP keepalive on for ``sock`` with ``settings`` (default :data:`KEEPALIVE`)."""
    idle, interval, probes = KEEPALIVE if settings is None else settings
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval),
                        ("TCP_KEEPCNT", probes)):
        option = getattr(socket, name, None)  # Linux; macOS has only some of them
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


class FramedProtocol(asyncio.Protocol):
    """Splits the received stream into frame bodies and hands each to ``on_frame``.

    A malformed length prefix closes only this connection (logged with the peer address).
    ``on_lost`` is called once, with the exception that ended the connection or None.
    Writers may ``await drain()`` to respect the transport's flow control.
    """

    def __init__(
        self,
        on_frame: Callable[[bytes], None],
        on_lost: Callable[[Exception | None], None] | None = None,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._decoder = FrameDecoder(max_frame_size)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer: Any = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
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

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- API -----------------------------------------------------------------------------

    @property
    def peer_text(self) -> str:
        """``host:port`` of the peer, for logs."""
        return f"{self.peer[0]}:{self.peer[1]}" if self.peer else "unknown peer"

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self._closed and not self.transport.is_closing()

    def send(self, frame: bytes) -> bool:
        """Queue a whole frame; False when the connection is already closed."""
        if not self.is_open:
            return False
        assert self.transport is not None
        self.transport.write(frame)
        return True

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        await self._writable.wait()

    def close(self) -> None:
        """Close after the buffered data is sent."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self, exc: Exception | None = None) -> None:
        """Drop the connection at once."""
        if self.transport is not None:
            self.transport.abort()
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_lost is not None:
            self._on_lost(exc)
