"""Server config from a genconf-style file, log files, and a program started with --config."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8stars.tars.admin import ADMIN_SERVANT, AdminServant
from k8stars.tars.config import ConfigError, parse_config
from k8stars.tars.endpoint import parse_endpoint
from k8stars.tars.logs import log_file_path, parse_level, set_log_level, setup_logging
from k8stars.tars.server import Server, serve_async
from k8stars.tars.server_config import Adapter, ServerConfig, parse_size

from .test_server_support import OBJ, CalcImp, Wire, async_test, call, request

ROOT = Path(__file__).resolve().parents[2]

# What `tarscli genconf` writes (K8STARS app/genconf template), with two adapters.
GENCONF = """\
<tars>
  <application>
    enableset=N
    setdivision=NULL
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h tars-registry.tars-system.svc.cluster.local -p 17890
      sync-invoke-timeout=3000
      async-invoke-timeout=5000
      refresh-endpoint-interval=60000
      stat=tars.tarsstat.StatObj
      property=tars.tarsproperty.PropertyObj
      report-interval=6000
      sample-rate=100000
      max-sample-count=50
      asyncthread=3
      modulename=Test.Calc
      <Test.Other.OtherObj>
        ca=/certs/ca.pem
      </Test.Other.OtherObj>
    </client>
    <server>
      app=Test
      server=Calc
      localip=10.0.0.7
      local=tcp -h 127.0.0.1 -p {local_port} -t 5000
      <Test.Calc.CalcObjAdapter>
        allow
        servant=Test.Calc.CalcObj
        endpoint=tcp -h 127.0.0.1 -p {calc_port} -t 30000
        maxconns=200000
        protocol=tars
        queuecap=10000
        queuetimeout=60000
        threads=5
      </Test.Calc.CalcObjAdapter>
      <Test.Calc.SpareObjAdapter>
        allow=10.0.0.*,127.0.0.1
        servant=Test.Calc.SpareObj
        endpoint=tcp -h 127.0.0.1 -p 0 -t 30000
        maxconns=10
        protocol=tars
        queuecap=20
        queuetimeout=500
        threads=1
      </Test.Calc.SpareObjAdapter>
      basepath={base}/bin/
      datapath={base}/data/
      logpath={base}/log
      logLevel=INFO
      logsize=10M
      lognum=3
      config=tars.tarsconfig.ConfigObj
      notify=tars.tarsnotify.NotifyObj
      log=tars.tarslog.LogObj
      deactivating-timeout=3000
    </server>
  </application>
</tars>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def genconf(base: Path, local_port: int = 10239, calc_port: int = 10015) -> str:
    return GENCONF.format(base=base, local_port=local_port, calc_port=calc_port)


def test_genconf_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Calc.conf"
    path.write_text(genconf(tmp_path))
    cfg = ServerConfig.load(path)
    assert (cfg.app, cfg.server, cfg.name, cfg.localip) == ("Test", "Calc", "Test.Calc", "10.0.0.7")
    assert cfg.local == parse_endpoint("tcp -h 127.0.0.1 -p 10239 -t 5000")
    assert (cfg.log_level, cfg.log_size, cfg.log_num) == ("INFO", 10 * 1024 * 1024, 3)
    assert cfg.logpath == f"{tmp_path}/log" and cfg.basepath == f"{tmp_path}/bin/"
    assert (cfg.config, cfg.notify, cfg.log) == ("tars.tarsconfig.ConfigObj",
                                                 "tars.tarsnotify.NotifyObj", "tars.tarslog.LogObj")
    assert (cfg.deactivating_timeout, cfg.gracedown_timeout) == (3000, 60000)
    assert (cfg.enableset, cfg.setdivision, cfg.node_name) == (False, "NULL", "10.0.0.7")
    calc, spare = cfg.adapters
    assert calc == Adapter(name="Test.Calc.CalcObjAdapter",
                           endpoint=parse_endpoint("tcp -h 127.0.0.1 -p 10015 -t 30000"),
                           servant=OBJ, protocol="tars", queuecap=10000, queuetimeout=60000,
                           maxconns=200000, threads=5, allow=())
    assert spare.allow == ("10.0.0.*", "127.0.0.1")
    assert spare.allows("10.0.0.9") and spare.allows("127.0.0.1")
    assert not spare.allows("10.0.1.9") and calc.allows("1.2.3.4")
    assert cfg.adapter_for("Test.Calc.SpareObj") is spare
    assert cfg.client["locator"].startswith("tars.tarsregistry.QueryObj@tcp -h tars-registry")
    assert cfg.client["modulename"] == "Test.Calc"
    assert cfg.client_objects == {"Test.Other.OtherObj": {"ca": "/certs/ca.pem"}}


