"""tarscli dispatcher: subcommands, help, version, and one-line errors for every user mistake."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import k8stars
from k8stars.cli.main import COMMANDS, main
from k8stars.cli.settings import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in VARIABLES:
        monkeypatch.delenv(var.name, raising=False)
    monkeypatch.setenv("TARS_PATH", str(tmp_path / "tars"))


def test_help_lists_every_subcommand_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help"]) == 0
    out = capsys.readouterr().out
    for name in ("genconf", "hzcheck", "syncdir", "supervisor", "prestop", "notify", "version",
                 "help"):
        assert f"\n  {name} " in out, name
    for var in VARIABLES:
        assert f"\n  {var.name} " in out, var.name
    assert "TARS_CHECK_INTERVAL          default 10s\n" in out
    assert "TARS_PATH                    default /tars\n" in out
    assert "Durations: a duration such as 500ms" in out
    for no_args in ([], ["-h"], ["--help"]):
        assert main(no_args) == 0
        assert capsys.readouterr().out == out


def test_help_of_one_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "hzcheck"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tarscli hzcheck\n\n  Readiness probe")
    assert "TARS_REPORT_INTERVAL" in out and "TARS_CHECK_INTERVAL" not in out
    for ask in (["hzcheck", "help"], ["hzcheck", "--help"], ["hzcheck", "-h"]):
        assert main(ask) == 0
        assert capsys.readouterr().out == out
    assert main(["help", "nope"]) == 2
    assert capsys.readouterr().err == ("tarscli help: unknown subcommand 'nope'; one of "
                                       f"{', '.join(COMMANDS)}\n")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out == f"{k8stars.__version__}\n"


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["genconfig"]) == 2
    assert capsys.readouterr().err == ("tarscli: unknown subcommand 'genconfig'; one of "
                                       f"{', '.join(COMMANDS)} (see tarscli help)\n")


def test_registry_entries_point_at_modules() -> None:
    for name, command in COMMANDS.items():
        assert command.name == name and command.summary
        assert command.module.startswith("k8stars.cli.")


@pytest.mark.parametrize("name", ["supervisor", "prestop", "notify"])
def test_later_subcommands_say_not_available_yet(name: str, capsys: pytest.CaptureFixture[str]
                                                 ) -> None:
    if (ROOT / "src" / "k8stars" / "cli" / f"{name}.py").exists():
        pytest.skip(f"{name} exists now")
    assert main([name]) == 2
    assert capsys.readouterr().err == f"tarscli {name}: not available yet in this version of " \
                                      "tarscli\n"


def test_genconf_through_the_dispatcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "tars", tmp_path / "tars")
    monkeypatch.setenv("POD_IP", "127.0.0.1")
    assert main(["genconf"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"tarscli genconf: wrote {tmp_path}/tars/conf/HelloServer.conf and "
                              f"{tmp_path}/tars/data/server_info.yaml (TestApp.HelloServer, 2 "
                              "adapter(s), local tcp -h 127.0.0.1 -p ")
    assert out.err == ""


def test_genconf_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert main(["genconf"]) == 2
    assert capsys.readouterr().err == (f"tarscli genconf: {tmp_path}/tars/bin/_server_meta.yaml: "
                                       "file not found (a service image puts its "
                                       "_server_meta.yaml in $TARS_PATH/bin; is TARS_PATH "
                                       "right?)\n")
    monkeypatch.setenv("TARS_RAND_PORT_MAX", "99999")
    assert main(["genconf"]) == 2
    assert capsys.readouterr().err == ("tarscli genconf: TARS_RAND_PORT_MAX='99999': expected a "
                                       "port number from 1 to 65535\n")
    assert main(["genconf", "extra"]) == 2
    assert capsys.readouterr().err == "tarscli genconf: takes no arguments, got 'extra'\n"


def test_genconf_warnings_go_to_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tars" / "bin").mkdir(parents=True)
    (tmp_path / "tars" / "bin" / "_server_meta.yaml").write_text(
        "application: A\nserver: S\ncolour: blue\n")
    monkeypatch.setenv("POD_IP", "127.0.0.1")
    assert main(["genconf"]) == 0
    assert capsys.readouterr().err == (f"tarscli genconf: warning: {tmp_path}/tars/bin/"
                                       "_server_meta.yaml:3: unknown key 'colour' ignored\n")


def test_os_errors_and_bugs_are_one_line(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from k8stars.cli import syncdir

    def broken(args: list[str]) -> int:
        raise PermissionError(13, "Permission denied", "/tars/bin/x")

    monkeypatch.setattr(syncdir, "main", broken)
    assert main(["syncdir"]) == 1
    assert capsys.readouterr().err == "tarscli syncdir: /tars/bin/x: Permission denied\n"

    def buggy(args: list[str]) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(syncdir, "main", buggy)
    assert main(["syncdir"]) == 70
    err = capsys.readouterr().err
    assert err == ("tarscli syncdir: internal error: ZeroDivisionError: division by zero (set "
                   "TARSCLI_DEBUG=1 for the traceback)\n")
    monkeypatch.setenv("TARSCLI_DEBUG", "1")
    assert main(["syncdir"]) == 70
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_console_script_in_a_subprocess(tmp_path: Path) -> None:
    """The way Kubernetes runs it: a new process, errors as one line, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARS", "POD_"))}
    env.update(TARS_PATH=str(tmp_path), PYTHONPATH=str(ROOT / "src"),
               TARS_REPORT_INTERVAL="1 minute")
    code = "import sys; from k8stars.cli.main import main; sys.exit(main())"
    cases = {
        ("hzcheck",): 2, ("genconf",): 2, ("syncdir",): 0, ("nope",): 2, ("version",): 0,
    }
    for args, status in cases.items():
        proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                              text=True, check=False)
        assert proc.returncode == status, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") <= 1, proc.stderr


def test_packages_stay_import_free() -> None:
    for init in (ROOT / "src" / "k8stars" / "__init__.py",
                 ROOT / "src" / "k8stars" / "cli" / "__init__.py"):
        tree = ast.parse(init.read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)], init


def test_dispatcher_imports_nothing_at_module_level() -> None:
    tree = ast.parse((ROOT / "src" / "k8stars" / "cli" / "main.py").read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(n) for n in top] == ["import sys"]
