"""The local runner's registry process (``tarsregistry`` on SQLite) and what the runner asks it.

:class:`RegistryProcess` starts ``tarsregistry`` on the state directory's SQLite file, waits for
``/healthz``, and stops it (SIGTERM, SIGKILL after a time limit). :class:`RegistryView` asks
QueryF which endpoints of a servant are active, as any TARS client would, so the runner shows
(and waits for) what clients will actually be told.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

from ..tars.client import Communicator, ServantProxy
from ..tars.idl.loader import framework
from .pod import tool_command
from .spec import RunnerConfig, UserError
from .state import MARKER_VAR, StatePaths

__all__ = ["RegistryProcess", "RegistryView", "http_get"]

#: How long the registry may take to become healthy, and to stop.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 12.0


async def http_get(host: str, port: int, path: str = "/", timeout: float = 5.0
                   ) -> tuple[int, str]:
    """A minimal HTTP/1.1 GET: (status, body)."""
    async def get() -> tuple[int, str]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        head, _, body = data.partition(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise OSError(f"not an HTTP answer from {host}:{port}")
        if b"transfer-encoding: chunked" in head.lower():
            body = _unchunk(body)
        return int(parts[1]), body.decode(errors="replace")

    return await asyncio.wait_for(get(), timeout)


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return bytes(out)


class RegistryProcess:
    """``tarsregistry`` started by the runner."""

    def __init__(self, config: RunnerConfig, paths: StatePaths) -> None:
        self.config = config
        self.paths = paths
        self.process: asyncio.subprocess.Process | None = None
        self.state = "stopped"
        self.started_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        c = self.config
        return [*tool_command("tarsregistry", "k8stars.registry.main"),
                "--host", c.host, "--advertise-host", c.host,
                "--query-port", str(c.query_port), "--registry-port", str(c.registry_port),
                "--admin-port", str(c.admin_port), "--metrics-port", str(c.metrics_port),
                "--db", f"sqlite:///{self.paths.registry_db}",
                "--inactive-after", c.inactive_after, "--delete-after", c.delete_after,
                "--log-level", "INFO"]

    async def start(self, progress: Callable[[str], None]) -> float:
        """Start and wait until healthy; returns the seconds it took. :class:`UserError`
        (with the registry's own last line) when it exits or stays unhealthy."""
        self.paths.registry.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DB_", "POD_", "TARS_", "K8STARS_"))}
        env[MARKER_VAR] = str(self.paths.root)
        env["PYTHONUNBUFFERED"] = "1"
        started = time.monotonic()
        self.state = "starting"
        with open(self.paths.registry_log, "ab") as logfile:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(), env=env, cwd=str(self.paths.registry),
                stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                start_new_session=True)
        self.started_at = time.time()
        deadline = started + START_TIMEOUT
        last_report = started
        while True:
            if self.process.returncode is not None:
                self.state = "failed"
                raise UserError(f"tarsregistry exited ({self.process.returncode}): "
                                f"{self.last_log_line()} (log: {self.paths.registry_log})",
                                code=1)
            if await self.healthy():
                self.state = "healthy"
                return time.monotonic() - started
            now = time.monotonic()
            if now > deadline:
                self.state = "failed"
                raise UserError(f"tarsregistry is not healthy after {START_TIMEOUT:g}s "
                                f"(log: {self.paths.registry_log})", code=1)
            if now - last_report > 2.0:
                last_report = now
                progress(f"registry: waiting for /healthz ({now - started:.0f}s)")
            await asyncio.sleep(0.05)

    async def healthy(self) -> bool:
        c = self.config
        try:
            if c.metrics_port:
                status, _ = await http_get(c.host, c.metrics_port, "/healthz", timeout=2.0)
                return status == 200
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(c.host, c.query_port), 2.0)
            writer.close()
            return True
        except (OSError, asyncio.TimeoutError):
            return False

    def last_log_line(self) -> str:
        try:
            lines = self.paths.registry_log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        for line in reversed(lines):
            if line.startswith("tarsregistry:"):
                return line
        return lines[-1] if lines else "(no output)"

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        proc = self.process
        if proc is None:
            return
        self.state = "stopping"
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        self.state = "stopped"

    def to_dict(self) -> dict[str, object]:
        c = self.config
        return {
            "pid": self.process.pid if self.process else None,
            "state": self.state,
            "host": c.host,
            "query_port": c.query_port,
            "registry_port": c.registry_port,
            "admin_port": c.admin_port,
            "metrics_port": c.metrics_port,
            "locator": c.locator,
            "db": str(self.paths.registry_db),
            "log": str(self.paths.registry_log),
            "started": self.started_at,
        }


class RegistryView:
    """QueryF answers, as clients get them: ``active(servant)`` → set of ``host:port``."""

    def __init__(self, locator: str) -> None:
        self.comm = Communicator(sync_invoke_timeout=2000)
        self.query: ServantProxy = self.comm.proxy(framework().interface("tars.QueryF"),
                                                   locator)

    async def lookup(self, servant: str) -> tuple[set[str], set[str]]:
        """(active, inactive) endpoints of ``servant`` as ``host:port``; raises
        :class:`TarsRpcError` when the registry does not answer."""
        _, active, inactive = await self.query.findObjectById4All(servant)
        return ({f"{e.host}:{e.port}" for e in active}, {f"{e.host}:{e.port}" for e in inactive})

    async def close(self) -> None:
        await self.comm.close()

