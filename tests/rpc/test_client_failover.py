"""Client failover when a connection is lost with calls on it, against real servers.

In-process servers are k8stars' own :class:`Server` (crashed with ``stop(0)``: listener closed,
connections with calls in flight aborted); the SIGKILL tests run it in child processes. Calls
are known to be in flight when the servant has started them, and known to be unsent when their
frame still sits in the client's output queue: no test depends on timing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from k8stars.tars.client import Communicator, ServantProxy
from k8stars.tars.errors import TarsConnectError, TarsTimeoutError
from k8stars.tars.servant import current
from k8stars.tars.server import Server

from .test_server_support import CALC, OBJ, CalcImp, async_test, eventually, serving

ROOT = Path(__file__).resolve().parents[2]


class Imp(CalcImp):
    """CalcImp that also records the timeout (ms) each ``echo`` arrived with."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[int] = []

    async def echo(self, s: str) -> str:
        self.timeouts.append(current().timeout)
        return await super().echo(s)


@asynccontextmanager
async def servers(n: int = 2) -> AsyncIterator[list[tuple[Server, Imp, int]]]:
    """``n`` started servers of OBJ: (server, servant, port) each."""
    async with AsyncExitStack() as stack:
        started = []
        for _ in range(n):
            imp = Imp()
            server, port = await stack.enter_async_context(serving(imp))
            started.append((server, imp, port))
        yield started


def proxy(comm: Communicator, *ports: int, **kwargs: Any) -> Any:
    eps = ":".join(f"tcp -h 127.0.0.1 -p {port}" for port in ports)
    return comm.proxy(CALC, f"{OBJ}@{eps}", **kwargs)


async def crash(server: Server) -> None:
    """Stop with no grace: refuse new connections, abort the ones with calls in flight."""
    await server.stop(0)


async def held_on_first(calc: ServantProxy, imps: list[Imp], key: str,
                        **options: Any) -> asyncio.Future[Any]:
    """Start ``echo("wait:key")`` on the first server (its gate stays shut) and wait until
    that server runs it; the other servants answer it at once."""
    for imp in imps[1:]:
        imp.release(key)
    call = asyncio.ensure_future(calc.echo(f"wait:{key}", **options))
    await eventually(lambda: len(imps[0].started) == 1)
    return call


@async_test
async def test_idempotent_call_in_flight_fails_over_to_another_server() -> None:
    async with servers() as [(sa, a, pa), (_, b, _pb)], Communicator() as comm:
        calc = proxy(comm, pa, _pb, idempotent=True)
        call = await held_on_first(calc, [a, b], "k")
        await crash(sa)
        assert await call == "wait:k"
        assert b.started == ["wait:k"]


