"""Our registry with TarsNode clients: @tars/rpc resolves a Python Calc server registered through
onStartup (``calc_client.js --locator``) and stops getting its endpoint after keepAlive(inactive)
or onPrestop; @tars/registry's lookups see the same lists."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from k8stars.registry.main import RegistryRuntime
from k8stars.registry.service import ServiceOptions
from k8stars.registry.settings import RegistrySettings
from k8stars.tars.client import Communicator
from k8stars.tars.idl.loader import framework
from k8stars.tars.server import Server

from .calc_servant import CalcImp
from .node_peer import NODE_DIR, ensure_node_modules, find_node
from .node_rpc import node_available, run_calc_client

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not node_available(), reason="Node.js / npm not available"),
]

IDL = framework()
REGISTRY = IDL.interface("tars.tarsregistry")
StartupReq: Any = IDL.struct("tars.onStartupReq")
AdapterConf: Any = IDL.struct("tars.AdapterConf")
KeepAliveReq: Any = IDL.struct("tars.keepAliveReq")
PrestopReq: Any = IDL.struct("tars.onPrestopReq")
CALC_OBJ = "App.PyServer.CalcObj"


class CountingCalc(CalcImp):
    def __init__(self) -> None:
        super().__init__()
        self.adds = 0

    def add(self, a: int, b: int) -> int:
        self.adds += 1
        return a + b


def registry_lookup(locator: str, obj: str, method: str = "findObjectById",
                    arg: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run ``registry_lookup.js`` (@tars/registry) once."""
    node = find_node()
    assert node is not None
    ensure_node_modules()
    cmd = [node, str(NODE_DIR / "registry_lookup.js"), "--locator", locator, "--id", obj,
           "--method", method]  # fmt: skip
    if arg is not None:
        cmd += ["--arg", arg]
    proc = subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=30,
                          env={"NODE_NO_WARNINGS": "1", "PATH": str(Path(node).parent)},
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _ports(eps: list[dict[str, Any]]) -> list[int]:
    return sorted(int(e["port"]) for e in eps)


def test_node_clients_follow_registrations(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = RegistrySettings(host="127.0.0.1", advertise_host="127.0.0.1", query_port=0,
                                    registry_port=0, admin_port=0, metrics_port=0,
                                    db_url=f"sqlite:///{tmp_path / 'db_tars.sqlite'}")  # fmt: skip
        registry = RegistryRuntime(settings, ServiceOptions())
        await registry.start()
        calcs = [CountingCalc(), CountingCalc()]
        servers = []
        for calc in calcs:
            server = Server(app="App", server="PyServer")
            server.add_servant(CALC_OBJ, calc, "tcp -h 127.0.0.1 -p 0 -t 60000")
            await server.start()
            servers.append(server)
        ports = [s.endpoint(CALC_OBJ).port for s in servers]
        nodes = ["127.0.0.1", "127.0.0.2"]  # one pod each (the node name is the pod IP)
        locator = registry.query_proxy
        comm = Communicator()
        reg = comm.proxy(REGISTRY, registry.registry_proxy)

        async def node_adds(n: int, timeout_ms: int = 3000) -> list[dict[str, Any]]:
            calls = [{"op": "add", "args": [i, 1]} for i in range(n)]
            return await asyncio.to_thread(run_calc_client, calls, proxy=CALC_OBJ,
                                           locator=locator, timeout_ms=timeout_ms)  # fmt: skip

        async def lookup(method: str = "findObjectById4Any") -> dict[str, Any]:
            return await asyncio.to_thread(registry_lookup, locator, CALC_OBJ, method)

        try:
            for node, server in zip(nodes, servers, strict=True):
                await reg.onStartup(StartupReq(
                    nodeName=node, application="App", server="PyServer", State="active",
                    adapters=[AdapterConf(servant=CALC_OBJ,
                                          endpoint=server.endpoint(CALC_OBJ).render())]))
            # 1. both endpoints resolve and get calls (a fresh client process per phase:
            #    TarsNode clients cache endpoints)
            results = await node_adds(6)
            assert [r["ret"] for r in results] == [i + 1 for i in range(6)]
            assert calcs[0].adds > 0 and calcs[1].adds > 0
            found = await lookup("findObjectById")
            assert _ports(found["active"]) == sorted(ports)
            own = await asyncio.to_thread(registry_lookup, locator, "tars.tarsregistry.Registry")
            assert [(e["host"], e["port"]) for e in own["active"]] == [
                ("127.0.0.1", registry.server.endpoint(  # type: ignore[union-attr]
                    "tars.tarsregistry.Registry").port)]

            # 2. keepAlive(inactive) on the first: no longer handed out
            await reg.keepAlive(KeepAliveReq(nodeName=nodes[0], state="inactive",
                                             application="App", server="PyServer"))
            before = calcs[0].adds
            results = await node_adds(4)
            assert all(r["ok"] for r in results) and calcs[0].adds == before
            found = await lookup()
            assert (found["ret"], _ports(found["active"]), _ports(found["inactive"])) == (
                0, [ports[1]], [ports[0]])

            # 3. back to active; the second leaves with onPrestop
            await reg.keepAlive(KeepAliveReq(nodeName=nodes[0], state="active",
                                             application="App", server="PyServer"))
            await reg.onPrestop(PrestopReq(nodeName=nodes[1], application="App",
                                           server="PyServer"))  # fmt: skip
            before = calcs[1].adds
            results = await node_adds(4)
            assert all(r["ok"] for r in results) and calcs[1].adds == before
            found = await lookup("findObjectByIdInSameGroup")
            assert (_ports(found["active"]), found["inactive"]) == ([ports[0]], [])

            # 4. the last one leaves: a fresh client finds nothing to call
            await reg.onPrestop(PrestopReq(nodeName=nodes[0], application="App",
                                           server="PyServer"))  # fmt: skip
            results = await node_adds(1, timeout_ms=1000)
            assert not results[0]["ok"], results
            found = await lookup("findObjectById")
            assert found["active"] == []
        finally:
            await comm.close()
            for server in servers:
                await server.stop(1)
            await registry.stop()

    asyncio.run(scenario())
