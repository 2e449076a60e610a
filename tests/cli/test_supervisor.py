"""tarscli supervisor with real processes and sockets: a recording test registry, our Python
Calc server as the service (started by ``start.sh``), short timings through the environment."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from k8stars.cli.meta import load_server_info

from .test_supervisor_support import Pod, TestRegistry, eventually, running


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None


def _zombie_children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                rest = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == pid and rest[0] == b"Z":
            found.append(int(name))
    return found


def _new_pid(pod: Pod, old: int) -> int:
    def changed() -> int:
        try:
            pid = pod.service_pid()
        except (FileNotFoundError, ValueError):
            return 0
        return pid if pid != old else 0

    return int(eventually(changed, 15, what=f"a new service process\n{pod.log()}"))


def orphan(seconds: float) -> str:
    """A start.sh line leaving an orphan (``sleep``) behind; its pid in data/orphan.pid."""
    return f'sh -c \'sleep {seconds} & echo $! > "$TARS_PATH/data/orphan.pid"\'\n'


def test_lifecycle_register_check_report_restart_and_sigterm(tmp_path: Path) -> None:
    pods: list[Pod] = []

    def on_call(method: str, req: Any) -> Any:
        if method == "onStartup":  # what hzcheck would read at that moment
            return pods[0].state() or None
        return None

    with TestRegistry(on_call=on_call) as reg:
        pod = Pod.create(tmp_path / "pod", reg.locator, extra=orphan(1.5), env={
            "TARS_BEFORE_CHECK_SCRIPT": 'echo run >> "$TARS_PATH/data/before_check"'})
        pods.append(pod)
        with running(pod):
            pod.wait_state("active")
            assert pod.hzcheck() == 0
            # an orphan of start.sh (still sleeping): reparented to the supervisor (subreaper)
            assert pod.process is not None
            orphan_pid = int(pod.path("data", "orphan.pid").read_text())
            assert _ppid(orphan_pid) == pod.process.pid
            (startup,) = eventually(lambda: reg.of("onStartup"), what="onStartup")
            assert startup.extra in ("activating", "active")  # state file written first
            info = load_server_info(str(pod.tars_path))
            req = startup.req
            assert (req["nodeName"], req["application"], req["server"]) == (
                pod.ip, "App", "PyServer")
            assert (req["podName"], req["podUid"]) == (pod.env["POD_NAME"], pod.env["POD_UID"])
            assert req["Version"] == "v1.2.3" and req["disableFlow"] is False
            assert req["State"] == "activating"
            assert [(a["servant"], a["endpoint"], a["protocol"], a["threadNum"])
                    for a in req["adapters"]] == [
                (a.servant, a.endpoint, "tars", a.threads) for a in info.adapters]
            assert info.adapters[1].threads == 2
            assert all(f"-h {pod.ip} " in a.endpoint for a in info.adapters)
            # a heartbeat at once on the change, then every TARS_REPORT_INTERVAL (1s)
            beats = eventually(lambda: (b := reg.of("keepAlive", state="active")) and
                               len(b) >= 3 and b, what="heartbeats")
            assert all(b.req["podUid"] == pod.env["POD_UID"] for b in beats)
            assert all(b.req["application"] == "App" for b in beats)
            gaps = [b.at - a.at for a, b in itertools.pairwise(beats[1:])]
            assert all(0.8 < g < 1.6 for g in gaps), gaps
            assert "server version: v1.2.3" in reg.messages()
            # the service's output: the supervisor's stdout/stderr and log/<app>.<server>.out
            out = pod.path("log", "App.PyServer.out").read_text()
            assert "fake service started" in out and "fake service stderr line" in out
            assert "fake service started" in pod.stdout.read_text()
            assert "fake service stderr line" in pod.stderr.read_text()
            assert pod.path("log", "supervisor.log").read_text().count("state activating ->")
            runs = pod.path("data", "before_check").read_text().split()
            assert len(runs) >= 2
            # ... and reaped when it exits (no zombie left)
            eventually(lambda: not os.path.exists(f"/proc/{orphan_pid}"), what="orphan reaped")
            assert _zombie_children(pod.process.pid) == []

            # crash: reported, restarted at once, active again
            old = pod.service_pid()
            os.kill(old, signal.SIGKILL)
            _new_pid(pod, old)
            eventually(lambda: "[warn] server down" in reg.messages(), what="the report")
            eventually(lambda: reg.of("keepAlive", state="inactive"), what="inactive reported")
            pod.wait_state("active")
            assert "[alarm] down, server is inactive" not in reg.messages()

            # SIGTERM: prestop flow, AdminObj shutdown, exit 0
            sent = time.time()
            pod.signal(signal.SIGTERM)
            assert pod.wait(15) == 0, pod.log()
            took = time.time() - sent
        events = dict(pod.events()[-3:])
        (deactivate,) = reg.of("keepAlive", state="deactivating")
        (prestop,) = reg.of("onPrestop")
    assert prestop.req == {"nodeName": pod.ip, "application": "App", "server": "PyServer"}
    assert sent < deactivate.at <= events["prestop"]
    assert prestop.at - events["prestop"] >= 0.3 - 0.05  # TARS_PRESTOP_WAITTIME
    assert prestop.at <= events["stop"] <= events["exit"]
    assert took < 5, pod.log()
    assert pod.state() == "deactivating"
    later = [c for c in reg.calls if c.at > deactivate.at and c.method == "keepAlive"]
    assert later == []


def test_registry_down_at_start_and_during_an_outage(tmp_path: Path) -> None:
    reg = TestRegistry()
    pod = Pod.create(tmp_path / "pod", reg.locator,
                     env={"TARS_REPORT_INTERVAL": "500ms", "TARS_DISABLE_FLOW": "yes"})
    try:
        with running(pod):
            pod.wait_state("active")  # K8STARS #17: ready without the registry
            assert pod.hzcheck() == 0
            reg.start()
            (startup,) = eventually(lambda: reg.of("onStartup"), what="late registration")
            assert startup.req["State"] == "active" and startup.req["disableFlow"] is True
            reg.stop()
            time.sleep(1.2)  # heartbeats (every 0.5s) fail meanwhile
            assert pod.state() == "active" and pod.hzcheck() == 0
            reg.start()
            again = eventually(lambda: reg.of("onStartup")[1:], what="re-registration")
            assert again[0].req["State"] == "active"
            eventually(lambda: [b for b in reg.of("keepAlive") if b.at > again[0].at],
                       what="heartbeats after the outage")
            log = pod.log()
    finally:
        reg.stop()
    assert "retrying with backoff" in log and "registry reachable again" in log


def test_restart_window_and_stop_marker(tmp_path: Path) -> None:
    with TestRegistry() as reg:
        pod = Pod.create(tmp_path / "pod", reg.locator)
        with running(pod, wrapper=(0.8, 60.0, 5.0)):  # a 0.8 s restart window
            pod.wait_state("active")
            first = pod.service_pid()
            os.kill(first, signal.SIGKILL)
            second = _new_pid(pod, first)  # the first crash restarts at once
            restarted = time.monotonic()
            os.kill(second, signal.SIGKILL)
            third = _new_pid(pod, second)  # within the window: postponed to its end
            assert time.monotonic() - restarted >= 0.5
            eventually(lambda: "[alarm] down, server is inactive" in reg.messages(),
                       what="the alarm")
            pod.wait_state("active")

            pod.path("data", "stop").write_text("")
            time.sleep(0.9)  # the window is over: only data/stop holds the restart back
            os.kill(third, signal.SIGKILL)
            pod.wait_state("inactive")
            time.sleep(0.5)
            assert pod.service_pid() == third and pod.hzcheck() == 1
            pod.path("data", "stop").unlink()
            _new_pid(pod, third)
            pod.wait_state("active")
            pod.signal(signal.SIGINT)  # handled as SIGTERM (docker run -it, Ctrl-C)
            assert pod.wait(10) == 0
            log = pod.log()
    assert "data/stop exists: the service is not restarted" in log
    assert "restart postponed" in log
    assert "received SIGINT: stopping" in log and "service stopped (exit status 0)" in log


def test_sigterm_after_the_prestop_hook(tmp_path: Path) -> None:
    with TestRegistry() as reg:
        pod = Pod.create(tmp_path / "pod", reg.locator, env={"TARS_REPORT_INTERVAL": "500ms"})
        with running(pod):
            pod.wait_state("active")
            hook = pod.run("prestop")
            assert hook.returncode == 0, hook.stderr
            deactivate = reg.of("keepAlive", state="deactivating")[0]
            assert len(reg.of("onPrestop")) == 1
            time.sleep(1.3)  # > 2 x TARS_REPORT_INTERVAL: the supervisor keeps the file fresh
            assert pod.state() == "deactivating" and pod.hzcheck() == 0
            # Nothing is reported while deactivating, except one keepAlive(deactivating) when
            # a heartbeat of the supervisor may have crossed the hook's: the last word is
            # deactivating either way.
            beats = reg.of("keepAlive")
            assert beats[-1].req["state"] == "deactivating"
            assert len(reg.of("keepAlive", state="deactivating")) <= 2
            crossed = [c for c in beats if c.at > deactivate.at
                       and c.req["state"] != "deactivating"]
            assert all(c.at - deactivate.at < 0.3 for c in crossed), crossed
            sent = time.monotonic()
            pod.signal(signal.SIGTERM)
            assert pod.wait(10) == 0, pod.log()
            assert time.monotonic() - sent < 3
        names = [e for e, _ in pod.events()]
    assert names.count("prestop") == 1 and names[-2:] == ["stop", "exit"]
    assert len(reg.of("onPrestop")) == 1  # the supervisor did not run the flow again
    assert "prestop has already run" in pod.log()


STUBBORN = "#!/bin/sh\ntrap '' TERM\nexec sleep 600\n"


def test_sigterm_escalates_to_sigkill(tmp_path: Path) -> None:
    reg = TestRegistry()  # never started: every registry call fails at once
    pod = Pod.create(tmp_path / "pod", reg.locator, start=STUBBORN)
    with running(pod, wrapper=(300.0, 0.5, 0.3)):
        eventually(lambda: pod.path("log", "App.PyServer.out").exists(), what="start")
        time.sleep(0.3)
        assert pod.state() == "activating"
        sent = time.monotonic()
        pod.signal(signal.SIGTERM)
        assert pod.wait(15) == 0, pod.log()
        took = time.monotonic() - sent
        log = pod.log()
    assert "sending SIGTERM to the service's process group" in log
    assert "the service ignored SIGTERM: sending SIGKILL" in log
    assert "service stopped (killed by SIGKILL)" in log
    assert took < 6, log


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare for a PID namespace")
def test_as_pid_1(tmp_path: Path) -> None:
    """PID 1 of its own PID namespace: reaps orphans and stops on SIGTERM (K8STARS #34)."""
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"unshare --pid not permitted: {probe.stderr.decode().strip()}")
    reg = TestRegistry()
    pod = Pod.create(tmp_path / "pod", reg.locator, extra=orphan(0.3))
    with running(pod, prefix=("unshare", "--pid", "--fork", "--mount-proc")):
        assert pod.process is not None
        unshare = pod.process.pid

        def supervisor_pid() -> int:
            for task in os.listdir(f"/proc/{unshare}/task"):
                with open(f"/proc/{unshare}/task/{task}/children") as fh:
                    children = fh.read().split()
                if children:
                    return int(children[0])
            return 0

        pid1 = int(eventually(supervisor_pid, what="the supervisor"))
        with open(f"/proc/{pid1}/status") as fh:
            nspid = next(line for line in fh if line.startswith("NSpid:")).split()
        assert nspid[-1] == "1"
        eventually(lambda: pod.path("data", "orphan.pid").exists(), what="the orphan")
        time.sleep(0.6)  # the orphan (sleep 0.3) has exited: reaped, not a zombie
        assert _zombie_children(pid1) == []
        pod.wait_state("active")
        os.kill(pid1, signal.SIGTERM)
        assert pod.wait(15) == 0, pod.log()
    assert "received SIGTERM: stopping" in pod.log()


