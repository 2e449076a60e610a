"""Resolution through the registry: a hand-written QueryF servant on a raw test server."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from k8stars.tars.client import Communicator
from k8stars.tars.client_config import ClientConfig, local_ip
from k8stars.tars.config import parse_config
from k8stars.tars.errors import TarsNoEndpointError
from k8stars.tars.packet import MessageType

from .test_client_support import (
    QueryServant,
    RawServer,
    async_test,
    calc_handler,
    calc_interface,
    eventually,
    free_port,
    query_interface,
)

OBJ = "App.Server.CalcObj"
QUERY_OBJ = "tars.tarsregistry.QueryObj"
FAST = ClientConfig(refresh_endpoint_interval=100, refresh_error_retry=100,
                    refresh_empty_retry=100, node_name="10.0.0.5")


def communicator(registry: RawServer, config: ClientConfig = FAST) -> Communicator:
    return Communicator(config, locator=f"{QUERY_OBJ}@{registry.endpoint}")


def finds(registry: RawServer) -> list[Any]:
    return [r for r in registry.requests if r.sFuncName.startswith("findObjectById")]


@async_test
async def test_resolves_through_the_locator() -> None:
    query = QueryServant()
    async with RawServer(calc_handler) as calc_server, RawServer(query) as registry, \
            communicator(registry, dataclasses.replace(FAST, refresh_endpoint_interval=60000)
                         ) as comm:
        query.table[OBJ] = [calc_server.ep]
        calc: Any = comm.proxy(calc_interface(), OBJ)
        assert calc.endpoints == ()
        results = await asyncio.gather(*(calc.add(i, i) for i in range(5)))
        assert results == [0, 2, 4, 6, 8]
        assert calc.endpoints == (calc_server.ep,)
        (req,) = finds(registry)  # concurrent first calls share one lookup
        assert req.sFuncName == "findObjectByIdInSameGroup"
        assert req.sServantName == QUERY_OBJ
        assert req.context == {"node_name": "10.0.0.5"}
        # Another proxy of the same object shares the list.
        again: Any = comm.proxy(calc_interface(), OBJ + "#2")
        assert await again.add(1, 1) == 2
        assert len(finds(registry)) == 1


@async_test
async def test_refresh_picks_up_a_changed_list() -> None:
    query = QueryServant()
    async with RawServer(calc_handler) as a, RawServer(calc_handler) as b, \
            RawServer(query) as registry, communicator(registry) as comm:
        query.table[OBJ] = [a.ep]
        calc: Any = comm.proxy(calc_interface(), OBJ)
        assert await calc.add(1, 2) == 3
        query.table[OBJ] = [b.ep]

        async def served_by_b() -> bool:
            assert await calc.add(1, 2) == 3
            return len(b.requests) > 0

        await eventually(served_by_b)
        assert calc.endpoints == (b.ep,)
        before = len(a.requests)
        for _ in range(5):
            await calc.add(1, 2)
        assert len(a.requests) == before


@async_test
async def test_empty_answer_and_failing_locator_keep_the_last_list() -> None:
    query = QueryServant()
    async with RawServer(calc_handler) as calc_server, RawServer(query) as registry, \
            communicator(registry) as comm:
        query.table[OBJ] = [calc_server.ep]
        calc: Any = comm.proxy(calc_interface(), OBJ)
        assert await calc.add(1, 2) == 3

        async def queried_again(n: int) -> bool:
            assert await calc.add(1, 2) == 3
            return len(finds(registry)) >= n

        query.table[OBJ] = []  # empty active list
        await eventually(lambda: queried_again(3))
        query.table[OBJ] = [calc_server.ep]
        query.broken = True  # iRet -99
        await eventually(lambda: queried_again(5))
        query.broken = False
        query.ret = -1  # non-zero ret
        await eventually(lambda: queried_again(7))
        await registry.stop()  # locator unreachable
        await asyncio.sleep(0.3)
        for _ in range(3):
            assert await calc.add(1, 2) == 3
        assert calc.endpoints == (calc_server.ep,)


@async_test
async def test_object_resolved_to_nothing() -> None:
    query = QueryServant()
    async with RawServer(query) as registry, communicator(registry) as comm:
        calc: Any = comm.proxy(calc_interface(), "App.Server.Unknown")
        with pytest.raises(TarsNoEndpointError) as info:
            await calc.add(1, 2)
        assert info.value.code == -10
        assert "App.Server.Unknown" in str(info.value)
        query.ret = -1
        with pytest.raises(TarsNoEndpointError, match="answered -1"):
            await calc.add(1, 2)


@async_test
async def test_unreachable_locator_without_a_list() -> None:
    async with Communicator(FAST, locator=f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p {free_port()}"
                            ) as comm:
        calc: Any = comm.proxy(calc_interface(), OBJ)
        with pytest.raises(TarsNoEndpointError, match="cannot connect"):
            await calc.add(1, 2)


def test_no_locator_configured() -> None:
    with pytest.raises(ValueError, match="no locator"):
        Communicator().proxy(calc_interface(), OBJ)


@async_test
async def test_set_routing_uses_find_in_same_set() -> None:
    query = QueryServant()
    config = dataclasses.replace(FAST, set_division="app.sz.1")
    async with RawServer(calc_handler) as calc_server, RawServer(query) as registry, \
            communicator(registry, config) as comm:
        query.table[OBJ] = [calc_server.ep]
        calc: Any = comm.proxy(calc_interface(), OBJ)
        assert await calc.add(2, 2) == 4
        req = finds(registry)[0]
        assert req.sFuncName == "findObjectByIdInSameSet"
        args: Any = calc_query_args(req.sFuncName, req.sBuffer)
        assert (args.id, args.setId) == (OBJ, "app.sz.1")
        call = calc_server.calls("add")[0]
        assert call.iMessageType & MessageType.SETNAME
        assert call.status == {"STATUS_SETNAME_VALUE": "app.sz.1"}


def calc_query_args(func: str, body: bytes) -> Any:
    return query_interface().methods[func].args.tars_decode(body)


@async_test
async def test_locator_list_refreshed_through_itself() -> None:
    first, second = QueryServant(), QueryServant()
    async with RawServer(calc_handler) as calc_server, RawServer(first) as reg1, \
            RawServer(second) as reg2, communicator(reg1) as comm:
        for query in (first, second):
            query.table[OBJ] = [calc_server.ep]
        first.table[QUERY_OBJ] = [reg2.ep]
        calc: Any = comm.proxy(calc_interface(), OBJ)
        assert await calc.add(1, 2) == 3

        async def second_registry_used() -> bool:
            assert await calc.add(1, 2) == 3
            return len(finds(reg2)) > 0

        await eventually(second_registry_used)
        assert any(r.sBuffer and calc_query_args(r.sFuncName, r.sBuffer).id == QUERY_OBJ
                   for r in finds(reg1))
        assert comm.locator is not None
        assert comm.locator.proxy.endpoints == (reg2.ep,)


@async_test
async def test_from_config() -> None:
    query = QueryServant()
    async with RawServer(calc_handler) as calc_server, RawServer(query) as registry:
        query.table[OBJ] = [calc_server.ep]
        cfg = parse_config(f"""
