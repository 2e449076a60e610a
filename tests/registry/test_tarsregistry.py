"""The ``tarsregistry`` command: settings (options, config file, environment) and the process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from k8stars.registry.main import main
from k8stars.registry.settings import DEFAULT_SQLITE, SettingsError, load_settings
from k8stars.tars.client import Communicator
from k8stars.tars.idl.loader import framework

from .conftest import startup

IDL = framework()
QUERY = IDL.interface("tars.QueryF")
REGISTRY = IDL.interface("tars.tarsregistry")
ADMIN = IDL.interface("tars.AdminF")


# -- settings -------------------------------------------------------------------------------------


def test_defaults() -> None:
    s = load_settings([], {})
    assert (s.host, s.advertise_host, s.query_port, s.registry_port) == ("0.0.0.0", "", 17890,
                                                                          17891)  # fmt: skip
    assert (s.admin_host, s.admin_port, s.metrics_port) == ("127.0.0.1", 17897, 9100)
    assert s.db_url == DEFAULT_SQLITE and s.log_level == "INFO" and s.token == ""
    assert (s.inactive_after_s, s.delete_after_s) == (90.0, 86400.0)


def test_environment() -> None:
    env = {"POD_IP": "10.1.2.3", "DB_HOST": "mysql.tars", "DB_USER": "tars", "DB_PASS": "p@ss:/",
           "TARS_REGISTRY_TOKEN": "tok"}  # fmt: skip
    s = load_settings([], env)
    assert (s.host, s.advertise_host, s.token) == ("10.1.2.3", "10.1.2.3", "tok")
    assert s.db_url == "mysql+pymysql://tars:p%40ss%3A%2F@mysql.tars:3306/db_tars"
    assert "p%40ss" not in s.safe_db_url() and "***" in s.safe_db_url()
    assert load_settings([], {"DB_HOST": "h", "DB_PORT": "3307"}).db_url == (
        "mysql+pymysql://root@h:3307/db_tars")
    go = load_settings([], {"DB_DSN": "tars:secret@tcp(db:3306)/db_tars?charset=utf8"})
    assert go.db_url == "mysql+pymysql://tars:secret@db:3306/db_tars"
    assert load_settings([], {"DB_DSN": "mysql://u:p@h/x"}).db_url == "mysql+pymysql://u:p@h/x"


def test_precedence_command_line_config_environment(tmp_path: Path) -> None:
    conf = tmp_path / "registry.conf"
    conf.write_text("<tars>\n  <registry>\n    query-port = 18000\n    registry-port = 18001\n"
                    "    db = sqlite:////tmp/x.db\n    inactive-after = 1m30s\n"
                    "    token = from-file\n  </registry>\n</tars>\n")  # fmt: skip
    env = {"DB_DSN": "mysql+pymysql://a@b/c", "TARS_REGISTRY_TOKEN": "from-env"}
    s = load_settings(["--config", str(conf), "--query-port", "19000", "--delete-after", "2h"],
                      env)  # fmt: skip
    assert (s.query_port, s.registry_port, s.db_url) == (19000, 18001, "sqlite:////tmp/x.db")
    assert (s.inactive_after_s, s.delete_after_s, s.token) == (90.0, 7200.0, "from-file")
    assert s.origins["query_port"] == "--query-port"


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--inactive-after", "90"], {}, "--inactive-after: '90': missing unit (did you mean 90s?)"),
    (["--delete-after", "1x"], {}, "unknown unit 'x'"),
    (["--inactive-after", "2h", "--delete-after", "1h"], {}, "must not be longer than"),
    (["--query-port", "70000"], {}, "--query-port: 70000 is out of range 0..65535"),
    (["--query-port", "x"], {}, "is not a port number"),
    (["--query-port", "1", "--registry-port", "1"], {}, "are both 1"),
    (["--db", "postgresql://u@h/db"], {}, "unsupported database 'postgresql'"),
    (["--db", "not a url"], {}, "is not a database URL"),
    (["--db", "sqlite://"], {}, "in-memory SQLite"),
    (["--db", "mysql+mysqldb://u@h/db"], {}, "driver 'mysqldb' is not supported"),
    (["--log-level", "LOUD"], {}, "unknown log level"),
    (["--host", " "], {}, "is not a host name"),
    (["--bogus"], {}, "unrecognized arguments: --bogus"),
    ([], {"DB_PORT": "x", "DB_HOST": "h"}, "DB_PORT"),
    ([], {"TARS_REGISTRY_TOKEN": "has space"}, "printable ASCII"),
])  # fmt: skip
def test_bad_settings(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(argv, env)
    assert message in str(info.value)


def test_bad_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("<tars>\n<registry>\nqueryport=1\n</registry>\n</tars>\n")
    with pytest.raises(SettingsError, match="unknown key 'queryport'"):
        load_settings(["--config", str(bad)], {})
    with pytest.raises(SettingsError, match="cannot read file"):
        load_settings(["--config", str(tmp_path / "missing.conf")], {})
    other = tmp_path / "other.conf"
    other.write_text("<tars>\n<x>\n</x>\n</tars>\n")
    with pytest.raises(SettingsError, match="no <tars><registry> domain"):
        load_settings(["--config", str(other)], {})


def test_main_reports_mistakes_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", "oracle://x@y/z"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tarsregistry: --db: unsupported")
    assert main(["--inactive-after", "soon"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "--advertise-host" in capsys.readouterr().out


# -- the process ----------------------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


@contextmanager
def tarsregistry(args: list[str], cwd: Path, env: dict[str, str] | None = None
                 ) -> Iterator[subprocess.Popen[str]]:  # fmt: skip
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("DB_", "TARS_REGISTRY", "POD_IP"))}  # fmt: skip
    full_env.update(env or {})
    proc = subprocess.Popen([sys.executable, "-m", "k8stars.registry.main", *args], cwd=cwd,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"tarsregistry exited: {proc.communicate()[1]}")
        try:
            status, text = _get(f"http://127.0.0.1:{port}/healthz")
            if status == 200:
                return text
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("tarsregistry did not become healthy")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    return proc.returncode, err


def test_command_on_sqlite_serves_queryf_metrics_sd_and_healthz(tmp_path: Path) -> None:
    q, r, a, m = _free_ports(4)
    args = ["--query-port", str(q), "--registry-port", str(r), "--admin-port", str(a),
            "--metrics-port", str(m), "--host", "127.0.0.1", "--advertise-host", "127.0.0.1"]
    with tarsregistry(args, tmp_path, {"TARS_REGISTRY_TOKEN": "tok"}) as proc:
        assert _wait_healthy(m, proc) == "ok\n"

        async def calls() -> None:
            async with Communicator() as comm:
                query = comm.proxy(QUERY, f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {q}")
                reg = comm.proxy(REGISTRY, f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {r}")
                admin = comm.proxy(ADMIN, f"AdminObj@tcp -h 127.0.0.1 -p {a}")
                own = await query.findObjectById("tars.tarsregistry.QueryObj")
                assert [(e.host, e.port) for e in own] == [("127.0.0.1", q)]
                own = await query.findObjectById("tars.tarsregistry.Registry")
                assert [(e.host, e.port) for e in own] == [("127.0.0.1", r)]
                await reg.onStartup(startup("10.0.0.7"), _context={"tars_registry_token": "tok"})
                found = await query.findObjectById("App.Srv.Obj")
                assert [(e.host, e.port) for e in found] == [("10.0.0.7", 10000)]
                status = await admin.notify("tars.registrystatus")
                assert "degraded: False" in status
                from .conftest import MetricsReq

                await reg.registerMetrics(MetricsReq(nodeName="10.0.0.7", application="App",
                                                     server="Srv", metricsPort=9999),
                                          _context={"tars_registry_token": "tok"})  # fmt: skip

        asyncio.run(calls())
        status, text = _get(f"http://127.0.0.1:{m}/metrics")
        assert status == 200 and "tarsregistry_calls_total" in text
        assert 'tarsregistry_instances{state="active"}' in text
        status, text = _get(f"http://127.0.0.1:{m}/sd")
        assert json.loads(text) == [{"targets": ["10.0.0.7:9999"], "labels": {
            "application": "App", "server": "Srv", "set": ""}}]
        code, err = _stop(proc)
    assert code == 0, err
    assert "Traceback" not in err and "tarsregistry stopped" in err
    assert (tmp_path / "tarsregistry.db").exists()  # the default database, in the cwd


def test_command_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (r,) = _free_ports(1)
        args = ["--host", "127.0.0.1", "--query-port", str(port), "--registry-port", str(r),
                "--admin-port", "0", "--metrics-port", "0", "--log-level", "ERROR"]
        with tarsregistry(args, tmp_path) as proc:
            _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert err.strip().count("\n") == 0, err
    assert err.startswith("tarsregistry: cannot listen") and "in use" in err


def test_command_starts_degraded_when_the_database_is_unreachable(tmp_path: Path) -> None:
    q, r, m, closed = _free_ports(4)
    args = ["--host", "127.0.0.1", "--advertise-host", "127.0.0.1", "--query-port", str(q),
            "--registry-port", str(r), "--admin-port", "0", "--metrics-port", str(m),
            "--db", f"mysql+pymysql://nobody:x@127.0.0.1:{closed}/db_tars"]
    with tarsregistry(args, tmp_path) as proc:
        text = _wait_healthy(m, proc)
        assert text.startswith("degraded: database unavailable") and "Connection refused" in text

        async def query() -> list[Any]:
            async with Communicator() as comm:
                proxy = comm.proxy(QUERY, f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {q}")
                result: list[Any] = await proxy.findObjectById("App.Srv.Obj")
                return result

        assert asyncio.run(query()) == []
        assert "tarsregistry_degraded 1.0" in _get(f"http://127.0.0.1:{m}/metrics")[1]
        code, err = _stop(proc)
    assert code == 0 and "Traceback" not in err
    assert "starting degraded: database unavailable" in err