@pytest.mark.parametrize(("env", "meta", "message"), [
    ({"TARS_CHECK_INTERVAL": "10"}, None,
     "TARS_CHECK_INTERVAL='10': missing unit (did you mean 10s?)"),
    ({"TARS_REPORT_INTERVAL": "0"}, None, "TARS_REPORT_INTERVAL='0': must be more than 0"),
    ({"TARS_RAND_PORT_MIN": "70000"}, None, "TARS_RAND_PORT_MIN='70000'"),
    ({"TARS_METRICS_PORT": "metrics"}, None,
     "TARS_METRICS_PORT='metrics': expected a port number from 1 to 65535"),
    ({}, "application: App\nadapters: [", "_server_meta.yaml"),
    ({}, "", "application and server not set"),
    ({"TARS_START_PATH": "/nonexistent/start.sh"}, None,
     "TARS_START_PATH='/nonexistent/start.sh': no such file"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, env: dict[str, str],
                                          meta: str | None, message: str) -> None:
    pod = Pod.create(tmp_path / "pod", "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1",
                     env=env)
    if meta is not None:
        pod.path("bin", "_server_meta.yaml").write_text(meta)
    result = pod.run("supervisor", timeout=20)
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tarscli supervisor: "), result.stderr
    assert message in lines[0], lines[0]
    assert not pod.path("data", "check_status").exists()


def test_missing_meta_and_no_free_port(tmp_path: Path) -> None:
    pod = Pod.create(tmp_path / "pod", "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1")
    pod.path("bin", "_server_meta.yaml").unlink()
    result = pod.run("supervisor", timeout=20)
    assert result.returncode == 2 and "_server_meta.yaml" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    with socket.socket() as busy:
        busy.bind((pod.ip, 0))
        busy.listen()
        port = busy.getsockname()[1]
        pod = Pod.create(tmp_path / "pod2", "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1",
                         env={"TARS_RAND_PORT_MIN": str(port), "TARS_RAND_PORT_MAX": str(port),
                              "POD_IP": pod.ip})
        result = pod.run("supervisor", timeout=20)
    assert result.returncode == 2, result
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "no free TCP port" in result.stderr
