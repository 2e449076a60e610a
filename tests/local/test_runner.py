"""The examples under the local runner, end to end: up, status, calls through the registry
(Python, HTTP, TarsNode), a second up refused, rolling restarts under load with no failed
call, scale, and a down that leaves no process and no listening port behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from k8stars.local.registry import http_get
from k8stars.tars.client import Communicator
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.idl.loader import framework, load

from .support import (
    EXAMPLES,
    alive,
    k8stars,
    leftovers,
    listening,
    node_hello_copy,
    registry_options,
    state,
)

SAY_HELLO = load(EXAMPLES / "hello" / "SayHello.tars").interface("TestApp.SayHello")


@dataclass
class Running:
    state_dir: Path
    locator: str
    node_dir: Path | None
    seen_pids: set[int] = field(default_factory=set)
    seen_ports: set[tuple[str, int]] = field(default_factory=set)

    def remember(self) -> dict[str, Any]:
        """The current state; every pid and port seen is checked after down."""
        current = state(self.state_dir)
        self.seen_pids.add(current["registry"]["pid"])
        reg = current["registry"]
        for key in ("query_port", "registry_port", "admin_port", "metrics_port"):
            self.seen_ports.add((reg["host"], reg[key]))
        for pod in current["pods"]:
            self.seen_pids.add(pod["pid"])
            for ep in pod["endpoints"]:
                self.seen_ports.add((ep["host"], ep["port"]))
        self.seen_pids.update(leftovers(self.state_dir))
        return current


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("runner")
    node_dir = node_hello_copy(tmp)
    state_dir = tmp / "state"
    options = registry_options()
    services = ["examples/simple", "examples/hello"] + ([str(node_dir)] if node_dir else [])
    started = time.monotonic()
    result = k8stars(state_dir, "up", *services, "--replicas", "2", "--detach", *options)
    took = time.monotonic() - started
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        print(f"up --detach: {took:.1f}s")
        locator = f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {options[1]}"
        yield Running(state_dir, locator, node_dir)
    finally:
        k8stars(state_dir, "down")


def test_up_serves_every_replica(running: Running) -> None:
    current = running.remember()
    pods = current["pods"]
    expected = 6 if running.node_dir else 4
    assert len(pods) == expected
    assert all(p["state"] == "ready" and p["registry"] == "active" for p in pods), pods
    assert all(p["tars_state"] == "active" for p in pods), pods
    ips = [p["ip"] for p in pods]
    assert len(set(ips)) == len(ips) and all(ip.startswith("127.0.0.") for ip in ips)
    names = {p["name"] for p in pods}
    assert any(re.fullmatch(r"simpleserver-[0-9a-f]{6}-[12]", n) for n in names)
    for pod in pods:
        tars_path = Path(pod["tars_path"])
        assert (tars_path / "bin" / "_server_meta.yaml").is_file()
        assert (tars_path / "data" / "server_info.yaml").is_file()
        assert all(ep["host"] == pod["ip"] for ep in pod["endpoints"])
    out = k8stars(running.state_dir, "status")
    assert out.returncode == 0, out.stderr
    assert f"{expected}/{expected} pods ready" in out.stdout
    assert "App.SimpleServer" in out.stdout and "HttpObj" in out.stdout


def test_calls_through_the_registry(running: Running) -> None:
    out = k8stars(running.state_dir, "call", "App.SimpleServer.MainObj", "Sum", "1", "2")
    assert (out.returncode, out.stdout) == (0, "3\n"), out.stderr
    out = k8stars(running.state_dir, "call", "TestApp.HelloPy.SayHelloObj", "Add", "40", "2")
    assert out.stdout == '{"return": 0, "c": 42}\n', out.stderr
    out = k8stars(running.state_dir, "http", "App.SimpleServer.HttpObj")
    assert (out.returncode, out.stdout) == (0, "sum is 3\n"), out.stderr
    client = subprocess.run([sys.executable, str(EXAMPLES / "hello" / "client.py"),
                             "--locator", running.locator, "Ada"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert client.returncode == 0, client.stderr
    assert client.stdout.startswith("hello Ada (Add(1, 2) = 3, ret 0;")
    out = k8stars(running.state_dir, "call", "App.SimpleServer.MainObj", "Sum", "1")
    assert out.returncode == 2 and "takes 2 argument(s), 1 given" in out.stderr


def test_tarsnode_server_and_client(running: Running) -> None:
    if running.node_dir is None:
        pytest.skip("Node.js / npm not available")
    out = k8stars(running.state_dir, "call", "TestApp.HelloNode.SayHelloObj", "SayHello", "Py")
    assert (out.returncode, out.stdout) == (0, '"hello Py"\n'), out.stderr
    from tests.interop.node_peer import find_node

    for servant in ("TestApp.HelloPy.SayHelloObj", "TestApp.HelloNode.SayHelloObj"):
        node = subprocess.run(
            [find_node() or "node", str(running.node_dir / "client.js"), "--locator",
             running.locator, "--servant", servant, "Node"],
            capture_output=True, text=True, timeout=30, check=False,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "NODE_NO_WARNINGS": "1"})
        assert node.returncode == 0, node.stdout + node.stderr
        assert "hello Node" in node.stdout


def test_second_up_is_refused(running: Running) -> None:
    before = state(running.state_dir)["pods"]
    out = k8stars(running.state_dir, "up", "examples/hello", "--detach", *registry_options())
    assert out.returncode == 1
    assert "already running" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert state(running.state_dir)["pods"] == before


async def _tars_loop(locator: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    async with Communicator(locator=locator, refresh_endpoint_interval=1000,
                            sync_invoke_timeout=3000) as comm:
        hello = comm.proxy(SAY_HELLO, "TestApp.HelloPy.SayHelloObj")
        while not stop.is_set():
            try:
                assert await hello.SayHello("loop") == "hello loop"
                counts["ok"] += 1
            except TarsRpcError as exc:
                counts["failed"] += 1
                counts.setdefault("first_error", str(exc))  # type: ignore[arg-type]
            await asyncio.sleep(0.01)


async def _http_loop(locator: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """GET / on HttpObj, its endpoints refreshed from the registry every 0.5 s (a client with
    a short cache); each answer comes from MainObj, called through the registry."""
    async with Communicator(locator=locator) as comm:
        query = comm.proxy(framework().interface("tars.QueryF"), locator)
        endpoints: list[tuple[str, int]] = []
        refreshed = 0.0
        i = 0
        while not stop.is_set():
            if time.monotonic() - refreshed > 0.5:
                _, active, _ = await query.findObjectById4All("App.SimpleServer.HttpObj")
                endpoints = [(e.host, e.port) for e in active] or endpoints
                refreshed = time.monotonic()
            host, port = endpoints[i % len(endpoints)]
            i += 1
            try:
                status, body = await http_get(host, port, "/", timeout=5.0)
                ok = status == 200 and body == "sum is 3"
            except (OSError, asyncio.TimeoutError):
                ok = False
            counts["ok" if ok else "failed"] += 1
            await asyncio.sleep(0.01)


def test_rolling_restart_under_load(running: Running) -> None:
    before = running.remember()
    old = {p["name"] for p in before["pods"] if p["service"] != "TestApp.HelloNode"}
    tars: dict[str, int] = {"ok": 0, "failed": 0}
    http: dict[str, int] = {"ok": 0, "failed": 0}
    timings: dict[str, float] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        loops = [asyncio.ensure_future(_tars_loop(running.locator, stop, tars)),
                 asyncio.ensure_future(_http_loop(running.locator, stop, http))]
        await asyncio.sleep(0.5)
        for service in ("hello", "App.SimpleServer"):
            started = time.monotonic()
            out = await asyncio.to_thread(k8stars, running.state_dir, "restart", service)
            timings[service] = time.monotonic() - started
            assert out.returncode == 0, out.stdout + out.stderr
            assert "replica(s) restarted" in out.stdout
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*loops)

    asyncio.run(asyncio.wait_for(scenario(), 90))
    print(f"restart times: {timings}; tars calls {tars}; http calls {http}")
    assert tars["failed"] == 0, tars
    assert http["failed"] == 0, http
    assert tars["ok"] > 100 and http["ok"] > 100
    after = running.remember()
    names = {p["name"] for p in after["pods"] if p["service"] != "TestApp.HelloNode"}
    assert len(names) == 4 and not names & old
    assert all(p["state"] == "ready" and p["registry"] == "active" for p in after["pods"])
    gone = [p["pid"] for p in before["pods"] if p["name"] in old]
    assert not [pid for pid in gone if alive(pid)]


def test_scale(running: Running) -> None:
    out = k8stars(running.state_dir, "scale", "hellopy", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    current = running.remember()
    assert sum(p["service"] == "TestApp.HelloPy" for p in current["pods"]) == 3
    out = k8stars(running.state_dir, "scale", "TestApp.HelloPy", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    current = running.remember()
    assert sum(p["service"] == "TestApp.HelloPy" for p in current["pods"]) == 1
    out = k8stars(running.state_dir, "call", "TestApp.HelloPy.SayHelloObj", "SayHello", "one")
    assert out.stdout == '"hello one"\n', out.stderr
    out = k8stars(running.state_dir, "scale", "nosuch", "1")
    assert out.returncode == 2 and "'nosuch' is not running" in out.stderr


def test_crashed_container_is_restarted(running: Running) -> None:
    """restartPolicy Always: the supervisor killed (SIGKILL, no preStop) comes back, and
    nothing of its old run is left."""
    pod = next(p for p in running.remember()["pods"] if p["service"] == "TestApp.HelloPy")
    old_service = [pid for pid in leftovers(running.state_dir) if pid != pod["pid"]
                   and f"POD_UID={pod['uid']}".encode() in Path(f"/proc/{pid}/environ")
                   .read_bytes().split(b"\0")]
    assert old_service  # the service process under the supervisor
    os.kill(pod["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = next(p for p in state(running.state_dir)["pods"] if p["name"] == pod["name"])
        if now["restarts"] == 1 and now["state"] == "ready" and now["registry"] == "active" \
                and now["pid"] != pod["pid"]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"not restarted: {now}")
    assert not [pid for pid in old_service if alive(pid)]
    out = k8stars(running.state_dir, "call", "TestApp.HelloPy.SayHelloObj", "SayHello", "two")
    assert out.stdout == '"hello two"\n', out.stderr
    running.remember()


def test_down_leaves_nothing(running: Running) -> None:
    running.remember()
    started = time.monotonic()
    out = k8stars(running.state_dir, "down")
    took = time.monotonic() - started
    print(f"down: {took:.1f}s")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "everything stopped" in out.stdout
    assert leftovers(running.state_dir) == []
    assert not [pid for pid in running.seen_pids if alive(pid)]
    assert not [hp for hp in running.seen_ports if listening(*hp)]
    status = k8stars(running.state_dir, "status")
    assert status.returncode == 1 and "not running" in status.stderr
    again = k8stars(running.state_dir, "down")
    assert again.returncode == 0 and "nothing to stop" in again.stdout
