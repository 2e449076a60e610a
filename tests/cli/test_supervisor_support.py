"""Shared parts of the supervisor, prestop and notify tests (no tests here).

* :class:`TestRegistry`: our :class:`~k8stars.tars.server.Server` in a background thread,
  hosting a static ``tars.tarsregistry.QueryObj`` (QueryF) that resolves
  ``tars.tarsregistry.Registry`` (and ``tars.tarsnotify.NotifyObj`` when enabled) to itself, a
  recording ``tars.tarsregistry.Registry`` and a recording ``tars.tarsnotify.NotifyObj``. Its
  ports are fixed at construction, so it can start after the pods that use it, stop and start
  again.
* :class:`ThreadServer`: any servants on a background loop (an AdminObj for notify/prestop).
* :func:`make_pod`: a ``$TARS_PATH`` with ``_server_meta.yaml`` and a ``start.sh`` running
  the fake service (``test_supervisor_service.py``: our Python Calc server).
* :class:`Pod`: ``tarscli supervisor`` as a real process with its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8stars.tars.codec import Struct
from k8stars.tars.endpoint import parse_endpoint
from k8stars.tars.idl.loader import framework
from k8stars.tars.servant import Servant, current
from k8stars.tars.server import Server

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TARSCLI = str(Path(sys.executable).parent / "tarscli")
SERVICE = Path(__file__).resolve().parent / "test_supervisor_service.py"

QUERY_OBJ = "tars.tarsregistry.QueryObj"
REGISTRY_OBJ = "tars.tarsregistry.Registry"
NOTIFY_OBJ = "tars.tarsnotify.NotifyObj"

_IDL = framework()
_EndpointF: Any = _IDL.struct("tars.EndpointF")

#: Short timings for the supervisor under test.
FAST_ENV = {
    "TARS_CHECK_INTERVAL": "200ms",
    "TARS_CHECK_RETRY_TIMEOUT": "200ms",
    "TARS_REPORT_INTERVAL": "1s",
    "TARS_ACTIVATING_TIMEOUT": "20s",
    "TARS_PRESTOP_WAITTIME": "300ms",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def eventually(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def as_dict(value: Any) -> Any:
    """A decoded struct as plain data (nested structs and lists too)."""
    if isinstance(value, Struct):
        names: tuple[str, ...] = value.__slots__
        return {name: as_dict(getattr(value, name)) for name in names
                if not name.startswith("_")}
    if isinstance(value, list | tuple):
        return [as_dict(v) for v in value]
    return value


@dataclass
class Call:
    """One recorded call: method, request (plain data), time and what ``on_call`` returned."""

    method: str
    req: dict[str, Any]
    at: float
    context: dict[str, str]
    extra: Any = None


class ThreadServer:
    """A :class:`Server` running on its own event loop in a daemon thread."""

    def __init__(self, servants: Mapping[str, tuple[Servant, str]]) -> None:
        self.servants = dict(servants)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> ThreadServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.loop = loop
            server = Server(graceful_timeout=1.0)
            for name, (servant, endpoint) in self.servants.items():
                server.add_servant(name, servant, endpoint)
            self.server = server
            try:
                loop.run_until_complete(server.start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_until_complete(server.wait_closed())
            pending = asyncio.all_tasks(loop)
            for task in pending:  # calls abandoned by the stop deadline
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self.thread is None or self.loop is None or self.server is None:
            return
        server = self.server
        fut = asyncio.run_coroutine_threadsafe(server.stop(0.5), self.loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        self.thread.join(5)
        self.thread = None

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TestRegistry:
    """A recording registry on fixed ports (see the module docstring).

    ``on_call(method, req)`` runs inside each Registry call (its result is kept in
    :attr:`Call.extra`); ``notify`` also serves tars.tarsnotify.NotifyObj.
    """

    __test__ = False

    def __init__(self, host: str = "127.0.0.1", *, notify: bool = True,
                 on_call: Callable[[str, Any], Any] | None = None) -> None:
        self.host = host
        self.query_port = free_port(host)
        self.registry_port = free_port(host)
        self.notify = notify
        self.on_call = on_call
        self.calls: list[Call] = []
        self.reports: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._server: ThreadServer | None = None

    @property
    def locator(self) -> str:
        return f"{QUERY_OBJ}@tcp -h {self.host} -p {self.query_port} -t 3000"

    @property
    def registry_endpoint(self) -> str:
        return f"tcp -h {self.host} -p {self.registry_port} -t 60000"

    def start(self) -> TestRegistry:
        registry = self
        ep = parse_endpoint(self.registry_endpoint)
        found = {REGISTRY_OBJ: [_EndpointF(**ep.endpointf_fields())]}
        if self.notify:
            found[NOTIFY_OBJ] = found[REGISTRY_OBJ]

        class Query(Servant, interface=_IDL.interface("tars.QueryF")):
            def findObjectById(self, id: str) -> list[Any]:
                return found.get(id, [])

            def findObjectByIdInSameGroup(self, id: str) -> tuple[int, list[Any], list[Any]]:
                return 0, found.get(id, []), []

            def findObjectById4Any(self, id: str) -> tuple[int, list[Any], list[Any]]:
                return 0, found.get(id, []), []

            findObjectById4All = findObjectById4Any

            def findObjectByIdInSameStation(self, id: str, station: str
                                            ) -> tuple[int, list[Any], list[Any]]:
                return 0, found.get(id, []), []

            def findObjectByIdInSameSet(self, id: str, set_id: str
                                        ) -> tuple[int, list[Any], list[Any]]:
                return 0, found.get(id, []), []

            def findObjectNodeName(self, id: str) -> tuple[int, list[str]]:
                return -1, []

            def registerChange(self, timestamp: dict[str, str], name: str) -> int:
                return -1

            def registerQuery(self, id: str, name: str) -> int:
                return -1

            def getLocker(self, req: Any) -> int:
                return -1

        class Registry(Servant, interface=_IDL.interface("tars.tarsregistry")):
            def _record(self, method: str, req: Any) -> None:
                extra = registry.on_call(method, req) if registry.on_call else None
                ctx = dict(current().request.context)
                with registry.lock:
                    registry.calls.append(Call(method, as_dict(req), time.time(), ctx, extra))

            def onStartup(self, req: Any) -> None:
                self._record("onStartup", req)

            def onPrestop(self, req: Any) -> None:
                self._record("onPrestop", req)

            def keepAlive(self, req: Any) -> None:
                self._record("keepAlive", req)

            def registerMetrics(self, req: Any) -> None:
                self._record("registerMetrics", req)

            def getMetricsAdapters(self, req: Any) -> list[Any]:
                return []

        class Notify(Servant, interface=_IDL.interface("tars.Notify")):
            def reportNotifyInfo(self, info: Any) -> None:
                with registry.lock:
                    registry.reports.append(dict(as_dict(info), at=time.time()))

        servants: dict[str, tuple[Servant, str]] = {
            QUERY_OBJ: (Query(), f"tcp -h {self.host} -p {self.query_port} -t 60000"),
            REGISTRY_OBJ: (Registry(), self.registry_endpoint),
        }
        if self.notify:
            port = free_port(self.host)
            servants[NOTIFY_OBJ] = (Notify(), f"tcp -h {self.host} -p {port} -t 60000")
            found[NOTIFY_OBJ] = [_EndpointF(**parse_endpoint(servants[NOTIFY_OBJ][1])
                                            .endpointf_fields())]
        self._server = ThreadServer(servants).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> TestRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def of(self, method: str, **match: Any) -> list[Call]:
        """The recorded calls of ``method`` whose request has the ``match`` values."""
        with self.lock:
            return [c for c in self.calls if c.method == method
                    and all(c.req.get(k) == v for k, v in match.items())]

    def messages(self) -> list[str]:
        with self.lock:
            return [str(r["sMessage"]) for r in self.reports]


META = """\
application: App
server: PyServer
adapters:
  - object: CalcObj
  - object: OtherObj
    threads: 2
