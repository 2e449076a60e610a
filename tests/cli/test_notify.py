"""tarscli notify: the answer of AdminObj.notify on stdout, failures on stderr with a reason."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import pytest

from k8stars.cli import notify
from k8stars.cli.genconf import generate
from k8stars.cli.main import main
from k8stars.cli.meta import ServerInfo
from k8stars.cli.settings import Settings
from k8stars.tars.idl.loader import framework
from k8stars.tars.servant import Servant

from .test_supervisor_support import TARSCLI, ThreadServer, make_pod


class EchoAdmin(Servant, interface=framework().interface("tars.AdminF")):
    def shutdown(self) -> None:
        pass

    async def notify(self, command: str) -> str:
        if command == "slow":
            await asyncio.sleep(2)
        return f"answer to [{command}]\nsecond line"

    def getPid(self) -> int:
        return os.getpid()


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ServerInfo]:
    tars_path = make_pod(tmp_path / "pod")
    info = generate(Settings({"TARS_PATH": str(tars_path), "POD_IP": "127.0.0.1"})).info
    monkeypatch.setenv("TARS_PATH", str(tars_path))
    return tars_path, info


def run(tars_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "TARS_PATH": str(tars_path)}
    return subprocess.run([TARSCLI, "notify", *args], env=env, capture_output=True, text=True,
                          timeout=30, check=False)


def test_prints_the_answer(pod: tuple[Path, ServerInfo]) -> None:
    tars_path, info = pod
    with ThreadServer({"AdminObj": (EchoAdmin(), info.local)}):
        result = run(tars_path, "tars.setloglevel", "DEBUG")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "answer to [tars.setloglevel DEBUG]\nsecond line\n"


def test_service_down(pod: tuple[Path, ServerInfo]) -> None:
    tars_path, info = pod
    result = run(tars_path, "tars.viewstatus")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"tarscli notify: AdminObj@{info.local}: cannot connect: ")
    assert "Connection refused" in line and line.endswith("(is the service running?)")


def test_timeout(pod: tuple[Path, ServerInfo], monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
    _, info = pod
    monkeypatch.setattr(notify, "TIMEOUT", 0.3)
    with ThreadServer({"AdminObj": (EchoAdmin(), info.local)}):
        assert main(["notify", "slow"]) == 1
    err = capsys.readouterr().err
    assert err == (f"tarscli notify: AdminObj@{info.local}: no answer to 'slow' within 0.3 s "
                   "(is the service busy or hung?)\n")


def test_a_peer_that_is_not_tars(pod: tuple[Path, ServerInfo], monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, info = pod
    monkeypatch.setattr(notify, "TIMEOUT", 0.3)
    port = int(info.local.split("-p ")[1].split()[0])
    with socket.socket() as silent:  # accepts, never answers
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", port))
        silent.listen()
        assert main(["notify", "tars.viewstatus"]) == 1
    assert "no answer to 'tars.viewstatus' within 0.3 s" in capsys.readouterr().err


def test_usage_and_missing_server_info(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("tarscli notify: usage: tarscli notify CMD [ARGS...]")
    result = run(tmp_path, "tars.viewstatus")
    assert result.returncode == 2
    assert result.stderr == (f"tarscli notify: {tmp_path}/data/server_info.yaml: file not found "
                             "(run tarscli genconf first)\n")
