"""The registry (``tarsregistry`` on SQLite), a Python TARS server and a TarsNode server, each
started by ``tarscli supervisor`` as a simulated pod (own POD_IP 127.0.0.x, own TARS_PATH), and
TarsNode clients finding them through the registry.

The test plays the kubelet: it runs the readiness probe (``tarscli hzcheck``), the preStop hook
(``tarscli prestop``) and SIGTERM, with short timings from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from k8stars.tars.client import Communicator
from k8stars.tars.endpoint import Endpoint
from k8stars.tars.idl.loader import framework
from tests.cli.registry_process import RegistryProcess
from tests.cli.test_supervisor_support import TARSCLI, Pod, eventually
from tests.interop.node_peer import NODE_DIR, ensure_node_modules
from tests.interop.node_rpc import node_available, run_calc_client, run_rpc_load

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not node_available(), reason="Node.js / npm not available"),
]

QUERY = framework().interface("tars.QueryF")
PY_OBJ = "App.PyServer.CalcObj"
NODE_OBJ = "App.NodeServer.CalcObj"

NODE_META = """\
application: App
server: NodeServer
adapters:
  - object: CalcObj
"""
NODE_START = """#!/bin/sh
exec node {script} --config "$TARS_PATH/conf/NodeServer.conf" --admin
"""
PY_META = """\
application: App
server: PyServer
adapters:
  - object: CalcObj
"""
E2E_ENV = {"TARS_REPORT_INTERVAL": "1s", "TARS_PRESTOP_WAITTIME": "2s",
           "NODE_NO_WARNINGS": "1"}


class Registry(RegistryProcess):
    """``tarsregistry`` as a process on fixed ports, restartable on the same or a new database;
    asked through QueryF as clients ask it."""

    def active(self, obj: str) -> list[str]:
        """``host:port`` of the object's active endpoints, as the registry answers now."""

        async def ask() -> list[str]:
            async with Communicator() as comm:
                query: Any = comm.proxy(QUERY, self.locator)
                ret, active, _ = await query.findObjectByIdInSameGroup(obj, _timeout=3.0)
                assert ret == 0
                return sorted(f"{e.host}:{e.port}" for e in map(Endpoint.from_endpointf, active))

        return asyncio.run(ask())


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
    return found


def service_pid(pod: Pod) -> int:
    """The supervised service: the supervisor's child running the server."""
    assert pod.process is not None
    for pid in _children(pod.process.pid):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"calc_server.js" in cmdline or b"test_supervisor_service" in cmdline:
                return pid
    return 0


def endpoint_of(pod: Pod) -> str:
    from k8stars.cli.meta import load_server_info

    (adapter,) = load_server_info(str(pod.tars_path)).adapters
    words = adapter.endpoint.split()
    return f"{words[words.index('-h') + 1]}:{words[words.index('-p') + 1]}"


def add(proxy: str, locator: str | None, a: int = 40, b: int = 2) -> dict[str, Any]:
    (result,) = run_calc_client([{"op": "add", "args": [a, b]}], proxy=proxy, locator=locator)
    return result


@contextlib.contextmanager
def pods(tmp_path: Path, registry: Registry) -> Iterator[tuple[Pod, Pod]]:
    ensure_node_modules()
    py = Pod.create(tmp_path / "py", registry.locator, meta=PY_META, env=E2E_ENV)
    node = Pod.create(tmp_path / "node", registry.locator, meta=NODE_META, env=E2E_ENV,
                      start=NODE_START.format(script=NODE_DIR / "calc_server.js"))
    py.start()
    node.start()
    try:
        yield py, node
    finally:
        py.stop()
        node.stop()


def test_pods_register_serve_restart_drain_and_stop(tmp_path: Path) -> None:
    registry = Registry(tmp_path).start()
    try:
        with pods(tmp_path, registry) as (py, node):
            for pod in (py, node):
                pod.wait_state("active", 20)
                assert pod.hzcheck() == 0
            # found through the registry by a TarsNode client, and answering it
            for obj, pod in ((PY_OBJ, py), (NODE_OBJ, node)):
                assert eventually(partial(registry.active, obj), 10,
                                  what=f"{obj} in the registry") == [endpoint_of(pod)]
                result = add(obj, registry.locator)
                assert result["ok"] and result["ret"] == 42, result

            # killing the service: the supervisor restarts it
            old = service_pid(node)
            os.kill(old, signal.SIGKILL)
            eventually(lambda: service_pid(node) not in (0, old), 15, what="a restart")
            node.wait_state("active", 20)
            eventually(lambda: add(NODE_OBJ, registry.locator)["ok"], 15,
                       what="the restarted Node server answering")

            # preStop: the registry stops handing the pod out at once, while the pod keeps
            # serving the clients that still have it (calls in flight complete)
            loads: list[dict[str, Any]] = []
            load = threading.Thread(target=lambda: loads.append(run_rpc_load(
                PY_OBJ, locator=registry.locator, concurrency=4, seconds=2.5, warmup=0.3)))
            load.start()
            time.sleep(0.8)
            hook = subprocess.Popen([TARSCLI, "prestop"], env=py.env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            eventually(lambda: registry.active(PY_OBJ) == [], 5, what="the pod out of answers")
            assert py.hzcheck() == 0  # deactivating pods stay Ready on purpose
            direct = add(f"{PY_OBJ}@tcp -h {py.ip} -p {endpoint_of(py).split(':')[1]}", None)
            assert direct["ok"], direct
            load.join(30)
            assert hook.wait(15) == 0
            assert hook.stderr is not None
            hook.stderr.close()
            (stats,) = loads
            assert stats["calls"] > 0 and stats["errors"] == 0, stats
            assert registry.active(NODE_OBJ) == [endpoint_of(node)]

            # SIGTERM (after the hook; and without it for the Node pod): clean and fast
            for pod in (py, node):
                service = service_pid(pod)
                started = time.monotonic()
                pod.signal(signal.SIGTERM)
                assert pod.wait(30) == 0, pod.log()
                took = time.monotonic() - started
                assert took < 10, took  # far inside terminationGracePeriodSeconds (90)
                assert not os.path.exists(f"/proc/{service}")
            assert registry.active(NODE_OBJ) == [] and registry.active(PY_OBJ) == []
            assert "AdminObj.shutdown sent" in node.log()
            assert "prestop has already run" in py.log()
    finally:
        registry.stop()


def test_registry_down_at_start_and_for_a_while(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    try:
        with pods(tmp_path, registry) as (py, node):
            for pod in (py, node):
                pod.wait_state("active", 20)  # K8STARS #17: ready without any registry
                assert pod.hzcheck() == 0
            registry.start()
            for obj, pod in ((PY_OBJ, py), (NODE_OBJ, node)):
                assert eventually(partial(registry.active, obj), 15,
                                  what=f"{obj} registered late") == [endpoint_of(pod)]
            assert add(PY_OBJ, registry.locator)["ok"]

            # the registry goes away (and comes back having lost its database)
            registry.stop()
            time.sleep(3)
            for pod in (py, node):
                assert pod.state() == "active" and pod.hzcheck() == 0
            registry.start(db=tmp_path / "fresh.sqlite")
            for obj, pod in ((PY_OBJ, py), (NODE_OBJ, node)):
                assert eventually(partial(registry.active, obj), 15,
                                  what=f"{obj} re-registered") == [endpoint_of(pod)]
            result = add(NODE_OBJ, registry.locator)
            assert result["ok"] and result["ret"] == 42, result
    finally:
        registry.stop()
