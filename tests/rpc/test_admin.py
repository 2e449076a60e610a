"""AdminObj (tars.AdminF) over real sockets: notify commands, getPid, shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from k8stars.tars.admin import ADMIN_INTERFACE, ADMIN_SERVANT, AdminServant
from k8stars.tars.logs import NONE
from k8stars.tars.server import Server

from .test_server_support import OBJ, CalcImp, Wire, adapter, async_test, request

LOGGER = "k8stars.test.admin"


def notify_frame(command: str, request_id: int = 1) -> bytes:
    args: Any = ADMIN_INTERFACE.methods["notify"].args
    body = args(command=command).tars_encode()
    return request("notify", body, servant=ADMIN_SERVANT, request_id=request_id)


async def notify(wire: Wire, command: str) -> str:
    resp = await wire.call(notify_frame(command))
    assert resp.iRet == 0, resp.sResultDesc
    answer: Any = ADMIN_INTERFACE.methods["notify"].result.tars_decode(resp.sBuffer)
    return str(answer.tars_ret)


@asynccontextmanager
async def admin_server(**kw: Any) -> AsyncIterator[tuple[Server, AdminServant, Wire]]:
    server = Server(app="App", server="Srv")
    admin = AdminServant(server, loggers=(LOGGER,), **kw)
    server.admin = admin
    server.add_servant(OBJ, CalcImp(), adapter())
    server.add_servant(ADMIN_SERVANT, admin, adapter(ADMIN_SERVANT))
    await server.start()
    wire = await Wire.open(server.endpoint(ADMIN_SERVANT).port)
    try:
        yield server, admin, wire
    finally:
        await wire.close()
        await server.stop(1.0)


@async_test
async def test_setloglevel() -> None:
    logger = logging.getLogger(LOGGER)
    async with admin_server() as (_, _, wire):
        assert await notify(wire, "tars.setloglevel DEBUG") == "tars.setloglevel DEBUG succ"
        assert logger.level == logging.DEBUG
        assert await notify(wire, "tars.setloglevel warn") == "tars.setloglevel warn succ"
        assert logger.level == logging.WARNING
        assert await notify(wire, "tars.setloglevel NONE") == "tars.setloglevel NONE succ"
        assert logger.level == NONE and not logger.isEnabledFor(logging.CRITICAL)
        answer = await notify(wire, "tars.setloglevel LOUD")
        assert answer == "tars.setloglevel failed: unknown log level [LOUD]!"
        assert logger.level == NONE
        answer = await notify(wire, "tars.setloglevel")
        assert answer == "tars.setloglevel failed: missing loglevel!"
    logger.setLevel(logging.NOTSET)


@async_test
async def test_setloglevel_bytes_match_the_reference() -> None:
    # tars-protocol.md 2.15: notify("tars.setloglevel DEBUG") id 2 and its reply.
    frame = (bytes.fromhex("0000003f10012c3c4002") + b"\x56\x08AdminObj\x66\x06notify"
             + bytes.fromhex("7d0000181616") + b"tars.setloglevel DEBUG"
             + bytes.fromhex("810bb8980ca80c"))
    expected = (bytes.fromhex("0000002e10012c30024c5c6d00001d061b")
                + b"tars.setloglevel DEBUG succ" + bytes.fromhex("780c"))
    async with admin_server() as (_, _, wire):
        await wire.send(frame)
        assert len(frame) == 0x3F
        assert await wire.read_frame() == expected[4:]
    logging.getLogger(LOGGER).setLevel(logging.NOTSET)


@async_test
async def test_viewstatus_connection_help_version() -> None:
    async with admin_server() as (server, _, wire):
        calc = await Wire.open(server.endpoint(OBJ).port)
        await calc.call(request("tars_ping"))
        status = await notify(wire, "tars.viewstatus")
        assert "app: App" in status and "server: Srv" in status
        assert f"pid: {os.getpid()}" in status and "uptime: " in status
        assert f"servant={OBJ} endpoint={server.endpoint(OBJ)} connections=1 inflight=0" in status
        conns = await notify(wire, "tars.connection")
        local = calc.writer.get_extra_info("sockname")
        assert f"adapter {OBJ}Adapter" in conns and f"  127.0.0.1:{local[1]}" in conns
        helptext = await notify(wire, "tars.help")
        for name in ("tars.viewstatus", "tars.setloglevel", "tars.loadconfig", "prestop"):
            assert name in helptext
        assert (await notify(wire, "tars.viewversion")).startswith("k8stars ")
        await calc.close()


@async_test
async def test_unknown_and_application_commands() -> None:
    async with admin_server() as (_, admin, wire):
        assert await notify(wire, "tars.nosuch x") == (
            "tars.nosuch x not support now! (unknown command, see tars.help)")

        def boom(command: str) -> str:
            raise RuntimeError("it broke")

        async def later(command: str) -> str:
            await asyncio.sleep(0)
            return f"got [{command}]"

        admin.register_command("app.boom", boom)
        admin.register_command("app.later", later, "an async command")
        admin.register_command("app.quiet", lambda command: None)
        assert await notify(wire, "app.boom now") == "app.boom now failed: RuntimeError: it broke"
        assert await notify(wire, "app.later a b") == "got [app.later a b]"
        assert await notify(wire, "app.quiet") == "app.quiet succ"
        assert "app.later: an async command" in await notify(wire, "tars.help")
        with pytest.raises(ValueError, match="already registered"):
            admin.register_command("tars.viewstatus", boom)


@async_test
async def test_prestop_hooks_and_loadconfig() -> None:
    calls: list[str] = []

    async def drain() -> None:
        calls.append("drain")

    def broken() -> None:
        raise OSError("disk full")

    async with admin_server() as (_, admin, wire):
        assert await notify(wire, "prestop") == "prestop: no hooks registered"
        admin.add_prestop_hook(lambda: calls.append("sync"))
        admin.add_prestop_hook(drain)
        admin.add_prestop_hook(broken)
        assert await notify(wire, "prestop") == (
            "prestop: ran 3 hook(s), 1 failed: OSError: disk full")
        assert calls == ["sync", "drain"]
        answer = await notify(wire, "tars.loadconfig app.conf")
        assert answer.startswith("Getconfig Error!: app.conf: no config service")
        assert "missing file name" in await notify(wire, "tars.loadconfig")
        admin.config_loader = lambda name: f"saved {name}"
        assert await notify(wire, "tars.loadconfig app.conf") == (
            "Getconfig Success!: app.conf\nsaved app.conf")


@async_test
async def test_getpid_and_shutdown() -> None:
    async with admin_server() as (server, _, wire):
        resp = await wire.call(request("getPid", servant=ADMIN_SERVANT, request_id=4))
        pid: Any = ADMIN_INTERFACE.methods["getPid"].result.tars_decode(resp.sBuffer)
        assert pid.tars_ret == os.getpid()
        calc = await Wire.open(server.endpoint(OBJ).port)
        resp = await wire.call(request("shutdown", servant=ADMIN_SERVANT, request_id=5))
        assert (resp.iRequestId, resp.iRet, resp.sBuffer) == (5, 0, b"")
        await asyncio.wait_for(server.wait_closed(), 2)
        assert await wire.closed_by_peer() and await calc.closed_by_peer()
        await calc.close()
