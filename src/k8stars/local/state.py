"""The state directory (default ``.k8stars/`` in the current directory) and the processes it owns.

Layout::

    .k8stars/
      runner.lock     flock-ed by the running runner for its whole life (a second ``up`` is refused)
      runner.pid      the runner's pid
      state.json      the runner's view: registry, services, pods (rewritten on every change)
      control.sock    the runner's control socket (scale, restart, down)
      runner.log      the detached runner's log
      registry/       tarsregistry.db (SQLite) and registry.log
      pods/<pod>/     each pod's TARS_PATH (bin/ conf/ log/ data/) and container.log

Every process the runner starts carries ``K8STARS_RUNNER=<state dir>`` in its environment (and
pods ``POD_UID``), so that :func:`find_processes` finds whatever is left of a runner that was
killed, the way a container runtime finds a container's processes through its cgroup.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from .spec import UserError

__all__ = [
    "MARKER_VAR",
    "RunnerLock",
    "StatePaths",
    "check_ports_free",
    "find_processes",
    "kill_processes",
    "port_in_use",
    "read_state",
    "write_json_atomic",
]

#: Environment variable marking every process started by a runner (value: the state dir).
MARKER_VAR = "K8STARS_RUNNER"
#: Unix socket paths longer than this go to the temporary directory instead.
_MAX_SOCKET_PATH = 100


class StatePaths:
    """The files of one state directory."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir).expanduser().resolve()
        self.lock = self.root / "runner.lock"
        self.pid = self.root / "runner.pid"
        self.state = self.root / "state.json"
        self.log = self.root / "runner.log"
        self.registry = self.root / "registry"
        self.registry_db = self.registry / "tarsregistry.db"
        self.registry_log = self.registry / "registry.log"
        self.pods = self.root / "pods"
        sock = self.root / "control.sock"
        if len(str(sock)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(self.root).encode(), usedforsecurity=False).hexdigest()
            sock = Path(tempfile.gettempdir()) / f"k8stars-{digest[:16]}.sock"
        self.control = sock

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# the local runner's state: never commit it\n*\n")

    def pod_dir(self, name: str) -> Path:
        return self.pods / name

    def shown(self) -> str:
        try:
            rel = os.path.relpath(self.root)
        except ValueError:
            return str(self.root)
        return str(self.root) if rel.startswith("..") else rel


class RunnerLock:
    """``runner.lock``, held (``flock``) by the running runner."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`UserError` naming the runner that holds it."""
        self.paths.create()
        fh = open(self.paths.lock, "a+", encoding="utf-8")  # noqa: SIM115 (held for life)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(already_running(self.paths), code=1) from None
            raise
        os.set_inheritable(fh.fileno(), False)
        self._fh = fh
        self.paths.pid.write_text(f"{os.getpid()}\n")

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self.paths.pid.unlink()
            self._fh.close()
            self._fh = None

    @staticmethod
    def held(paths: StatePaths) -> bool:
        """Whether a runner holds the lock of ``paths`` now."""
        try:
            fh = open(paths.lock, encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            return False
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return False


def runner_pid(paths: StatePaths) -> int | None:
    try:
        return int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def already_running(paths: StatePaths) -> str:
    pid = runner_pid(paths)
    who = f" (pid {pid})" if pid else ""
    return (f"k8stars is already running{who} with state dir {paths.shown()}: "
            "see `k8stars status`, or stop it with `k8stars down`")


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_state(paths: StatePaths) -> dict[str, Any] | None:
    try:
        with open(paths.state, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- processes -------------------------------------------------------------------------------


def _environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def find_processes(state_dir: str, pod_uid: str | None = None) -> list[int]:
    """Pids of live processes started by the runner of ``state_dir`` (only those of the pod
    ``pod_uid`` when given). Linux ``/proc``; elsewhere an empty list."""
    marker = f"{MARKER_VAR}={state_dir}".encode()
    uid_marker = f"POD_UID={pod_uid}".encode() if pod_uid else None
    me = os.getpid()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        env = _environ(pid).split(b"\0")
        if marker in env and (uid_marker is None or uid_marker in env) and not _zombie(pid):
            found.append(pid)
    return found


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return True
    return stat.rpartition(b")")[2].split()[:1] == [b"Z"]


def kill_processes(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(state_dir: str, timeout: float, pod_uid: str | None = None) -> list[int]:
    """Wait until no marked process is left; returns the ones still there."""
    deadline = time.monotonic() + timeout
    while True:
        left = find_processes(state_dir, pod_uid)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


# -- ports -----------------------------------------------------------------------------------


def port_in_use(host: str, port: int) -> bool:
    """Whether a TCP listener could not be bound on ``host:port`` (SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports_free(host: str, ports: list[tuple[str, int]]) -> None:
    """:class:`UserError` for the first port (``(option, port)``) that is in use."""
    for option, port in ports:
        if port_in_use(host, port):
            raise UserError(f"port {port} on {host} is in use (the registry's {option}): stop "
                            f"what listens there or choose another with k8stars up {option} N",
                            code=1)
