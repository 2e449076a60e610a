"""Processes of the supervisor: spawning, reaping (PID 1 duty), output forwarding, killing.

* :class:`Reaper` is the only code that waits for children: on ``SIGCHLD`` it calls
  ``waitpid(-1, WNOHANG)`` until nothing is left, resolves the exit future of a child it
  spawned and drops the status of any other (orphans reparented to it). Outside PID 1 the
  supervisor makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``), so orphans
  of the service are reparented to it there too: it reaps them and can find them to kill.
* :func:`spawn` starts a command (``sh -c``) in its own session and process group.
* :class:`OutputTee` copies a child's stdout or stderr to the supervisor's own (what
  ``kubectl logs`` shows) and to a :class:`LogFile`, as the bytes arrive.
* :func:`kill_tree` signals a process group and every other descendant of the supervisor
  (``/proc``), except the processes it is told to spare.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping

__all__ = [
    "Child",
    "LogFile",
    "OutputTee",
    "Reaper",
    "descendants",
    "kill_tree",
    "set_subreaper",
    "spawn",
]

log = logging.getLogger("k8stars.cli.supervisor")

_PR_SET_CHILD_SUBREAPER = 36


def set_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); True on success."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class Child:
    """A process started by :func:`spawn`; ``exited`` resolves to its exit code
    (``-N`` when killed by signal N), set by the :class:`Reaper`."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes],
                 exited: asyncio.Future[int]) -> None:
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.exited = exited
        self.started = time.monotonic()

    @property
    def running(self) -> bool:
        return not self.exited.done()

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the child's process group; False if none is left."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    async def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        if timeout is not None and timeout <= 0:
            return self.returncode
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), timeout)
        except asyncio.TimeoutError:
            return None


class Reaper:
    """Reaps every child of this process; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._watched: dict[int, asyncio.Future[int]] = {}
        self._exited: dict[int, int] = {}
        self.orphans_reaped = 0

    def install(self) -> None:
        self.loop.add_signal_handler(signal.SIGCHLD, self.reap)
        self.reap()

    def uninstall(self) -> None:
        self.loop.remove_signal_handler(signal.SIGCHLD)

    def watch(self, pid: int) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = self.loop.create_future()
        if pid in self._exited:
            fut.set_result(self._exited.pop(pid))
        else:
            self._watched[pid] = fut
        return fut

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            fut = self._watched.pop(pid, None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(code)
            else:
                self.orphans_reaped += 1
                log.debug("reaped orphan pid %d (status %d)", pid, code)


def spawn(reaper: Reaper, name: str, command: str, *, capture: bool = False,
          env: Mapping[str, str] | None = None) -> Child:
    """Run ``sh -c command`` in a new session (its own process group), stdin from /dev/null;
    stdout/stderr piped when ``capture`` (read them with :class:`OutputTee`), else inherited.
    A command that is a plain path is ``exec``-ed by the shell, so the child *is* the program."""
    pipe = subprocess.PIPE if capture else None
    if _plain_word(command):
        command = f"exec {command}"  # no shell left between us and the program
    popen = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL,
                             stdout=pipe, stderr=pipe, start_new_session=True,
                             env=None if env is None else dict(env))
    exited = reaper.watch(popen.pid)
    exited.add_done_callback(lambda fut: _set_returncode(popen, fut))
    return Child(name, popen, exited)


_SHELL_SPECIAL = set(" \t\n;&|<>()$`\\\"'*?[]#~=%{}!")


def _plain_word(command: str) -> bool:
    """True for a command that is a single word without shell syntax (a path)."""
    return bool(command) and not any(c in _SHELL_SPECIAL for c in command)


def _set_returncode(popen: subprocess.Popen[bytes], fut: asyncio.Future[int]) -> None:
    # The Reaper waited for it: tell Popen, so that it never waits for the pid itself.
    if not fut.cancelled():
        popen.returncode = fut.result()


class LogFile:
    """An append-only file, rotated to ``<path>.1`` when it passes ``max_bytes``."""

    def __init__(self, path: str, max_bytes: int = 10 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self) -> None:
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            log.error("cannot open %s: %s; the service's output goes to stdout only",
                      self.path, exc.strerror)
            self._fd = -1

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            return
        try:
            _write_all(self._fd, data)
        except OSError:
            return
        self._size += len(data)
        if self._size >= self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        self.close()
        with contextlib.suppress(OSError):
            os.replace(self.path, self.path + ".1")
        self._open()

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes, patience: float = 1.0) -> None:
    """Write all of ``data``; a non-blocking target that stays full for ``patience`` seconds
    loses the rest (the service must never block on the supervisor's stdout)."""
    view = memoryview(data)
    deadline = 0.0
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            now = time.monotonic()
            deadline = deadline or now + patience
            if now >= deadline:
                return
            time.sleep(0.01)
            continue
        view = view[written:]


class OutputTee:
    """Copies a pipe to ``target_fd`` (1 or 2) and to ``log_file`` until EOF."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe_fd: int, target_fd: int,
                 log_file: LogFile | None) -> None:
        self.loop = loop
        self.fd = pipe_fd
        self.target_fd = target_fd
        self.log_file = log_file
        self.closed: asyncio.Future[None] = loop.create_future()
        os.set_blocking(pipe_fd, False)
        loop.add_reader(pipe_fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        with contextlib.suppress(OSError):
            _write_all(self.target_fd, data)
        if self.log_file is not None:
            self.log_file.write(data)

    def close(self) -> None:
        if self.fd < 0:
            return
        self.loop.remove_reader(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        if not self.closed.done():
            self.closed.set_result(None)


def descendants(root: int | None = None) -> list[int]:
    """The pids of every descendant of ``root`` (default: this process), from ``/proc``."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def kill_tree(pgid: int | None, sig: int, spare: Iterable[int] = ()) -> int:
    """Send ``sig`` to process group ``pgid`` and to every descendant of this process not in
    ``spare`` (nor in a spared process's group); the number of processes signalled."""
    count = 0
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
            count += 1
    spared = set(spare)
    spared_groups = set()
    for pid in spared:
        with contextlib.suppress(OSError):
            spared_groups.add(os.getpgid(pid))
    for pid in descendants():
        if pid in spared:
            continue
        try:
            if os.getpgid(pid) in spared_groups:
                continue
            os.kill(pid, sig)
            count += 1
        except (ProcessLookupError, PermissionError):
            continue
    return count