"""

START_SH = """#!/bin/sh
{extra}
exec {python} {service} --config "$TARS_PATH/conf/PyServer.conf"
"""


def make_pod(root: Path, *, meta: str = META, extra: str = "", start: str | None = None) -> Path:
    """A ``$TARS_PATH`` under ``root`` with ``bin/_server_meta.yaml`` and ``bin/start.sh``."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "_server_meta.yaml").write_text(meta)
    script = start if start is not None else START_SH.format(
        python=PYTHON, service=SERVICE, extra=extra)
    (bin_dir / "start.sh").write_text(script)
    (bin_dir / "start.sh").chmod(0o755)
    return root


_POD_IPS = iter(range(20, 250))

#: Runs the supervisor with lowered module constants: argv = [window, shutdown wait, term wait].
WRAPPER = """\
import sys
from k8stars.cli import supervisor_run as run
run.RESTART_WINDOW, run.SHUTDOWN_WAIT, run.TERM_WAIT = (float(a) for a in sys.argv[1:4])
from k8stars.cli.main import main
sys.exit(main(["supervisor"]))
"""


@dataclass
class Pod:
    """A simulated pod: ``tarscli supervisor`` in ``tars_path`` with its own POD_IP."""

    tars_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    stdout: Path = field(init=False)
    stderr: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stdout = self.tars_path / "supervisor.stdout"
        self.stderr = self.tars_path / "supervisor.stderr"

    @classmethod
    def create(cls, root: Path, locator: str, *, env: Mapping[str, str] | None = None,
               **pod: Any) -> Pod:
        tars_path = make_pod(root, **pod)
        ip = f"127.0.0.{next(_POD_IPS)}"
        low = 20000 + (os.getpid() * 7 + int(ip.rsplit(".", 1)[1]) * 97) % 30000
        full = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "TARS_PATH": str(tars_path),
            "POD_IP": ip,
            "POD_NAME": f"pyserver-{ip.rsplit('.', 1)[1]}",
            "POD_UID": f"0c1d2e3f-0000-4000-8000-{int(ip.rsplit('.', 1)[1]):012d}",
            "SERVER_VERSION": "v1.2.3",
            "TARS_LOCATOR": locator,
            "TARS_RAND_PORT_MIN": str(low),
            "TARS_RAND_PORT_MAX": str(low + 500),
            **FAST_ENV,
            **(env or {}),
        }
        return cls(tars_path, full)

    @property
    def ip(self) -> str:
        return self.env["POD_IP"]

    def start(self, *, wrapper: tuple[float, float, float] | None = None,
              prefix: tuple[str, ...] = ()) -> Pod:
        if wrapper is None:
            argv = [TARSCLI, "supervisor"]
        else:
            argv = [PYTHON, "-c", WRAPPER, *(repr(v) for v in wrapper)]
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen([*prefix, *argv], env=self.env, stdout=out,
                                            stderr=err, stdin=subprocess.DEVNULL)
        return self

    def path(self, *parts: str) -> Path:
        return self.tars_path.joinpath(*parts)

    def state(self) -> str:
        try:
            return self.path("data", "check_status").read_text().strip()
        except FileNotFoundError:
            return ""

    def hzcheck(self) -> int:
        return subprocess.run([TARSCLI, "hzcheck"], env=self.env, capture_output=True,
                              check=False).returncode

    def run(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TARSCLI, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def wait_state(self, state: str, timeout: float = 15.0) -> None:
        eventually(lambda: self.state() == state, timeout,
                   what=f"state {state} (now {self.state()!r})\n{self.log()}")

    def log(self) -> str:
        text = ""
        for path in (self.stdout, self.stderr):
            with contextlib.suppress(FileNotFoundError):
                text += path.read_text(errors="replace")
        return text

    def service_pid(self) -> int:
        """The pid of the running fake service (it writes it at start)."""
        return int(self.path("data", "service.pid").read_text())

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def events(self) -> list[tuple[str, float]]:
        """What the fake service recorded: (event, time)."""
        try:
            lines = self.path("data", "events").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [(e, float(t)) for e, t in (line.split(" ", 1) for line in lines)]

    def stop(self) -> None:
        """Make sure nothing of the pod outlives the test."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(self.service_pid(), signal.SIGKILL)


@contextlib.contextmanager
def running(pod: Pod, **start: Any) -> Iterator[Pod]:
    pod.start(**start)
    try:
        yield pod
    finally:
        pod.stop()