@async_test
async def test_non_idempotent_call_in_flight_fails_with_connect_error() -> None:
    async with servers() as [(sa, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb)
        call = await held_on_first(calc, [a, b], "k")
        await crash(sa)
        with pytest.raises(TarsConnectError) as info:
            await call
        assert type(info.value) is TarsConnectError and info.value.code == -8
        assert f"{OBJ}.echo: connection to 127.0.0.1:{pa} lost" in info.value.message
        assert b.started == [] and b.timeouts == []
        assert await calc.echo("after") == "after"  # the next call goes to the live server


@async_test
async def test_per_call_option_overrides_the_proxy_setting() -> None:
    async with servers() as [(sa, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb, idempotent=True)
        call = await held_on_first(calc, [a, b], "k", _idempotent=False)
        await crash(sa)
        with pytest.raises(TarsConnectError, match="lost"):
            await call
        assert b.timeouts == []
    async with servers() as [(sa, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb)
        call = await held_on_first(calc, [a, b], "k", _idempotent=True)
        await crash(sa)
        assert await call == "wait:k"
        assert b.started == ["wait:k"]


@async_test
async def test_idempotent_method_names() -> None:
    async with servers() as [(sa, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb, idempotent={"echo", "add"})
        call = await held_on_first(calc, [a, b], "k")
        await crash(sa)
        assert await call == "wait:k"
    async with servers() as [(sa, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb, idempotent=["add"])
        call = await held_on_first(calc, [a, b], "k")
        await crash(sa)
        with pytest.raises(TarsConnectError, match="lost"):
            await call
    async with Communicator() as comm:
        with pytest.raises(ValueError, match="ehco"):
            proxy(comm, 1, idempotent=["ehco"])


@pytest.mark.parametrize("how", ["transport", "connection"])
@async_test
async def test_request_never_sent_is_resent_even_if_not_idempotent(how: str) -> None:
    async with servers() as [(_, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb)
        assert await calc.add(1, 1) == 2
        assert await calc.add(2, 2) == 4  # both connections are open now
        call = asyncio.ensure_future(calc.touch("x"))
        await asyncio.sleep(0)  # the call has queued its frame; the flush is still to run
        queued = [p.conn for p in comm._peers.values() if p.conn is not None and p.conn._out]
        assert len(queued) == 1
        conn = queued[0]
        first, other = (a, b) if conn.peer.port == pa else (b, a)
        if how == "transport":
            # What asyncio does on a reset or EOF: the transport closes, connection_lost
            # follows in a later callback. The flush before it finds the transport closing,
            # and of the two calls that run in between, the one that round robin sends to
            # the same server finds the connection closed when it writes.
            later = [asyncio.ensure_future(calc.touch(name)) for name in ("y", "z")]
            assert conn.protocol is not None and conn.protocol.transport is not None
            conn.protocol.transport.abort()
            assert await asyncio.gather(call, *later) == [None] * 3
            assert first.touched == [] and sorted(other.touched) == ["x", "y", "z"]
        else:
            conn.close("closed by the test")  # fails the pending calls at once
            assert await call is None
            assert first.touched == [] and other.touched == ["x"]


@async_test
async def test_retry_keeps_the_original_deadline() -> None:
    async with servers() as [(sa, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb, idempotent=True)
        call = asyncio.ensure_future(calc.echo("wait:k", _timeout=1.0))
        await eventually(lambda: len(a.started) == 1)
        await crash(sa)
        await eventually(lambda: len(b.started) == 1)  # retried; b holds it too
        assert a.timeouts == [1000]
        assert 0 < b.timeouts[0] < 1000  # the time left, not a fresh timeout
        with pytest.raises(TarsTimeoutError) as info:
            await call
        assert "no response within 1000 ms" in info.value.message
        assert f"tried before: connection to 127.0.0.1:{pa} lost" in info.value.message


@async_test
async def test_all_servers_lost_names_every_attempt() -> None:
    async with servers(3) as [(sa, a, pa), (sb, b, pb), (sc, c, pc)], \
            Communicator() as comm:
        calc = proxy(comm, pa, pb, pc, idempotent=True)
        call = asyncio.ensure_future(calc.echo("wait:k"))
        await eventually(lambda: len(a.started) == 1)
        await crash(sc)  # down before the retries: refuses to connect
        await crash(sa)
        await eventually(lambda: len(b.started) == 1)
        await crash(sb)
        with pytest.raises(TarsConnectError) as info:
            await call
        message = info.value.message
        assert message.startswith(f"{OBJ}.echo: ")
        assert f"connection to 127.0.0.1:{pa} lost" in message
        assert f"connection to 127.0.0.1:{pb} lost" in message
        assert f"cannot connect to 127.0.0.1:{pc}" in message
        assert message.endswith("(no other endpoint available)")
        assert c.started == []


@async_test
async def test_oneway_calls_are_not_retried() -> None:
    async with servers() as [(_, a, pa), (_, b, pb)], Communicator() as comm:
        calc = proxy(comm, pa, pb, idempotent=True)
        assert await calc.add(1, 1) == 2
        assert await calc.add(2, 2) == 4
        call = asyncio.ensure_future(calc.touch("x", _oneway=True))
        await asyncio.sleep(0)
        queued = [p.conn for p in comm._peers.values() if p.conn is not None and p.conn._out]
        assert len(queued) == 1
        queued[0].close("closed by the test")
        assert await call is None  # a oneway call does not wait for its frame to leave
        # Both servers answer a later call on a fresh connection; neither got the oneway.
        assert [await calc.add(i, 0) for i in range(2)] == [0, 1]
        assert a.touched == [] and b.touched == []


# -- SIGKILLed server processes -----------------------------------------------------------

SERVER_SCRIPT = """
import asyncio, sys
from tests.rpc.test_server_support import OBJ, CalcImp
from k8stars.tars.server import Server

victim = sys.argv[1] == "victim"

class Imp(CalcImp):
    seen: list[str] = []

    async def echo(self, s):
        if s == "seen":
            return ",".join(self.seen)
        self.seen.append(s)
        if victim and s.startswith("hold"):
            print("holding", s, flush=True)
            await asyncio.Event().wait()
        return s

async def main():
    server = Server()
    server.add_servant(OBJ, Imp(), "tcp -h 127.0.0.1 -p 0")
    await server.start()
    print(server.endpoint(OBJ).port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@asynccontextmanager
async def server_process(role: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """A Python TARS server in a child process: (process, port). A ``victim`` never answers
    ``echo("hold…")`` and prints a line when it starts one."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER_SCRIPT, role, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 15))
        yield proc, port
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def killed_under_load(idempotent: bool) -> tuple[list[Any], list[str], str]:
    """20 concurrent calls over a victim and a healthy server; the victim is SIGKILLed with
    its share in flight. The call results, the texts it held, what the healthy one saw."""
    async with server_process("victim") as (victim, pv), \
            server_process("healthy") as (_, ph), Communicator() as comm:
        calc = proxy(comm, pv, ph, idempotent=idempotent)
        held: list[str] = []

        async def read_held() -> None:
            assert victim.stdout is not None
            while line := await victim.stdout.readline():
                held.append(line.decode().split()[1])

        reader = asyncio.ensure_future(read_held())
        calls = [asyncio.ensure_future(calc.echo(f"hold{i}")) for i in range(20)]
        # Every call is either answered (healthy server) or running on the victim.
        await eventually(lambda: len(held) + sum(c.done() for c in calls) == len(calls), 10)
        assert 0 < len(held) < len(calls)
        victim.kill()
        results = await asyncio.gather(*calls, return_exceptions=True)
        await reader
        seen = await calc.echo("seen")
        return results, held, seen


@async_test
async def test_sigkilled_server_idempotent_calls_all_succeed() -> None:
    results, held, seen = await killed_under_load(idempotent=True)
    assert results == [f"hold{i}" for i in range(20)]
    assert set(held) <= set(seen.split(","))


@async_test
async def test_sigkilled_server_non_idempotent_calls_in_flight_fail() -> None:
    results, held, seen = await killed_under_load(idempotent=False)
    failed = {f"hold{i}" for i, r in enumerate(results) if isinstance(r, TarsConnectError)}
    assert failed == set(held)
    assert all(r == f"hold{i}" for i, r in enumerate(results) if f"hold{i}" not in failed)
    assert not failed & set(seen.split(","))
