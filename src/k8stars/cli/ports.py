"""``${random_port}``: the first free port in [TARS_RAND_PORT_MIN, TARS_RAND_PORT_MAX].

A port is free when a socket of the endpoint's protocol (``tcp``/``ssl`` → TCP, ``udp`` → UDP)
can be bound on the endpoint's host (and listened on, for TCP), with ``SO_REUSEADDR`` as Go's
``net.Listen`` sets it (so ports in TIME_WAIT count as free, as in the original). Ports are
distinct per placeholder: one :class:`PortAllocator` never hands out a port twice, and ports
:meth:`~PortAllocator.reserve`\\ d (fixed ports of other endpoints) are skipped.
"""

from __future__ import annotations

import errno
import socket

from .settings import CliError

__all__ = ["PortAllocator", "PortError"]

_IN_USE = frozenset({errno.EADDRINUSE, errno.EACCES})


class PortError(CliError):
    """No free port in the range, or the host cannot be bound at all."""


class PortAllocator:
    """Hands out free, distinct ports from ``[low, high]``."""

    def __init__(self, low: int, high: int) -> None:
        if not 1 <= low <= high <= 65535:
            raise PortError(f"TARS_RAND_PORT_MIN={low} and TARS_RAND_PORT_MAX={high}: "
                            "need 1 <= TARS_RAND_PORT_MIN <= TARS_RAND_PORT_MAX <= 65535")
        self.low = low
        self.high = high
        self._taken: set[int] = set()

    @property
    def taken(self) -> frozenset[int]:
        """Ports handed out or reserved so far."""
        return frozenset(self._taken)

    def reserve(self, port: int) -> None:
        """Never hand out ``port`` (e.g. a fixed port of another endpoint)."""
        self._taken.add(port)

    def allocate(self, host: str, protocol: str = "tcp", purpose: str = "") -> int:
        """The first free port for ``protocol`` on ``host``; raises :class:`PortError`."""
        socktype = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        family, address = _resolve(host, socktype, purpose)
        for port in range(self.low, self.high + 1):
            if port in self._taken:
                continue
            if _bindable(family, socktype, address, port, host, purpose):
                self._taken.add(port)
                return port
        kind = "UDP" if socktype == socket.SOCK_DGRAM else "TCP"
        what = f" for {purpose}" if purpose else ""
        raise PortError(f"no free {kind} port on {host}{what} in "
                        f"TARS_RAND_PORT_MIN..TARS_RAND_PORT_MAX = {self.low}..{self.high}")


def _resolve(host: str, socktype: int, purpose: str) -> tuple[int, str]:
    bind_host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bind_host, 0, socket.AF_UNSPEC, socktype, 0,
                                   socket.AI_NUMERICHOST)
    except socket.gaierror:
        try:  # a host name: resolve it (rare in endpoints that are listened on)
            infos = socket.getaddrinfo(bind_host, 0, socket.AF_UNSPEC, socktype)
        except socket.gaierror as exc:
            what = f" ({purpose})" if purpose else ""
            raise PortError(f"cannot resolve host {host!r}{what}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])


def _bindable(family: int, socktype: int, address: str, port: int, host: str,
              purpose: str) -> bool:
    with socket.socket(family, socktype) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            if socktype == socket.SOCK_STREAM:
                sock.listen(1)
        except OSError as exc:
            if exc.errno in _IN_USE:
                return False
            what = f" ({purpose})" if purpose else ""
            hint = (" - is it an address of this machine (POD_IP)?"
                    if exc.errno == errno.EADDRNOTAVAIL else "")
            raise PortError(f"cannot bind to {host}{what}: {exc.strerror}{hint}") from None
    return True