<tars>
  <application>
    enableset=Y
    setdivision=app.sz.1
    <client>
      locator={QUERY_OBJ}@{registry.endpoint}
      sync-invoke-timeout=1500
      refresh-endpoint-interval=200
      connect-timeout=700
    </client>
    <server>
      app=App
      server=Server
      localip=10.0.0.7
    </server>
  </application>
</tars>
""")
        comm = Communicator.from_config(cfg)
        try:
            assert comm.config == ClientConfig(
                locator=f"{QUERY_OBJ}@{registry.endpoint}", sync_invoke_timeout=1500,
                refresh_endpoint_interval=200, connect_timeout=700, node_name="10.0.0.7",
                set_division="app.sz.1")
            calc: Any = comm.proxy(calc_interface(), OBJ)
            assert await calc.add(1, 2) == 3
            req = finds(registry)[0]
            assert req.sFuncName == "findObjectByIdInSameSet"
            assert req.context == {"node_name": "10.0.0.7"}
            assert req.iTimeout == 1500
            assert calc_server.calls("add")[0].iTimeout == 1500
        finally:
            await comm.close()


def conf(*lines: str) -> str:
    return "\n".join(lines)


def test_client_config_from_files() -> None:
    cfg = parse_config(conf("<tars>", "<application>", "<client>", "locator=Q@tcp -h h -p 1",
                            "</client>", "<server>", "node_name=node-1", "localip=10.1.1.1",
                            "</server>", "</application>", "</tars>"))
    config = ClientConfig.from_tars_config(cfg)
    assert config.locator == "Q@tcp -h h -p 1"
    assert config.sync_invoke_timeout == 3000
    assert config.refresh_endpoint_interval == 60000
    assert config.node_name == config.context_node_name == "node-1"
    assert config.set_division is None
    # enableset with a bad division: set routing stays off.
    cfg = parse_config(conf("<tars>", "<application>", "enableset=y", "setdivision=app.*.1",
                            "</application>", "</tars>"))
    assert ClientConfig.from_tars_config(cfg).set_division is None
    # Client keys win over application keys.
    cfg = parse_config(conf("<tars>", "<application>", "enableset=n", "setdivision=a.b.c",
                            "<client>", "enableset=y", "setdivision=x.y.z", "</client>",
                            "</application>", "</tars>"))
    assert ClientConfig.from_tars_config(cfg).set_division == "x.y.z"
    empty = ClientConfig.from_tars_config(parse_config(""))
    assert empty == ClientConfig()
    assert empty.context_node_name == local_ip()


@pytest.mark.parametrize("kwargs", [
    {"sync_invoke_timeout": 0},
    {"refresh_endpoint_interval": -1},
    {"locator": "tars.tarsregistry.QueryObj"},
    {"set_division": "a.b"},
    {"set_division": "*.b.c"},
])
def test_client_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClientConfig(**kwargs)