def test_minimal_config_defaults() -> None:
    cfg = ServerConfig.from_tars_config(parse_config(
        "<tars>\n<application>\n<server>\napp=A\nserver=B\n</server>\n</application>\n</tars>"))
    assert (cfg.app, cfg.server, cfg.local, cfg.adapters, cfg.client) == ("A", "B", None, (), {})
    assert (cfg.log_size, cfg.log_num, cfg.max_packet_length) == (100 * 2**20, 10, 10 * 2**20)


def test_set_division() -> None:
    text = "<tars>\n<application>\nenableset=Y\nsetdivision={}\n<server>\napp=A\nserver=B\n" \
           "</server>\n</application>\n</tars>"
    cfg = ServerConfig.from_tars_config(parse_config(text.format("sz.sh.1")))
    assert (cfg.enableset, cfg.setdivision) == (True, "sz.sh.1")
    with pytest.raises(ConfigError, match=r"/tars/application<setdivision>.*'NULL'"):
        ServerConfig.from_tars_config(parse_config(text.format("NULL")))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("app=Test", "", r"/tars/application/server<app>: missing required value"),
    ("server=Calc", "server=", r"/tars/application/server<server>: missing"),
    ("endpoint=tcp -h 127.0.0.1 -p 0 -t 30000", "endpoint=tcp -h 127.0.0.1 -p x",
     r"SpareObjAdapter<endpoint>: bad endpoint.*-p x"),
    ("queuecap=20", "queuecap=lots", r"SpareObjAdapter<queuecap>: expected an integer.*'lots'"),
    ("maxconns=10", "maxconns=0", r"SpareObjAdapter<maxconns>: expected an integer >= 1"),
    ("logsize=10M", "logsize=10X", r"/tars/application/server<logsize>: bad size '10X'"),
    ("lognum=3", "lognum=-1", r"<lognum>: expected an integer >= 0, got '-1'"),
    ("logLevel=INFO", "logLevel=LOUD", r"<logLevel>: unknown log level 'LOUD'"),
    ("local=tcp -h 127.0.0.1 -p 10239 -t 5000", "local=http://x", r"<local>: bad endpoint"),
    ("servant=Test.Calc.SpareObj", "servant=Test.Calc.CalcObj", r"CalcObj is served twice"),
    ("protocol=tars\n        queuecap=20", "protocol=grpc", r"<protocol>: expected 'tars'"),
    ("servant=Test.Calc.SpareObj", "", r"SpareObjAdapter<servant>: missing required value"),
])
def test_config_errors_name_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = genconf(tmp_path)
    assert old in text
    path = tmp_path / "bad.conf"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message) as info:
        ServerConfig.load(path)
    assert str(info.value).startswith(str(path))


def test_missing_server_domain() -> None:
    with pytest.raises(ConfigError, match="missing domain /tars/application/server"):
        ServerConfig.from_tars_config(parse_config("<tars>\n</tars>"))


