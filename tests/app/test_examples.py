"""The examples, started as ``tarscli supervisor`` starts them: genconf, then ``bin/start.sh``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from k8stars.app import Application
from k8stars.tars.client import Communicator
from tests.interop.node_peer import NODE_DIR, ensure_node_modules, find_node, node_available

from .support import (
    EXAMPLES,
    QUERY_OBJ,
    SAY_HELLO,
    SayHelloImp,
    StaticQuery,
    admin_proxy,
    async_test,
    make_tars_path,
    output,
    port_closed,
    registry,
    start_example,
    stop_process,
    wait_port,
)


async def http_get(host: str, port: int, path: str = "/") -> tuple[int, str]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


@pytest.mark.parametrize("example", ["simple", "hello", "node-hello"])
def test_example_layout(example: str) -> None:
    root = EXAMPLES / example
    for name in ("_server_meta.yaml", "start.sh", "Dockerfile", "README.md"):
        assert (root / name).is_file(), name
    assert os.access(root / "start.sh", os.X_OK)
    assert "FROM k8stars/base" in (root / "Dockerfile").read_text()
    assert "exec " in (root / "start.sh").read_text()


@async_test
async def test_hello_example_sigterm(tmp_path: Path) -> None:
    query = StaticQuery()
    reg, locator = await registry(**{QUERY_OBJ: query})
    tp = make_tars_path(tmp_path, example="hello", locator=locator)
    endpoint = tp.adapter_endpoint("SayHelloObj")
    query.table["TestApp.HelloPy.SayHelloObj"] = [endpoint]
    proc = start_example(tp)
    try:
        await wait_port(endpoint, proc=proc)
        await wait_port(tp.local, proc=proc)
        async with Communicator() as comm:
            hello = comm.proxy(SAY_HELLO, tp.proxy_string("SayHelloObj"))
            assert await hello.SayHello("Ada") == "hello Ada"
            assert await admin_proxy(comm, tp).notify("prestop") == "prestop: ran 1 hook(s)"
        # the example's client script, through the registry
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, str(EXAMPLES / "hello" / "client.py"),
                             "--locator", locator, "Bob"],
            capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("hello Bob (Add(1, 2) = 3, ret 0;")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        stop_process(proc)
        await reg.stop(1)
    log = (tp.log_dir / "TestApp.HelloPy.log").read_text()
    assert "prestop: draining" in log
    assert "received SIGTERM: stopping" in log and "TestApp.HelloPy stopped" in log
    assert port_closed(endpoint) and port_closed(tp.local)


@async_test
async def test_simple_example_http_calls_main_through_registry(tmp_path: Path) -> None:
    query = StaticQuery()
    reg, locator = await registry(**{QUERY_OBJ: query})
    tp = make_tars_path(tmp_path, example="simple", locator=locator)
    main, http = tp.adapter_endpoint("MainObj"), tp.adapter_endpoint("HttpObj")
    query.table["App.SimpleServer.MainObj"] = [main]
    proc = start_example(tp)
    try:
        for ep in (main, http, tp.local):
            await wait_port(ep, proc=proc)
        assert await http_get(http.host, http.port) == (200, "sum is 3")
        assert await http_get(http.host, http.port, "/nope") == (404, "no route for /nope\n")
        assert await http_get(http.host, http.port) == (200, "sum is 3")
        assert query.queries == ["App.SimpleServer.MainObj"]   # resolved once, then cached
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        stop_process(proc)
        await reg.stop(1)
    assert port_closed(http) and port_closed(main)


@pytest.mark.interop
@pytest.mark.skipif(not node_available(), reason="Node.js / npm not available")
@async_test
async def test_node_hello_example(tmp_path: Path) -> None:
    ensure_node_modules()
    tp = make_tars_path(tmp_path, example="node-hello")
    endpoint = tp.adapter_endpoint("SayHelloObj")
    own_modules = EXAMPLES / "node-hello" / "node_modules"
    # the test suite's @tars packages (same pinned versions) unless the example has its own
    # the example is copied without node_modules: point Node at an installed copy
    modules = own_modules if own_modules.is_dir() else NODE_DIR / "node_modules"
    env = {"NODE_PATH": str(modules)}
    proc = start_example(tp, **env)
    try:
        await wait_port(endpoint, proc=proc)
        await wait_port(tp.local, proc=proc)
        async with Communicator() as comm:
            hello = comm.proxy(SAY_HELLO, tp.proxy_string("SayHelloObj"))
            await hello.tars_ping()
            assert await hello.SayHello("Ada") == "hello Ada"
            assert await hello.Add(2, 40) == (0, 42)
            admin = admin_proxy(comm, tp)
            await admin.tars_ping()
            assert await admin.notify("prestop") == "prestop: draining"
            status = await admin.notify("tars.viewstatus")
            assert "server: HelloNode" in status
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0, output(tp)
    finally:
        stop_process(proc)
    assert "TestApp.HelloNode started" in output(tp)
    assert port_closed(endpoint)


@pytest.mark.interop
@pytest.mark.skipif(not node_available(), reason="Node.js / npm not available")
@async_test
async def test_node_client_calls_python_hello_through_registry(tmp_path: Path) -> None:
    ensure_node_modules()
    query = StaticQuery()
    reg, locator = await registry(**{QUERY_OBJ: query})
    tp = make_tars_path(tmp_path, meta="application: TestApp\nserver: HelloPy\n"
                        "adapters:\n  - object: SayHelloObj\n", locator=locator)
    query.table["TestApp.HelloPy.SayHelloObj"] = [tp.adapter_endpoint("SayHelloObj")]
    app = Application(setup_logs=False)
    app.add_servant("SayHelloObj", SayHelloImp())
    await app.start(config=tp.conf)
    try:
        env = {**os.environ, "NODE_NO_WARNINGS": "1"}
        if not (EXAMPLES / "node-hello" / "node_modules").is_dir():
            env["NODE_PATH"] = str(NODE_DIR / "node_modules")
        proc = await asyncio.create_subprocess_exec(
            find_node() or "node", str(EXAMPLES / "node-hello" / "client.js"), "--locator", locator,
            "--servant", "TestApp.HelloPy.SayHelloObj", "Ada", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == "hello Ada (Add(1, 2) = 3)"
        assert "TestApp.HelloPy.SayHelloObj" in query.queries
    finally:
        await app.stop(1)
        await reg.stop(1)
