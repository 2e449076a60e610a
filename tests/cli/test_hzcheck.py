"""tarscli hzcheck: the readiness probe's state-file rules, errors and import cost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from k8stars.cli import hzcheck
from k8stars.cli.main import main

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def tars_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("TARS_PATH", str(tmp_path))
    monkeypatch.delenv("TARS_REPORT_INTERVAL", raising=False)
    return tmp_path


def state(tars_path: Path, text: str, age: float = 0.0) -> Path:
    path = tars_path / "data" / "check_status"
    path.write_text(text)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["hzcheck"])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


@pytest.mark.parametrize("text", ["active", "deactivating", "active\n", " deactivating \n"])
def test_ready_states(tars_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    state(tars_path, text)
    assert run(capsys) == (0, "")


@pytest.mark.parametrize("text", ["inactive", "activating", "destroyed", "ACTIVE", "actived"])
def test_other_states_are_not_ready(tars_path: Path, capsys: pytest.CaptureFixture[str],
                                    text: str) -> None:
    state(tars_path, text)
    assert run(capsys) == (1, f"tarscli hzcheck: not ready: state is {text!r} "
                              "(ready when active or deactivating)\n")


def test_missing_file(tars_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tars_path / "data" / "check_status"
    assert run(capsys) == (1, f"tarscli hzcheck: not ready: {path} does not exist (the "
                              "supervisor has not checked the service yet)\n")


def test_stale_file_means_the_supervisor_is_dead(tars_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = state(tars_path, "active", age=61)
    code, err = run(capsys)
    assert code == 1
    assert err == (f"tarscli hzcheck: not ready: {path} is 61s old, more than 2 x "
                   "TARS_REPORT_INTERVAL (60s): the supervisor is not alive\n")
    state(tars_path, "active", age=59)
    assert run(capsys) == (0, "")


def test_report_interval_sets_the_staleness_limit(tars_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    state(tars_path, "deactivating", age=25)
    monkeypatch.setenv("TARS_REPORT_INTERVAL", "10s")
    assert run(capsys)[0] == 1
    monkeypatch.setenv("TARS_REPORT_INTERVAL", "1m")
    assert run(capsys) == (0, "")


def test_bad_report_interval_is_bad_input(tars_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    state(tars_path, "active")
    monkeypatch.setenv("TARS_REPORT_INTERVAL", "30")
    code, err = run(capsys)
    assert code == 2
    assert err.startswith("tarscli hzcheck: TARS_REPORT_INTERVAL='30': missing unit (did you "
                          "mean 30s?); expected a duration such as 500ms")
    assert err.count("\n") == 1


def test_arguments_are_rejected(tars_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hzcheck", "now"]) == 2
    assert capsys.readouterr().err == "tarscli hzcheck: takes no arguments, got 'now'\n"


def test_empty_file_is_read_ten_more_times_50ms_apart(tars_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = state(tars_path, "")
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    assert hzcheck.check(str(tars_path), 30.0) == f"{path} is empty"
    assert sleeps == [0.05] * 10


def test_empty_file_filled_while_retrying_is_ready(tars_path: Path) -> None:
    path = state(tars_path, "")

    def fill() -> None:
        time.sleep(0.12)
        path.write_text("active")

    writer = threading.Thread(target=fill)
    writer.start()
    started = time.monotonic()
    try:
        assert hzcheck.check(str(tars_path), 30.0) is None
    finally:
        writer.join()
    assert 0.1 <= time.monotonic() - started < 0.5


def test_clock_is_injectable(tars_path: Path) -> None:
    path = state(tars_path, "active")
    mtime = path.stat().st_mtime
    assert hzcheck.check(str(tars_path), 5.0, now=mtime + 10) is None
    assert "the supervisor is not alive" in (hzcheck.check(str(tars_path), 5.0,
                                                           now=mtime + 10.5) or "")


def _modules_after(code: str, tars_path: Path) -> tuple[int, list[str]]:
    """Run ``code`` in a fresh interpreter; return its exit code and the modules it added."""
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARS")}
    env.update(TARS_PATH=str(tars_path), PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=True)
    return proc.returncode, proc.stdout.split()


def test_hzcheck_imports_only_its_own_modules(tars_path: Path) -> None:
    state(tars_path, "active")
    _, added = _modules_after("from k8stars.cli.main import main\n"
                              "assert main(['hzcheck']) == 0", tars_path)
    assert added == ["k8stars", "k8stars.cli", "k8stars.cli.hzcheck", "k8stars.cli.main",
                     "k8stars.cli.settings"]


def test_hzcheck_importtime_shows_no_stdlib_imports(tars_path: Path) -> None:
    state(tars_path, "active")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARS")}
    env.update(TARS_PATH=str(tars_path), PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; from k8stars.cli.main import main; sys.exit(main())",
                           "hzcheck"], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line]
    after_site = imported[imported.index("site") + 1:]
    assert after_site == ["k8stars", "k8stars.cli", "k8stars.cli.main", "k8stars.cli.settings",
                          "k8stars.cli.hzcheck"]
