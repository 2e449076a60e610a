"""TARS_METRICS_PORT: an Application serves Prometheus metrics of its calls on POD_IP.

Real processes and sockets: the hello example started as ``tarscli supervisor`` starts it, and
an Application in this process; metrics read with a plain HTTP GET of ``/metrics``.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import socket
from pathlib import Path

import pytest

from k8stars.app import Application, Servant
from k8stars.tars.client import Communicator
from k8stars.tars.errors import TarsRemoteError, TarsRpcError
from k8stars.tars.idl.loader import load_source

from ..cli.test_supervisor_support import free_port
from .support import (
    SAY_HELLO,
    async_test,
    make_tars_path,
    start_example,
    stop_process,
    wait_port,
)
from .test_application import HELLO_META
from .test_examples import http_get

SERVANT = "TestApp.HelloPy.SayHelloObj"
#: SayHello with one more function than the servant has: calls to it are answered -3.
WIDER = load_source("""
module TestApp { interface SayHello {
    string SayHello(string name);
    int Add(int a, int b, out int c);
    void Missing();
}; };
""").interface("TestApp.SayHello")


def listening_ports(ip: str) -> set[int]:
    """TCP ports in LISTEN on ``ip`` (each test's pod IP is its own 127.0.0.x)."""
    want = socket.inet_aton(ip)[::-1].hex().upper()
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, _, port = local.partition(":")
        if host == want and state == "0A":
            ports.add(int(port, 16))
    return ports


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text format (labels in any order)."""
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if m is None or m[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m[2] or ""))
        if found == labels:
            return float(m[3])
    return None


class FailingHello(Servant, interface=SAY_HELLO):
    """``SayHello("fail")`` answers -42; ``Add`` always works."""

    async def SayHello(self, name: str) -> str:
        if name == "fail":
            raise TarsRpcError("no greeting today", code=-42)
        await asyncio.sleep(0.001)  # a suspended call: measured from its arrival all the same
        return f"hello {name}"

    def Add(self, a: int, b: int) -> tuple[int, int]:
        return 0, a + b


@async_test
async def test_hello_example_exports_call_metrics(tmp_path: Path) -> None:
    tp = make_tars_path(tmp_path, example="hello")
    port = free_port(tp.pod_ip)
    endpoint = tp.adapter_endpoint("SayHelloObj")
    proc = start_example(tp, TARS_METRICS_PORT=str(port))
    try:
        await wait_port(endpoint, proc=proc)
        async with Communicator() as comm:
            hello = comm.proxy(SAY_HELLO, tp.proxy_string("SayHelloObj"))
            for name in ("Ada", "Bob", "Cy"):
                await hello.SayHello(name)
            assert await hello.Add(1, 2) == (0, 3)
            with pytest.raises(TarsRemoteError) as info:  # the result does not fit an int
                await hello.Add(2**31 - 1, 1)
            code = info.value.code
        assert listening_ports(tp.pod_ip) == {endpoint.port, port}
        status, text = await http_get(tp.pod_ip, port, "/metrics")
        assert status == 200
        calls = "tars_server_calls_total"
        assert sample(text, calls, servant=SERVANT, method="SayHello", code="0") == 3
        assert sample(text, calls, servant=SERVANT, method="Add", code="0") == 1
        assert sample(text, calls, servant=SERVANT, method="Add", code=str(code)) == 1
        hist = "tars_server_call_duration_seconds"
        assert sample(text, f"{hist}_count", servant=SERVANT, method="SayHello") == 3
        assert sample(text, f"{hist}_bucket", servant=SERVANT, method="Add", le="+Inf") == 2
        assert sample(text, f"{hist}_bucket", servant=SERVANT, method="Add", le="10.0") == 2
        assert (sample(text, f"{hist}_sum", servant=SERVANT, method="SayHello") or 0) > 0
        assert "process_cpu_seconds_total" in text and "python_info" in text
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        stop_process(proc)
    assert port not in listening_ports(tp.pod_ip)


@async_test
async def test_error_codes_unknown_methods_and_buckets(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    tp = make_tars_path(tmp_path, meta=HELLO_META)
    port = free_port(tp.pod_ip)
    monkeypatch.setenv("POD_IP", tp.pod_ip)
    monkeypatch.setenv("TARS_METRICS_PORT", str(port))
    app = Application(setup_logs=False)
    app.add_servant("SayHelloObj", FailingHello())
    await app.start(["--config=" + str(tp.conf)])
    try:
        assert app.metrics is not None and app.metrics.url() == f"http://{tp.pod_ip}:{port}/metrics"
        async with Communicator() as comm:
            hello = comm.proxy(WIDER, tp.proxy_string("SayHelloObj"))
            assert await hello.SayHello("Ada") == "hello Ada"
            for _ in range(2):
                with pytest.raises(TarsRemoteError, match="no greeting today"):
                    await hello.SayHello("fail")
            with pytest.raises(TarsRemoteError) as info:
                await hello.Missing()
            assert info.value.code == -3
            await hello.tars_ping()
        _, text = await http_get(tp.pod_ip, port, "/metrics")
    finally:
        await app.stop(5)
    calls = "tars_server_calls_total"
    assert sample(text, calls, servant=SERVANT, method="SayHello", code="0") == 1
    assert sample(text, calls, servant=SERVANT, method="SayHello", code="-42") == 2
    assert sample(text, calls, servant=SERVANT, method="(unknown)", code="-3") == 1
    assert sample(text, calls, servant=SERVANT, method="tars_ping", code="0") == 1
    hist = "tars_server_call_duration_seconds_bucket"
    counts = [sample(text, hist, servant=SERVANT, method="SayHello", le=le)
              for le in ("0.0001", "0.001", "0.01", "10.0", "+Inf")]
    assert counts[-1] == counts[-2] == 3  # every call, cumulative
    assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(counts))
    assert counts[0] is not None and counts[0] <= 2  # the sleeping call took 1 ms or more
    assert port not in listening_ports(tp.pod_ip)


@async_test
async def test_no_metrics_port_no_listener(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARS_METRICS_PORT", raising=False)
    tp = make_tars_path(tmp_path, meta=HELLO_META)
    app = Application(setup_logs=False)
    app.add_servant("SayHelloObj", FailingHello())
    await app.start(["--config=" + str(tp.conf)])
    try:
        assert app.metrics is None and app.server.stats is None
        assert listening_ports(tp.pod_ip) == {tp.adapter_endpoint("SayHelloObj").port}
    finally:
        await app.stop(5)


@pytest.mark.parametrize("value", ["metrics", "0", "70000"])
def test_bad_metrics_port_is_a_config_error(tmp_path: Path, value: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    tp = make_tars_path(tmp_path, meta=HELLO_META)
    monkeypatch.setenv("TARS_METRICS_PORT", value)
    app = Application(setup_logs=False)
    app.add_servant("SayHelloObj", FailingHello())
    assert app.run(["--config=" + str(tp.conf)]) == 1
    err = capsys.readouterr().err
    assert f"config error: TARS_METRICS_PORT={value!r}: expected a port number from 1 to " in err
