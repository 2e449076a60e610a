"""A throw-away MariaDB server of its own, in a network namespace (the database "host" that a
partition can cut off). It never touches the machine's own MariaDB or /var/lib/mysql."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ..netns import Namespace

USER, PASSWORD = "tars", "tars"


def _binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(f"{name} is not installed (Debian package mariadb-server)")


class PrivateMariaDB:
    """``mariadbd`` on ``ns.ip:3306`` with its data in ``datadir``; user tars/tars from anywhere."""

    def __init__(self, datadir: Path, ns: Namespace) -> None:
        self.datadir = datadir
        self.ns = ns
        self.socket = datadir / "mysqld.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{USER}:{PASSWORD}@{self.ns.ip}:3306/db_tars"

    def start(self, timeout: float = 30.0) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [_binary("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}",
             "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
            capture_output=True, check=True, timeout=120)
        with open(self.datadir / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                self.ns.command(_binary("mariadbd"), "--no-defaults",
                                f"--datadir={self.datadir}", f"--socket={self.socket}",
                                f"--pid-file={self.datadir / 'mariadbd.pid'}",
                                f"--bind-address={self.ns.ip}", "--port=3306",
                                "--skip-name-resolve", "--user=root", "--skip-log-bin",
                                "--innodb-buffer-pool-size=32M"),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            done = self._sql(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY "
                             f"'{PASSWORD}'; GRANT ALL ON *.* TO '{USER}'@'%'")
            if done:
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("private mariadbd did not start: "
                                   + (self.datadir / "server.log").read_text()[-1500:])
            time.sleep(0.1)

    def _sql(self, sql: str) -> bool:
        """Run ``sql`` as root over the Unix socket (reachable from every namespace)."""
        proc = subprocess.run([_binary("mariadb"), "--no-defaults", f"--socket={self.socket}",
                               "-uroot", "-e", sql], capture_output=True, check=False,
                              timeout=30)
        return proc.returncode == 0

    def query(self, sql: str) -> list[list[str]]:
        """Rows of ``sql`` (tab-separated output, no header)."""
        proc = subprocess.run([_binary("mariadb"), "--no-defaults", f"--socket={self.socket}",
                               "-uroot", "-N", "-B", "-e", sql], capture_output=True, text=True,
                              check=True, timeout=30)
        return [line.split("\t") for line in proc.stdout.splitlines()]

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
