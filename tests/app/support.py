"""Helpers for the framework tests: genconf'd TARS_PATHs, a static registry, example processes.

``make_tars_path`` runs the real ``tarscli genconf`` (a subprocess, as the supervisor does)
on an example's (or a given) ``_server_meta.yaml`` with its own POD_IP in 127.0.0.0/8 and a
random port range, so tests never share ports.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from k8stars.tars.client import Communicator, ServantProxy
from k8stars.tars.endpoint import Endpoint, parse_endpoint
from k8stars.tars.idl.loader import framework, load
from k8stars.tars.servant import Servant, current
from k8stars.tars.server import Server

from ..interop.static_query import StaticQuery as StaticQuery  # re-exported for the app tests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HELLO_IDL = load(EXAMPLES / "hello" / "SayHello.tars")
SAY_HELLO = HELLO_IDL.interface("TestApp.SayHello")
QUERY = framework().interface("tars.QueryF")
ADMIN = framework().interface("tars.AdminF")
CONFIG = framework().interface("tars.Config")
EndpointF: Any = framework().struct("tars.EndpointF")
QUERY_OBJ = "tars.tarsregistry.QueryObj"
CONFIG_OBJ = "tars.tarsconfig.ConfigObj"
#: A locator nobody listens on (port 1 on loopback refuses at once).
DEAD_LOCATOR = f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p 1 -t 1000"


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop, bounded to 30 s."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 30))

    return wrapper


_ip_counter = random.randrange(20, 200)


def pod_ip() -> str:
    """A fresh 127.0.0.x address for one simulated pod."""
    global _ip_counter
    _ip_counter = _ip_counter % 240 + 1
    return f"127.0.0.{_ip_counter + 10}"


@dataclass
class TarsPath:
    """A TARS_PATH after genconf: where things are and what it resolved."""

    root: Path
    server: str
    pod_ip: str
    env: dict[str, str]

    @property
    def conf(self) -> Path:
        return self.root / "conf" / f"{self.server}.conf"

    @property
    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load((self.root / "data" / "server_info.yaml").read_text())
        return data

    def adapter_endpoint(self, obj: str) -> Endpoint:
        for adapter in self.info["adapters"]:
            if adapter["servant"].endswith("." + obj):
                return parse_endpoint(adapter["endpoint"])
        raise KeyError(obj)

    def proxy_string(self, obj: str) -> str:
        servant = next(a["servant"] for a in self.info["adapters"]
                       if a["servant"].endswith("." + obj))
        return f"{servant}@{self.adapter_endpoint(obj).render()}"

    @property
    def local(self) -> Endpoint:
        return parse_endpoint(self.info["local"])

    @property
    def log_dir(self) -> Path:
        return self.root / "log"


def make_tars_path(tmp: Path, *, example: str | None = None, meta: str | None = None,
                   locator: str = DEAD_LOCATOR, **env: str) -> TarsPath:
    """Copy ``examples/<example>`` (or write ``meta``) into ``tmp/bin`` and run genconf."""
    root = tmp / "tars"
    bin_dir = root / "bin"
    if example is not None:
        shutil.copytree(EXAMPLES / example, bin_dir,
                        ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    else:
        bin_dir.mkdir(parents=True)
        assert meta is not None
        (bin_dir / "_server_meta.yaml").write_text(meta)
    ip = pod_ip()
    low = random.randrange(20000, 40000, 100)
    full_env = {
        **os.environ,
        "TARS_PATH": str(root),
        "POD_IP": ip,
        "TARS_LOCATOR": locator,
        "TARS_RAND_PORT_MIN": str(low),
        "TARS_RAND_PORT_MAX": str(low + 99),
        **env,
    }
    subprocess.run([sys.executable, "-m", "k8stars.cli.main", "genconf"], env=full_env,
                   check=True, capture_output=True, timeout=30)
    server = yaml.safe_load((root / "data" / "server_info.yaml").read_text())["build_server"]
    return TarsPath(root, server, ip, full_env)


class StaticConfig(Servant, interface=CONFIG):
    """A ConfigF servant serving ``files``; records each ConfigInfo it is asked for."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.asked: list[Any] = []

    def _none(self, *args: Any) -> Any:
        raise NotImplementedError

    ListConfig = loadConfig = loadConfigByHost = checkConfig = _none
    ListConfigByInfo = checkConfigByInfo = ListAllConfigByInfo = _none

    def loadConfigByInfo(self, configInfo: Any) -> tuple[int, str]:
        self.asked.append(configInfo)
        if configInfo.filename not in self.files:
            return -1, ""
        return 0, self.files[configInfo.filename]


async def registry(**servants: Servant) -> tuple[Server, str]:
    """A server on 127.0.0.1:0 for ``servants`` (name → servant); and the QueryObj locator."""
    server = Server(app="tars", server="test")
    for name, servant in servants.items():
        server.add_servant(name, servant, "tcp -h 127.0.0.1 -p 0 -t 60000")
    await server.start()
    locator = server.proxy(QUERY_OBJ) if QUERY_OBJ in servants else DEAD_LOCATOR
    return server, locator


def admin_proxy(comm: Communicator, tars_path: TarsPath) -> ServantProxy:
    return comm.proxy(ADMIN, f"AdminObj@{tars_path.local.render()}")


async def wait_port(endpoint: Endpoint, timeout: float = 15.0,
                    proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``endpoint`` accepts TCP connections (what the supervisor checks)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def port_closed(endpoint: Endpoint) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((endpoint.host, endpoint.port)) != 0


def start_example(tars_path: TarsPath, **env: str) -> subprocess.Popen[bytes]:
    """Run ``bin/start.sh`` as ``tarscli supervisor`` would (stdout/stderr to files)."""
    out = open(tars_path.root / "stdout.txt", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(tars_path.root / "bin" / "start.sh")],
        env={**tars_path.env, "PYTHON": sys.executable, "NODE_NO_WARNINGS": "1", **env},
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Kill a server the test did not stop (and what it started: its own session)."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def output(tars_path: TarsPath) -> str:
    path = tars_path.root / "stdout.txt"
    return path.read_text(errors="replace") if path.exists() else ""


class SayHelloImp(Servant, interface=SAY_HELLO):
    """TestApp.SayHello for in-process tests; ``SayHello("slow:<s>")`` sleeps s seconds."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def SayHello(self, name: str) -> str:
        import logging

        self.names.append(name)
        logging.getLogger("tests.app.hello").debug("SayHello(%s) from %s", name,
                                                     current().host)
        if name.startswith("slow:"):
            await asyncio.sleep(float(name[5:]))
        return f"hello {name}"

    def Add(self, a: int, b: int) -> tuple[int, int]:
        return 0, a + b
