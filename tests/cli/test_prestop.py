"""tarscli prestop: the preStop hook's order, once-only marker, and safety when the registry
or the service is gone (a real ``tarscli prestop`` process against in-thread servers)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from k8stars.cli.genconf import generate
from k8stars.cli.meta import ServerInfo
from k8stars.cli.settings import Settings
from k8stars.tars.idl.loader import framework
from k8stars.tars.servant import Servant

from .test_supervisor_support import (
    TARSCLI,
    TestRegistry,
    ThreadServer,
    eventually,
    make_pod,
)

ADMIN = framework().interface("tars.AdminF")


class RecordingAdmin(Servant, interface=ADMIN):
    """AdminObj that records its commands (with their times)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def shutdown(self) -> None:
        with self.lock:
            self.commands.append(("shutdown", time.time()))

    def notify(self, command: str) -> str:
        with self.lock:
            self.commands.append((command, time.time()))
        return f"done: {command}"

    def getPid(self) -> int:
        return 0


def pod_env(tars_path: Path, locator: str, **extra: str) -> dict[str, str]:
    import os

    return {"PATH": os.environ.get("PATH", ""), "TARS_PATH": str(tars_path),
            "POD_IP": "127.0.0.1", "POD_NAME": "pod-a", "POD_UID": "uid-a",
            "TARS_LOCATOR": locator, "TARS_PRESTOP_WAITTIME": "500ms", **extra}


def prepared(tmp_path: Path, locator: str) -> tuple[Path, ServerInfo]:
    tars_path = make_pod(tmp_path / "pod")
    info = generate(Settings({"TARS_PATH": str(tars_path), "POD_IP": "127.0.0.1",
                              "POD_NAME": "pod-a", "POD_UID": "uid-a",
                              "TARS_LOCATOR": locator})).info
    return tars_path, info


def prestop(env: dict[str, str]) -> tuple[Any, float]:
    import subprocess

    start = time.monotonic()
    result = subprocess.run([TARSCLI, "prestop"], env=env, capture_output=True, text=True,
                            timeout=30, check=False)
    return result, time.monotonic() - start


def test_order_and_once_only(tmp_path: Path) -> None:
    with TestRegistry() as reg:
        tars_path, info = prepared(tmp_path, reg.locator)
        admin = RecordingAdmin()
        with ThreadServer({"AdminObj": (admin, info.local)}):
            result, took = prestop(pod_env(tars_path, reg.locator))
            assert result.returncode == 0, result.stderr
            (beat,) = reg.of("keepAlive")
            (gone,) = reg.of("onPrestop")
            ((command, told),) = admin.commands
            assert (tars_path / "data" / "check_status").read_text() == "deactivating"
            assert (tars_path / "data" / "prestop").exists()
            # once only: nothing is sent again
            again, _ = prestop(pod_env(tars_path, reg.locator))
            assert again.returncode == 0 and "prestop has already run" in again.stderr
            assert len(reg.calls) == 2 and len(admin.commands) == 1
    assert beat.req == {"nodeName": "127.0.0.1", "state": "deactivating", "application": "App",
                        "server": "PyServer", "podName": "pod-a", "podUid": "uid-a"}
    assert command == "prestop"
    assert beat.at <= told <= gone.at
    assert gone.at - beat.at >= 0.5 - 0.02  # TARS_PRESTOP_WAITTIME
    assert gone.req == {"nodeName": "127.0.0.1", "application": "App", "server": "PyServer"}
    assert took < 5
    assert "keepAlive(deactivating) sent" in result.stderr
    assert "AdminObj.notify(prestop): done: prestop" in result.stderr


def test_safe_when_registry_and_service_are_gone(tmp_path: Path) -> None:
    reg = TestRegistry()  # never started
    tars_path, _ = prepared(tmp_path, reg.locator)
    result, took = prestop(pod_env(tars_path, reg.locator, TARS_PRESTOP_WAITTIME="300ms"))
    assert result.returncode == 0, result.stderr
    assert took < 4, result.stderr
    err = result.stderr
    assert "keepAlive(deactivating): registry has no known endpoint" in err
    assert "AdminObj.notify(prestop) failed: service unreachable" in err
    assert "keepAlive(deactivating) never reached the registry" in err
    assert "onPrestop failed" in err
    assert (tars_path / "data" / "check_status").read_text() == "deactivating"


def test_registry_back_during_the_wait(tmp_path: Path) -> None:
    reg = TestRegistry()
    tars_path, _ = prepared(tmp_path, reg.locator)
    import subprocess

    proc = subprocess.Popen([TARSCLI, "prestop"],
                            env=pod_env(tars_path, reg.locator, TARS_PRESTOP_WAITTIME="1200ms"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: (tars_path / "data" / "prestop").exists(), what="the marker")
        time.sleep(0.3)
        reg.start()
        assert proc.wait(15) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reg.stop()
    assert [c.method for c in reg.calls] == ["keepAlive", "onPrestop"], err
    assert reg.calls[0].req["state"] == "deactivating"
    assert "retrying during the wait" in err


@pytest.mark.parametrize(("extra", "message"), [
    ({"TARS_PRESTOP_WAITTIME": "80"}, "TARS_PRESTOP_WAITTIME='80': missing unit"),
    ({"TARS_PRESTOP_WAITTIME": "-1s"}, "TARS_PRESTOP_WAITTIME='-1s': a duration cannot be"),
    ({"TARS_LOCATOR": "tars.tarsregistry.QueryObj@tcp -h"}, "locator"),
])
def test_misconfigured(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    tars_path, _ = prepared(tmp_path, "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1")
    result, _ = prestop(pod_env(tars_path, "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1",
                                **extra))
    assert result.returncode == 2, result
    assert result.stderr.startswith("tarscli prestop: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tars_path / "data" / "prestop").exists()


def test_without_server_info(tmp_path: Path) -> None:
    tars_path = make_pod(tmp_path / "pod")
    result, _ = prestop(pod_env(tars_path, "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1"))
    assert result.returncode == 2
    assert result.stderr == (f"tarscli prestop: {tars_path}/data/server_info.yaml: file not "
                             "found (run tarscli genconf first)\n")
