"""User mistakes and interruptions: one clear line, a non-zero exit, nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from k8stars.local.state import RunnerLock, StatePaths

from .support import (
    EXAMPLES,
    alive,
    k8stars,
    k8stars_popen,
    leftovers,
    listening,
    registry_options,
    state,
)


def assert_clean(state_dir: Path) -> None:
    assert leftovers(state_dir) == []
    paths = StatePaths(state_dir)
    assert not RunnerLock.held(paths)
    assert not paths.state.exists() and not paths.control.exists()


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_not_a_service(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    out = k8stars(tmp_path / "state", "up", "examples/hello", str(tmp_path / "nothing"))
    assert out.returncode == 2
    assert one_line(out.stderr).startswith("k8stars up: ")
    assert "not a service directory: no _server_meta.yaml and no start.sh" in out.stderr
    assert not (tmp_path / "state").exists()
    out = k8stars(tmp_path / "state", "up", "no-such-example")
    assert out.returncode == 2
    assert "no-such-example: no such directory, nor an example (examples: hello, node-hello," \
        " simple)" in one_line(out.stderr)


def test_broken_meta(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "start.sh").write_text("#!/bin/sh\nexec sleep 100\n")
    (bad / "_server_meta.yaml").write_text("application: App\nserver: Bad\nadapters:\n"
                                           "  - object: [MainObj\n")
    out = k8stars(tmp_path / "state", "up", str(bad), "examples/simple")
    assert out.returncode == 2
    assert "_server_meta.yaml:" in one_line(out.stderr)
    assert not (tmp_path / "state").exists()


def test_port_in_use(tmp_path: Path) -> None:
    options = registry_options()
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", int(options[3])))  # the Registry port
        busy.listen()
        out = k8stars(tmp_path / "state", "up", "examples/hello", *options)
    assert out.returncode == 1
    assert (f"port {options[3]} on 127.0.0.1 is in use (the registry's --registry-port)"
            in one_line(out.stderr))
    assert_clean(tmp_path / "state")


def test_service_that_never_gets_ready_is_rolled_back(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "_server_meta.yaml").write_text("application: App\nserver: Broken\n"
                                              "adapters:\n  - object: MainObj\n")
    (broken / "start.sh").write_text("#!/bin/sh\necho cannot start >&2\nexit 3\n")
    state_dir = tmp_path / "state"
    out = k8stars(state_dir, "up", "examples/hello", str(broken), "--detach",
                  "--ready-timeout", "3", "--prestop-wait", "500ms", *registry_options())
    assert out.returncode == 1, out.stdout + out.stderr
    message = one_line(out.stderr)
    assert re.search(r"pod broken-[0-9a-f]{6}-1 \(App.Broken\) not serving after 3s", message)
    assert "container.log" in message
    assert "the service exited (exit status 3), last output: cannot start" in message
    assert "stopping what was started" in out.stdout
    assert_clean(state_dir)


def test_commands_without_a_runner(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    out = k8stars(state_dir, "status")
    assert out.returncode == 1 and "k8stars is not running" in one_line(out.stderr)
    out = k8stars(state_dir, "call", "App.SimpleServer.MainObj", "Sum", "1", "2")
    assert out.returncode == 1 and "give --locator" in one_line(out.stderr)
    out = k8stars(state_dir, "restart", "hello")
    assert out.returncode == 1 and "not running" in one_line(out.stderr)
    out = k8stars(state_dir, "down")
    assert out.returncode == 0 and "nothing to stop" in out.stdout
    out = k8stars(state_dir, "up", "hello", "--replicas", "0")
    assert out.returncode == 2 and "--replicas must be 1 or more" in one_line(out.stderr)


def _wait_for(proc_out: list[str], text: str, proc: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in proc_out):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in {proc_out}")


def _reader(stream: object, sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line)


@pytest.mark.parametrize("when", ["starting", "ready"])
def test_ctrl_c_in_the_foreground(tmp_path: Path, when: str) -> None:
    import threading

    state_dir = tmp_path / "state"
    options = registry_options()
    proc = k8stars_popen(state_dir, "up", "examples/hello", "--replicas", "2",
                         "--prestop-wait", "500ms", *options)
    lines: list[str] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_reader, args=(proc.stdout, lines)),
               threading.Thread(target=_reader, args=(proc.stderr, errors))]
    for t in threads:
        t.start()
    try:
        _wait_for(lines, "pod hellopy" if when == "starting" else "running: Ctrl-C", proc)
        pids = [p["pid"] for p in state(state_dir)["pods"]] + [state(state_dir)["registry"]["pid"]]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for t in threads:
            t.join()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    output = "".join(lines)
    if when == "starting":
        assert code == 130, output + "".join(errors)
        assert "interrupted" in output
        assert "interrupted: nothing left running" in "".join(errors)
    else:
        assert code == 0, output + "".join(errors)
        assert "down: everything stopped" in output
    assert_clean(state_dir)
    assert not [pid for pid in pids if pid and alive(pid)]
    assert not listening("127.0.0.1", int(options[1]))


def test_down_after_the_runner_was_killed(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    out = k8stars(state_dir, "up", "examples/hello", "--detach", *registry_options())
    assert out.returncode == 0, out.stderr
    current = state(state_dir)
    os.kill(current["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while RunnerLock.held(StatePaths(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(state_dir)  # the pods and the registry are orphans now
    status = k8stars(state_dir, "status")
    assert status.returncode == 1 and "`k8stars down` stops them" in status.stderr
    out = k8stars(state_dir, "down")
    assert out.returncode == 0, out.stderr
    assert "stopping" in out.stdout and "process(es) it left behind" in out.stdout
    assert leftovers(state_dir) == []
    # and a new up on the same state dir starts cleanly
    assert EXAMPLES.is_dir()