def test_parse_size_and_level() -> None:
    assert [parse_size(s) for s in ("100", "10K", "10M", "100MB", "1g", "2 GB")] == [
        100, 10240, 10 * 2**20, 100 * 2**20, 2**30, 2 * 2**30]
    for bad in ("", "M", "1.5M", "-1M", "10T"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert parse_level("warn") == logging.WARNING and parse_level(" Debug ") == logging.DEBUG
    with pytest.raises(ValueError, match="unknown log level 'TRACE'"):
        parse_level("TRACE")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_log_files_are_created_and_rotated(tmp_path: Path) -> None:
    logpath = tmp_path / "log" / "nested"
    handler = setup_logging(logpath, "App", "Srv", level="info", max_bytes=2000, backups=2,
                            logger="k8stars.test.files")
    logger = logging.getLogger("k8stars.test.files")
    try:
        logger.debug("hidden")
        for i in range(100):
            logger.info("line %03d %s", i, "x" * 50)
        path = log_file_path(logpath, "App", "Srv")
        assert path == logpath / "App.Srv.log"
        files = sorted(p.name for p in logpath.iterdir())
        assert files == ["App.Srv.log", "App.Srv.log.1", "App.Srv.log.2"]
        assert all(p.stat().st_size <= 2000 for p in logpath.iterdir())
        text = path.read_text()
        assert "line 099" in text and "|INFO|k8stars.test.files|" in text
        assert "hidden" not in "".join(p.read_text() for p in logpath.iterdir())
        set_log_level("DEBUG", ["k8stars.test.files"])
        logger.debug("now shown")
        assert "now shown" in path.read_text()
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(logging.NOTSET)


def test_from_config_wires_adapters_and_admin(tmp_path: Path) -> None:
    cfg = ServerConfig.from_tars_config(parse_config(genconf(tmp_path)))
    server = Server.from_config(cfg, {OBJ: CalcImp()})  # SpareObj has no implementation
    assert [a.servant for a in server.adapters] == [OBJ, ADMIN_SERVANT]
    assert isinstance(server.admin, AdminServant)
    assert server.endpoint(ADMIN_SERVANT) == cfg.local
    assert server.graceful_timeout == 60.0
    with pytest.raises(ConfigError, match=r"no adapter serves Test\.Calc\.Nope"):
        Server.from_config(cfg, {"Test.Calc.Nope": CalcImp()})


@pytest.mark.usefixtures("restore_logging")
@async_test
async def test_serve_async_with_configure(tmp_path: Path) -> None:
    path = tmp_path / "Calc.conf"
    path.write_text(genconf(tmp_path, local_port=free_port(), calc_port=free_port()))
    servers: list[Server] = []

    def configure(server: Server) -> None:
        assert server.admin is not None
        server.admin.register_command("app.hello", lambda command: "hello")
        servers.append(server)

    import asyncio

    task = asyncio.ensure_future(serve_async({OBJ: CalcImp()}, ["--config", str(path)],
                                             configure=configure))
    while not servers or servers[0].started_at is None:
        await asyncio.sleep(0.01)
    server = servers[0]
    wire = await Wire.open(server.endpoint(OBJ).port)
    assert (await wire.call(call("add", a=1, b=2))).iRet == 0
    await wire.close()
    assert server.admin is not None and await server.admin.notify("app.hello") == "hello"
    server.request_stop(1.0)
    assert await asyncio.wait_for(task, 3) == 0
    assert "Test.Calc started" in log_file_path(tmp_path / "log", "Test", "Calc").read_text()


SERVER_PROGRAM = """
import sys
from tests.rpc.test_server_support import OBJ, CalcImp
from k8stars.tars.server import serve
sys.exit(serve({OBJ: CalcImp()}))
"""


def start_program(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    local_port, calc_port = free_port(), free_port()
    path = tmp_path / "Calc.conf"
    path.write_text(genconf(tmp_path, local_port=local_port, calc_port=calc_port))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    proc = subprocess.Popen([sys.executable, "-c", SERVER_PROGRAM, f"--config={path}"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", local_port), timeout=1).close()
            return proc, local_port, calc_port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"server did not start: {proc.communicate()[1]!r}") from None
            time.sleep(0.02)


def test_program_with_config_stops_on_sigterm(tmp_path: Path) -> None:
    proc, _, calc_port = start_program(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", calc_port), timeout=5) as sock:
            sock.sendall(call("add", a=20, b=22))
            assert len(sock.recv(65536)) > 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.communicate()
    log = log_file_path(tmp_path / "log", "Test", "Calc").read_text()
    assert "received SIGTERM: stopping" in log and "|INFO|k8stars.tars.server|stopped" in log


def test_program_stops_on_admin_shutdown(tmp_path: Path) -> None:
    proc, local_port, _ = start_program(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", local_port), timeout=5) as sock:
            sock.sendall(request("shutdown", servant=ADMIN_SERVANT))
            assert len(sock.recv(65536)) > 4
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.communicate()


def test_program_with_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text("<tars>\n<application>\n<server>\nserver=B\n</server>\n</application>\n"
                    "</tars>\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    proc = subprocess.run([sys.executable, "-c", SERVER_PROGRAM, f"--config={path}"], cwd=ROOT,
                          env=env, capture_output=True, timeout=20)
    assert proc.returncode == 1
    assert b"config error:" in proc.stderr and b"<app>: missing required value" in proc.stderr
