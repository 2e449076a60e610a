"""Application started from a config file written by the real ``tarscli genconf``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from k8stars.app import Application, HttpApp, RemoteConfigError
from k8stars.app.application import config_path_from_argv
from k8stars.tars.client import Communicator
from k8stars.tars.config import ConfigError

from .support import (
    CONFIG_OBJ,
    QUERY_OBJ,
    SAY_HELLO,
    SayHelloImp,
    StaticConfig,
    StaticQuery,
    TarsPath,
    admin_proxy,
    async_test,
    make_tars_path,
    port_closed,
    registry,
)

HELLO_META = """\
application: TestApp
server: HelloPy
logLevel: DEBUG
adapters:
  - object: SayHelloObj
"""

TWO_ADAPTERS = """\
application: App
server: Two
adapters:
  - object: MainObj
  - object: HttpObj
    protocol: not_tars
"""


@pytest.fixture
def hello_path(tmp_path: Path) -> TarsPath:
    return make_tars_path(tmp_path, meta=HELLO_META)


def test_config_path_from_argv() -> None:
    assert config_path_from_argv(["--config=/a.conf"]) == "/a.conf"
    assert config_path_from_argv(["x", "--config", "/b.conf"]) == "/b.conf"
    assert config_path_from_argv(["--other"]) is None


@async_test
async def test_serves_servants_admin_and_logs(hello_path: TarsPath) -> None:
    app = Application()
    impl = SayHelloImp()
    app.add_servant("SayHelloObj", impl)          # object name → TestApp.HelloPy.SayHelloObj
    await app.start(["--config=" + str(hello_path.conf)])
    try:
        assert app.name == "TestApp.HelloPy"
        assert app.endpoint("SayHelloObj") == hello_path.adapter_endpoint("SayHelloObj")
        async with Communicator() as comm:
            hello = comm.proxy(SAY_HELLO, hello_path.proxy_string("SayHelloObj"))
            assert await hello.SayHello("Ada") == "hello Ada"
            assert await hello.Add(40, 2) == (0, 42)
            await hello.tars_ping()
            admin = admin_proxy(comm, hello_path)
            status = await admin.notify("tars.viewstatus")
            assert "app: TestApp" in status and "SayHelloObjAdapter" in status
            # setloglevel: DEBUG lines stop at INFO
            assert await admin.notify("tars.setloglevel INFO") == "tars.setloglevel INFO succ"
            await hello.SayHello("quiet")
            assert await admin.notify("tars.setloglevel DEBUG") == "tars.setloglevel DEBUG succ"
            await hello.SayHello("loud")
    finally:
        await app.stop(5)
    log_file = hello_path.log_dir / "TestApp.HelloPy.log"
    assert app.log_file == log_file
    text = log_file.read_text()
    assert "SayHello(Ada) from 127.0.0.1" in text
    assert "SayHello(loud)" in text and "SayHello(quiet)" not in text
    assert "TestApp.HelloPy started" in text and "TestApp.HelloPy stopped" in text
    # the application's handlers are gone and the root level is back
    assert not any(getattr(h, "baseFilename", "") == str(log_file)
                   for h in logging.getLogger().handlers)
    assert port_closed(hello_path.adapter_endpoint("SayHelloObj"))
    assert port_closed(hello_path.local)


@async_test
async def test_communicator_from_client_section(tmp_path: Path) -> None:
    tp = make_tars_path(tmp_path, meta=HELLO_META, TARS_EP_UPTIME="7s",
                        locator=f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p 17999")
    app = Application(setup_logs=False)
    app.add_servant("TestApp.HelloPy.SayHelloObj", SayHelloImp())   # full servant name
    await app.start(config=tp.conf)
    try:
        cfg = app.communicator.config
        assert cfg.locator == f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p 17999"
        assert cfg.refresh_endpoint_interval == 7000
        assert cfg.sync_invoke_timeout == 3000
        assert cfg.node_name == tp.pod_ip
        assert app.servant_name("Other") == "TestApp.HelloPy.Other"
    finally:
        await app.stop(1)


@async_test
async def test_prestop_hooks_and_commands(hello_path: TarsPath) -> None:
    ran: list[str] = []
    app = Application(setup_logs=False)
    app.add_servant("SayHelloObj", SayHelloImp())

    @app.on_prestop
    def first() -> None:
        ran.append("sync")

    @app.on_prestop
    async def second() -> None:
        await asyncio.sleep(0)
        ran.append("async")

    app.register_command("app.echo", lambda cmd: cmd.partition(" ")[2].upper(), "echo")
    await app.start(config=hello_path.conf)
    app.add_prestop_hook(lambda: ran.append("late"))     # after start: still run
    try:
        async with Communicator() as comm:
            admin = admin_proxy(comm, hello_path)
            assert await admin.notify("app.echo hi") == "HI"
            assert await admin.notify("prestop") == "prestop: ran 3 hook(s)"
            assert ran == ["sync", "async", "late"]
            assert "app.echo: echo" in await admin.notify("tars.help")
    finally:
        await app.stop(1)


@async_test
async def test_admin_shutdown_stops_gracefully(hello_path: TarsPath) -> None:
    events: list[str] = []

    class App(Application):
        def initialize(self) -> None:
            events.append("initialize")
            self.add_servant("SayHelloObj", SayHelloImp())

        async def destroy(self) -> None:
            events.append("destroy")

    app = App(setup_logs=False)
    await app.start(config=hello_path.conf)
    async with Communicator() as comm:
        hello = comm.proxy(SAY_HELLO, hello_path.proxy_string("SayHelloObj"))
        slow = asyncio.ensure_future(hello.SayHello("slow:0.3"))
        await asyncio.sleep(0.1)
        await admin_proxy(comm, hello_path).shutdown()
        assert await slow == "hello slow:0.3"       # the call in flight finished
        await asyncio.wait_for(app.wait_closed(), 5)
    assert events == ["initialize", "destroy"]
    assert port_closed(hello_path.adapter_endpoint("SayHelloObj"))


@async_test
async def test_bad_servant_names_and_protocols(tmp_path: Path) -> None:
    tp = make_tars_path(tmp_path, meta=TWO_ADAPTERS)
    app = Application(setup_logs=False)
    app.add_servant("NoSuchObj", SayHelloImp())
    with pytest.raises(ConfigError, match=r"no adapter serves 'NoSuchObj'.*App.Two.MainObj"):
        await app.start(config=tp.conf)

    app = Application(setup_logs=False)
    app.add_servant("HttpObj", SayHelloImp())
    with pytest.raises(ConfigError, match=r"protocol=not_tars.*needs protocol=tars"):
        await app.start(config=tp.conf)

    app = Application(setup_logs=False)
    app.add_servant("MainObj", HttpApp())
    with pytest.raises(ConfigError, match=r"protocol=tars.*needs protocol=not_tars"):
        await app.start(config=tp.conf)
    assert port_closed(tp.local)

    with pytest.raises(TypeError):
        Application().add_servant("MainObj", object())  # type: ignore[arg-type]


@async_test
async def test_failed_start_releases_everything(tmp_path: Path) -> None:
    tp = make_tars_path(tmp_path, meta=TWO_ADAPTERS)
    blocker = await asyncio.start_server(lambda r, w: None,
                                         tp.adapter_endpoint("HttpObj").host,
                                         tp.adapter_endpoint("HttpObj").port)
    try:
        app = Application(setup_logs=False)
        app.add_servant("MainObj", SayHelloImp())
        app.http("HttpObj")
        with pytest.raises(OSError):
            await app.start(config=tp.conf)
        await asyncio.wait_for(app.wait_closed(), 2)
        assert port_closed(tp.adapter_endpoint("MainObj"))
        assert port_closed(tp.local)
    finally:
        blocker.close()
        await blocker.wait_closed()


def test_run_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert Application().run([]) == 1
    assert "config error: no config file: start the server with --config=FILE" in (
        capsys.readouterr().err)
    assert Application().run([f"--config={tmp_path / 'missing.conf'}"]) == 1
    assert "missing.conf" in capsys.readouterr().err


# -- remote config ----------------------------------------------------------------------------


def _records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


@async_test
async def test_remote_config_skipped_when_no_config_service(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    query = StaticQuery()
    reg, locator = await registry(**{QUERY_OBJ: query})
    tp = make_tars_path(tmp_path, meta=HELLO_META, locator=locator)
    app = Application(config_files=["a.conf", "b.conf"], setup_logs=False)
    app.add_servant("SayHelloObj", SayHelloImp())
    caplog.set_level(logging.INFO)
    try:
        await app.start(config=tp.conf)
        skipped = _records(caplog, "remote config a.conf, b.conf skipped")
        assert len(skipped) == 1 and "no active endpoint" in skipped[0].getMessage()
        assert query.queries == [CONFIG_OBJ]
        caplog.clear()
        assert await app.load_config("c.conf") is None
        assert len(_records(caplog, "remote config")) == 1
        async with Communicator() as comm:
            answer = await admin_proxy(comm, tp).notify("tars.loadconfig c.conf")
        assert answer.startswith("Getconfig Error!: c.conf: RemoteConfigUnavailable")
        assert not (tp.root / "bin" / "c.conf").exists()
    finally:
        await app.stop(1)
        await reg.stop(1)


@async_test
async def test_remote_config_skipped_when_registry_unreachable(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tp = make_tars_path(tmp_path, meta=HELLO_META)           # DEAD_LOCATOR
    app = Application(config_files=["a.conf"], setup_logs=False)
    app.add_servant("SayHelloObj", SayHelloImp())
    caplog.set_level(logging.INFO)
    await app.start(config=tp.conf)
    try:
        skipped = _records(caplog, "remote config a.conf skipped")
        assert len(skipped) == 1 and "registry query failed" in skipped[0].getMessage()
    finally:
        await app.stop(1)


@async_test
async def test_remote_config_loaded_from_config_service(tmp_path: Path) -> None:
    configs = StaticConfig({"app.conf": "<app>\n  greeting=hi\n</app>\n", "other.conf": "x=1"})
    query = StaticQuery()
    reg, locator = await registry(**{QUERY_OBJ: query, CONFIG_OBJ: configs})
    query.table[CONFIG_OBJ] = [reg.endpoint(CONFIG_OBJ)]
    tp = make_tars_path(tmp_path, meta=HELLO_META, locator=locator)
    loaded: list[tuple[str, str]] = []

    class App(Application):
        config_files = ("app.conf",)

        def initialize(self) -> None:
            # remote files are there before initialize()
            loaded.append(("init", (Path(self.config.basepath) / "app.conf").read_text()))
            self.add_servant("SayHelloObj", SayHelloImp())

    app = App(setup_logs=False)

    @app.on_config_loaded
    def on_loaded(filename: str, path: Path) -> None:
        loaded.append((filename, path.read_text()))

    await app.start(config=tp.conf)
    try:
        bin_dir = tp.root / "bin"
        assert (bin_dir / "app.conf").read_text() == configs.files["app.conf"]
        assert loaded[:2] == [("app.conf", configs.files["app.conf"]),
                              ("init", configs.files["app.conf"])]
        info: Any = configs.asked[0]
        assert (info.appname, info.servername, info.filename, info.host, info.setdivision) == (
            "TestApp", "HelloPy", "app.conf", tp.pod_ip, "")
        async with Communicator() as comm:
            admin = admin_proxy(comm, tp)
            assert await admin.notify("tars.loadconfig other.conf") == (
                "Getconfig Success!: other.conf")
            assert (bin_dir / "other.conf").read_text() == "x=1"
            assert loaded[-1] == ("other.conf", "x=1")
            assert (await admin.notify("tars.loadconfig nope.conf")).startswith(
                "Getconfig Error!: nope.conf: RemoteConfigError")
        assert await app.load_config("other.conf") == bin_dir / "other.conf"
        with pytest.raises(RemoteConfigError, match="answered -1"):
            await app.load_config("nope.conf")
        with pytest.raises(RemoteConfigError, match="bad config file name"):
            await app.load_config("../escape.conf")
    finally:
        await app.stop(1)
        await reg.stop(1)


@async_test
async def test_simple_through_locator_in_process(tmp_path: Path) -> None:
    """A servant reached through the communicator's locator (StaticQuery as registry)."""
    query = StaticQuery()
    reg, locator = await registry(**{QUERY_OBJ: query})
    tp = make_tars_path(tmp_path, meta=HELLO_META, locator=locator)
    query.table["TestApp.HelloPy.SayHelloObj"] = [tp.adapter_endpoint("SayHelloObj")]
    app = Application(setup_logs=False)
    app.add_servant("SayHelloObj", SayHelloImp())
    await app.start(config=tp.conf)
    try:
        hello = app.communicator.proxy(SAY_HELLO, app.servant_name("SayHelloObj"))
        assert await hello.SayHello("via registry") == "hello via registry"
        assert "TestApp.HelloPy.SayHelloObj" in query.queries
    finally:
        await app.stop(1)
        await reg.stop(1)


