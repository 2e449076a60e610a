"""TCP keepalive: a peer that vanishes without a FIN or RST (partition, lost node) is noticed and
its connection closed, on the server and on the client side."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from k8stars.tars import transport
from k8stars.tars.client import Communicator
from k8stars.tars.transport import FramedProtocol

from ..netns import Network
from .test_server_support import CALC, OBJ, async_test, serving


def _keepalive(sock: socket.socket) -> tuple[int, int, int, int]:
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT))


@async_test
async def test_server_and_client_connections_have_keepalive() -> None:
    async with serving() as (server, port), Communicator() as comm:
        calc = comm.proxy(CALC, f"{OBJ}@tcp -h 127.0.0.1 -p {port}")
        assert await calc.add(1, 2) == 3
        [conn] = [c for rt in server._adapters.values() for c in rt.connections]
        assert conn.transport is not None
        assert _keepalive(conn.transport.get_extra_info("socket")) == (1, *transport.KEEPALIVE)
        [peer] = comm._peers.values()
        assert peer.conn is not None and peer.conn.protocol is not None
        client = peer.conn.protocol.transport
        assert client is not None
        assert _keepalive(client.get_extra_info("socket")) == (1, *transport.KEEPALIVE)


async def _lost_after_partition(net: Network) -> float | None:
    """Seconds from a partition until the server side notices a silent, idle client."""
    lost = asyncio.Event()
    made = asyncio.Event()

    def protocol() -> FramedProtocol:
        proto = FramedProtocol(lambda body: None, lambda exc: lost.set())
        made.set()
        return proto

    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, net.host_ip, 0)
    port = server.sockets[0].getsockname()[1]
    ns = net.add_namespace("client")
    client = subprocess.Popen(ns.command(
        sys.executable, "-c",
        f"import socket, time; s = socket.create_connection(('{net.host_ip}', {port})); "
        "time.sleep(120)"))
    try:
        await asyncio.wait_for(made.wait(), 10)
        await asyncio.sleep(0.2)
        assert not lost.is_set()
        net.cut(None, ns.ip)  # the server's keepalive probes go nowhere; nothing comes back
        started = time.monotonic()
        try:
            await asyncio.wait_for(lost.wait(), 60)
        except asyncio.TimeoutError:
            return None
        return time.monotonic() - started
    finally:
        client.kill()
        client.wait()
        server.close()
        await server.wait_closed()


def test_silent_peer_is_dropped_by_keepalive(network: Network,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "KEEPALIVE", (1, 1, 2))  # noticed after ~3 s, not 90 s
    took = asyncio.run(_lost_after_partition(network))
    print(f"\nsilent peer dropped {took}s after the partition")
    assert took is not None
