"""The real ``tarsregistry`` (on SQLite) as a process on fixed ports, for the tarscli and
end-to-end tests that need the registry's behaviour rather than a recording (no tests here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from .test_supervisor_support import eventually, free_port

TARSREGISTRY = str(Path(sys.executable).parent / "tarsregistry")


class RegistryProcess:
    """``tarsregistry`` on 127.0.0.1; restartable, on the same or a new database."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.query_port = free_port()
        self.registry_port = free_port()
        self.metrics_port = free_port()
        self.db = workdir / "db_tars.sqlite"
        self.log = workdir / "tarsregistry.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def locator(self) -> str:
        return f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {self.query_port} -t 3000"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"

    def start(self, db: Path | None = None) -> RegistryProcess:
        self.db = db or self.db
        args = [TARSREGISTRY, "--host", "127.0.0.1", "--query-port", str(self.query_port),
                "--registry-port", str(self.registry_port), "--admin-port", "0",
                "--metrics-port", str(self.metrics_port), "--db", f"sqlite:///{self.db}"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DB_", "TARS_", "POD_IP"))}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, cwd=self.workdir, env=env, stdout=log,
                                            stderr=log, stdin=subprocess.DEVNULL)
        eventually(self._healthy, 20, 0.1, what="tarsregistry healthy")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"tarsregistry exited:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(self.url("/healthz"), timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def sd(self) -> Any:
        """The Prometheus HTTP service discovery answer (``/sd``)."""
        with urllib.request.urlopen(self.url("/sd"), timeout=5) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> RegistryProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