@async_test
async def test_http_adapter_in_application(tmp_path: Path) -> None:
    tp = make_tars_path(tmp_path, meta=TWO_ADAPTERS)
    app = Application(setup_logs=False)
    app.add_servant("MainObj", SayHelloImp())
    http = app.http("HttpObj")
    gate = asyncio.Event()

    @http.get("/")
    async def index() -> str:
        return "hi from " + app.name

    @http.get("/boom")
    def boom() -> str:
        raise ValueError("bug")

    @http.get("/slow")
    async def slow() -> str:
        await gate.wait()
        return "done"

    await app.start(config=tp.conf)
    ep = app.endpoint("HttpObj")
    assert ep == tp.adapter_endpoint("HttpObj")
    reader, writer = await asyncio.open_connection(ep.host, ep.port)
    answers = []
    for path in ("/", "/boom", "/nope", "/"):
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        answers.append((head.split(b" ")[1], await reader.readexactly(length)))
    assert answers == [(b"200", b"hi from App.Two"), (b"500", b"internal server error\n"),
                       (b"404", b"no route for /nope\n"), (b"200", b"hi from App.Two")]
    writer.write(b"GET /slow HTTP/1.1\r\n\r\n")
    await asyncio.sleep(0.05)
    app.request_stop(5)                         # graceful: the slow request still completes
    await asyncio.sleep(0.05)
    gate.set()
    rest = await asyncio.wait_for(reader.read(), 5)
    assert rest.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in rest
    assert rest.endswith(b"done")
    await asyncio.wait_for(app.wait_closed(), 5)
    writer.close()
    await writer.wait_closed()
    assert port_closed(ep) and port_closed(tp.adapter_endpoint("MainObj"))
