"""Unit tests of the runner's pieces: service checks, the table, the generic client's arguments."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from k8stars.local.call import find_method, parse_args, result_json
from k8stars.local.spec import (
    RunnerConfig,
    UserError,
    load_services,
    resolve_dir,
    template_hash,
)
from k8stars.local.state import RunnerLock, StatePaths, check_ports_free
from k8stars.local.table import Console, render_table

from .support import EXAMPLES, free_ports


def service_dir(tmp: Path, meta: str, name: str = "svc", start: bool = True) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "_server_meta.yaml").write_text(meta)
    if start:
        (d / "start.sh").write_text("#!/bin/sh\nexec sleep 1000\n")
    return d


def test_examples_are_services() -> None:
    specs = load_services([str(EXAMPLES / "simple"), "hello"])
    assert [s.name for s in specs] == ["App.SimpleServer", "TestApp.HelloPy"]
    simple = specs[0]
    assert simple.adapters == (("App.SimpleServer.MainObj", "tars"),
                               ("App.SimpleServer.HttpObj", "not_tars"))
    assert [Path(p).name for p in simple.idl_files] == ["simple.tars"]
    assert simple.short == "simpleserver"
    for query in ("App.SimpleServer", "SimpleServer", "simpleserver", "simple"):
        assert simple.matches(query), query
    assert not simple.matches("hello")


def test_not_a_service(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"not a service directory: no _server_meta.yaml and no "
                                        r"start.sh"):
        load_services([str(tmp_path / "empty")])
    with pytest.raises(UserError, match="no such directory, nor an example"):
        resolve_dir(str(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"no start\.sh"):
        load_services([str(service_dir(tmp_path, "application: A\nserver: B\n", start=False))])
    with pytest.raises(UserError, match="no service given"):
        load_services([])


@pytest.mark.parametrize(("meta", "problem"), [
    ("application: A\nserver: [x\n", r"svc/_server_meta.yaml:\d+: YAML syntax error"),
    ("application: A\n", r"server not set"),
    ("application: A\nserver: B\nadapters: 3\n", r"adapters"),
])
def test_broken_meta(tmp_path: Path, meta: str, problem: str) -> None:
    d = service_dir(tmp_path, meta)
    with pytest.raises(UserError) as info:
        load_services([str(d)])
    assert info.value.code == 2
    assert "svc" in info.value.message and "\n" not in info.value.message
    assert re.search(problem, info.value.message), info.value.message


def test_same_service_twice(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "hello", tmp_path / "hello2")
    with pytest.raises(UserError, match=r"TestApp\.HelloPy is given twice"):
        load_services(["hello", str(tmp_path / "hello2")])


def test_node_service_needs_node_modules(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "node-hello", tmp_path / "nh",
                    ignore=shutil.ignore_patterns("node_modules"))
    with pytest.raises(UserError, match="npm ci"):
        load_services([str(tmp_path / "nh")])


def test_template_hash_follows_the_code(tmp_path: Path) -> None:
    d = service_dir(tmp_path, "application: A\nserver: B\n")
    first = template_hash(str(d))
    assert first == template_hash(str(d)) and len(first) == 6
    (d / "server.py").write_text("print(1)\n")
    assert template_hash(str(d)) != first


def test_lock_and_ports(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    assert not RunnerLock.held(paths)
    lock = RunnerLock(paths)
    lock.acquire()
    try:
        assert RunnerLock.held(paths)
        with pytest.raises(UserError, match="already running"):
            RunnerLock(paths).acquire()
    finally:
        lock.release()
    assert not RunnerLock.held(paths)
    assert (paths.root / ".gitignore").read_text().splitlines()[-1] == "*"
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is in use"):
            check_ports_free("127.0.0.1", [("--query-port", free_ports(1)[0]),
                                           ("--query-port", port)])


def test_long_state_dir_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    assert len(str(StatePaths(deep).control)) <= 100


def test_call_arguments() -> None:
    idl = [str(EXAMPLES / "hello" / "SayHello.tars")]
    _, say = find_method(idl, "SayHello")
    assert parse_args(say, ["Ada"]) == ["Ada"]
    assert parse_args(say, ['"x y"']) == ["x y"]
    assert parse_args(say, ["42"]) == ["42"]
    _, add = find_method(idl, "Add")
    assert parse_args(add, ["1", "2"]) == [1, 2]
    with pytest.raises(UserError, match="not a JSON value"):
        parse_args(add, ["1", "two"])
    with pytest.raises(UserError, match="out of range"):
        parse_args(add, ["1", str(2**40)])
    with pytest.raises(UserError, match=r"takes 2 argument\(s\), 1 given"):
        parse_args(add, ["1"])
    with pytest.raises(UserError, match=r"no method 'Nope'.*methods: Add, SayHello"):
        find_method(idl, "Nope")
    assert result_json(add, (0, 3)) == {"return": 0, "c": 3}
    assert result_json(say, "hello Ada") == "hello Ada"


def test_table() -> None:
    snapshot = {
        "registry": {"host": "127.0.0.1", "query_port": 17890, "state": "healthy", "pid": 1,
                     "locator": "L"},
        "services": [{"name": "App.S", "replicas": 1}, {"name": "App.T", "replicas": 0}],
        "pods": [{"name": "s-abc-1", "service": "App.S", "ip": "127.0.0.11",
                  "state": "starting", "detail": "not ready: state is 'activating'",
                  "tars_state": "activating", "registry": "", "restarts": 0, "created": 100.0,
                  "endpoints": [{"servant": "App.S.HttpObj", "protocol": "not_tars",
                                 "host": "127.0.0.11", "port": 13001}]}],
        "state_dir": "/x", "pid": 2, "mode": "detached", "phase": "running",
    }
    lines = render_table(snapshot, now=105.0)
    assert lines[1].split() == ["SERVICE", "POD", "POD_IP", "STATE", "TARS", "REGISTRY",
                                "RESTARTS", "AGE", "ENDPOINTS"]
    assert "s-abc-1" in lines[2] and "5s" in lines[2] and "HttpObj 127.0.0.11:13001 (not_tars)" \
        in lines[2]
    assert lines[3].strip() == "└ not ready: state is 'activating'"
    assert "0/0 replicas" in lines[4]
    assert lines[-1].startswith("0/1 pods ready")


def test_console_plain_output(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        console = Console(fh)
        assert not console.live
        console.handle({"event": "log", "message": "one"})
        console.handle({"event": "progress", "message": "two"})
        console.handle({"event": "state", "state": {}})
        console.done()
    assert out.read_text() == "one\ntwo\n"


def test_config_defaults() -> None:
    config = RunnerConfig(state_dir=os.getcwd())
    assert config.locator == "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890"
    assert [p for _, p in config.registry_ports()] == [17890, 17891, 17897, 9100]
    assert RunnerConfig.from_dict(config.to_dict()) == config


def test_pod_runs_its_container_with_the_downward_api(tmp_path: Path) -> None:
    from k8stars.local.pod import Container, Pod, tool_command
    from k8stars.local.spec import RunnerConfig

    [spec] = load_services(["hello"])
    container = Container(
        command=["tarscli", "supervisor"], readiness=["/bin/check", "-q"],
        env={"TARS_PRESTOP_WAITTIME": "7s", "EXTRA": "x"},
        field_refs={"POD_IP": "status.podIP", "MY_UID": "metadata.uid",
                    "TARS_NAMESPACE": "metadata.namespace",
                    "SERVER_VERSION": "metadata.labels['app.kubernetes.io/version']"},
        namespace="apps", labels={"app.kubernetes.io/version": "1.2.3"})
    pod = Pod(spec, "hellopy-1", "127.0.0.31", 1, RunnerConfig(state_dir=str(tmp_path)),
              tmp_path / "pod", str(tmp_path), lambda p: None, netns="pn1",
              container=container)
    env = pod.env()
    # the container's env wins over the runner's settings; fieldRefs come from the pod
    assert env["TARS_PRESTOP_WAITTIME"] == "7s" and env["EXTRA"] == "x"
    assert (env["POD_IP"], env["MY_UID"]) == ("127.0.0.31", pod.uid)
    assert (env["TARS_NAMESPACE"], env["SERVER_VERSION"]) == ("apps", "1.2.3")
    # commands run in the pod's network namespace; tarscli is this installation's
    probe = pod.command(container.readiness)
    assert probe == ["ip", "netns", "exec", "pn1", "/bin/check", "-q"]
    tarscli = tool_command("tarscli", "k8stars.cli.main")
    assert pod.command(container.command) == ["ip", "netns", "exec", "pn1", *tarscli,
                                              "supervisor"]
    with pytest.raises(ValueError, match=r"spec\.nodeName"):
        Pod(spec, "p", "127.0.0.32", 2, RunnerConfig(state_dir=str(tmp_path)), tmp_path / "p2",
            str(tmp_path), lambda p: None,
            container=Container(field_refs={"NODE": "spec.nodeName"})).env()
