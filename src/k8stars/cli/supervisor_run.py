"""The supervisor's event loop (behaviour: :mod:`k8stars.cli.supervisor`).

One :class:`Supervisor` per process, three long-lived tasks: the registry loop (register,
heartbeats), the check loop (checks, state file, restarts) and the service watcher; signal
handlers set events. The module constants are the original's fixed timings; tests lower them
in the supervisor process they start.

Memory: genconf runs in a forked child (:func:`generate_in_child`), which hands back the
resolved :class:`~k8stars.cli.meta.ServerInfo` as plain data; the long-lived process keeps a
light copy (:class:`Info`) and never imports genconf, PyYAML and their dependencies (about
3 MB of the ~25 MB budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .prestop import PrestopFlow, run_flow, setup_logging
from .registry_client import (
    NOTIFY_OBJ,
    Backoff,
    InfoLike,
    RegistryClient,
    admin_shutdown,
    describe,
    sleep_or,
)
from .settings import CliError, Settings
from .supervisor_check import (
    ACTIVATING,
    DEACTIVATING,
    INACTIVE,
    PRESTOP_MARKER,
    RestartLimiter,
    ServiceChecker,
    next_state,
    prestop_claimed,
    stop_requested,
    targets_of,
    touch_state,
    write_state,
)
from .supervisor_proc import Child, LogFile, OutputTee, Reaper, kill_tree, set_subreaper, spawn

__all__ = ["Info", "Supervisor", "generate_in_child", "run"]

log = logging.getLogger("k8stars.cli.supervisor")

#: At most one restart per this many seconds (the original's 5-minute window).
RESTART_WINDOW = 300.0
#: After AdminObj.shutdown, how long the service may take to exit or close its endpoints.
SHUTDOWN_WAIT = 60.0
#: After SIGTERM to the service's process group, how long before SIGKILL.
TERM_WAIT = 5.0
#: Time limit of AdminObj.shutdown.
ADMIN_TIMEOUT = 1.0
#: Time limit of TARS_STOP_PATH before a restart.
STOP_SCRIPT_TIMEOUT = 60.0
#: Check cadence while activating (bounded by TARS_CHECK_INTERVAL).
ACTIVATING_PROBE = 1.0
#: Service output file size before rotation.
OUTPUT_MAX_BYTES = 10 * 1024 * 1024

_EXPECTED = (asyncio.CancelledError,)


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass(frozen=True, slots=True)
class Adapter:
    """An adapter of :class:`Info` (the fields of :class:`~k8stars.cli.meta.AdapterInfo`)."""

    servant: str
    endpoint: str
    protocol: str
    maxconns: int
    threads: int
    queuecap: int
    queuetimeout: int


@dataclass(frozen=True, slots=True)
class Info:
    """The part of :class:`~k8stars.cli.meta.ServerInfo` the supervisor uses."""

    application: str
    server: str
    set_id: str
    locator: str
    local: str
    node_name: str
    pod_name: str
    pod_uid: str
    adapters: tuple[Adapter, ...]

    @property
    def full_name(self) -> str:
        return f"{self.application}.{self.server}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Info:
        """From ``ServerInfo.to_dict()``."""
        adapters = tuple(Adapter(**{k: a[k] for k in Adapter.__slots__})
                         for a in data["adapters"])
        values = {k: data[k] for k in cls.__slots__ if k != "adapters"}
        return cls(adapters=adapters, **values)


def generate_in_child(settings: Settings) -> tuple[Info, list[str]]:
    """Run genconf in a forked child; the resolved info and genconf's warnings.

    A user mistake raises :class:`CliError` with genconf's own message and exit code.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        try:
            from .genconf import generate

            result = generate(settings)
            payload: tuple[Any, ...] = ("ok", result.info.to_dict(), list(result.warnings))
        except CliError as exc:
            payload = ("error", exc.message, exc.exit_code)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            payload = ("error", f"{where}{exc.strerror or exc}", 1)
        except BaseException as exc:
            payload = ("internal", f"{type(exc).__name__}: {exc}", 70)
        with os.fdopen(write_fd, "wb") as fh:
            fh.write(marshal.dumps(payload))
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise CliError(f"genconf failed ({_status(os.waitstatus_to_exitcode(status))})", 1)
    kind, value, extra = marshal.loads(data)
    if kind == "error":
        raise CliError(value, extra)
    if kind == "internal":
        raise RuntimeError(f"genconf: {value}")
    return Info.from_dict(value), list(extra)


class Supervisor:
    """Supervises the service described by ``info`` (written by genconf)."""

    def __init__(self, settings: Settings, info: InfoLike, client: RegistryClient) -> None:
        self.settings = settings
        self.info = info
        self.client = client
        self.tars_path = settings.tars_path
        self.check_interval = settings.check_interval
        self.activating_timeout = settings.activating_timeout
        self.report_interval = settings.report_interval
        self.check_script = settings.before_check_script
        self.check_script_timeout = settings.check_script_timeout
        self.disable_flow = settings.disable_flow
        self.prestop_wait = settings.prestop_waittime
        self.start_path = settings.start_path
        self.stop_path = settings.stop_path
        self.version = settings.server_version
        self.metrics_port = settings.metrics_port
        targets, warnings = targets_of(info)
        for warning in warnings:
            log.warning("%s", warning)
        self.checker = ServiceChecker(targets, settings.check_retry_timeout)
        self.limiter = RestartLimiter(RESTART_WINDOW)
        self.output = LogFile(os.path.join(self.tars_path, "log", f"{info.full_name}.out"),
                              OUTPUT_MAX_BYTES)
        self.state = ACTIVATING
        self.ever_active = False
        self.service: Child | None = None
        self.down = False  # the service exited and was not restarted yet
        self.restarting = False
        self.stopping = False
        self.deactivating = False
        self._held_back = ""  # why a restart is not done now (logged once)
        self._alarmed = False
        self._helpers: set[Child] = set()
        self._tees: list[OutputTee] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._registry_task: asyncio.Task[None] | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        self._reported = ""
        self._last_report = 0.0
        self._report_wall = 0.0
        self._in_flight = False
        self._notify_missing_logged = False
        self._signals = 0
        self._started = time.monotonic()
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._reaper: Reaper | None = None

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._reaper = Reaper(loop)
        self._reaper.install()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._started = time.monotonic()
        self._registry_task = self._spawn(self._registry_loop())
        await self._before_check()
        if not self._stop.is_set():
            self._start_service()
        self._spawn(self._check_loop())
        await self._stop.wait()
        await self._shutdown()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()
        for tee in self._tees:
            tee.close()
        self.output.close()
        log.info("supervisor stopped")
        return 0

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("internal error in a supervisor task: %r", exc, exc_info=exc)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("received %s: stopping", sig.name)
            self._stop.set()
        else:
            log.info("received %s again: cutting the remaining waits short", sig.name)
            self._hurry.set()

    # -- registry ---------------------------------------------------------------------------

    async def _registry_loop(self) -> None:
        """Register, then heartbeat; after any failure register again (see the docstring)."""
        interval = self.report_interval
        backoff = self._backoff()
        registered = False
        failed_with = ""
        while not (self.deactivating or self.stopping):
            self._state_changed.clear()
            state = self.state
            now = time.monotonic()
            due = now - self._last_report >= interval or state != self._reported
            if registered and not due:
                await sleep_or(self._state_changed, self._last_report + interval - now)
                continue
            if prestop_claimed(self.tars_path):
                return  # the hook has started: the check loop takes over (no more reports)
            self._in_flight = True
            try:
                if registered:
                    await self.client.keep_alive(state)
                else:
                    await self.client.on_startup(state=state, disable_flow=self.disable_flow,
                                                 version=self.version)
            except Exception as exc:
                reason = describe(exc)
                what = "keepAlive" if registered else "onStartup"
                if reason != failed_with:
                    log.warning("%s failed: registry %s; retrying with backoff (the pod's "
                                "readiness does not depend on it)", what, reason)
                failed_with = reason
                registered = False
                await asyncio.sleep(backoff.next())
                continue
            finally:
                self._in_flight = False
            if not registered:
                log.info("registered %s on %s as %s (%d adapter(s)%s)", self.info.full_name,
                         self.info.node_name, state, len(self.info.adapters),
                         ", no traffic: TARS_DISABLE_FLOW" if self.disable_flow else "")
                self._register_metrics_soon()
            elif state != self._reported:
                log.info("reported state %s", state)
            if failed_with:
                log.info("registry reachable again")
            failed_with = ""
            registered = True
            backoff.reset()
            self._reported = state
            self._last_report = time.monotonic()
            self._report_wall = time.time()

    def _backoff(self) -> Backoff:
        """Retry delays of registry calls: 1 s doubling to min(30 s, TARS_REPORT_INTERVAL)."""
        interval = self.report_interval
        return Backoff(min(1.0, interval), max(min(1.0, interval), min(30.0, interval)))

    def _register_metrics_soon(self) -> None:
        """After each onStartup: registerMetrics (TARS_METRICS_PORT) in the background."""
        if self.metrics_port is None:
            return
        if self._metrics_task is not None:
            self._metrics_task.cancel()
        self._metrics_task = self._spawn(self._register_metrics(self.metrics_port))

    async def _register_metrics(self, port: int) -> None:
        """registerMetrics, retried with backoff until it succeeds; failures are only logged
        (metrics never hold back the service or its registration)."""
        backoff = self._backoff()
        failed_with = ""
        while True:
            try:
                await self.client.register_metrics(port)
            except Exception as exc:
                reason = describe(exc)
                if reason != failed_with:
                    log.warning("registerMetrics failed: registry %s; retrying with backoff",
                                reason)
                failed_with = reason
                await asyncio.sleep(backoff.next())
                continue
            log.info("registered metrics port %d: the registry's /sd lists %s:%d", port,
                     self.info.node_name, port)
            return

    async def _stop_registry_calls(self) -> None:
        """Cancel the registry loop and a pending registerMetrics."""
        for task in (self._registry_task, self._metrics_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _report(self, message: str) -> None:
        """Report an event to tars.tarsnotify in the background (always logged here)."""
        log.info("event: %s", message)
        self._spawn(self._send_report(message))

    async def _send_report(self, message: str) -> None:
        try:
            await self.client.report(message)
        except Exception as exc:
            if not self._notify_missing_logged:
                log.info("%s: %s; events are logged here only", NOTIFY_OBJ, describe(exc))
                self._notify_missing_logged = True

    # -- the service ------------------------------------------------------------------------

    def _start_service(self) -> None:
        assert self._reaper is not None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.output.write(f"--- {stamp} tarscli supervisor: starting {self.start_path}\n"
                          .encode())
        try:
            child = spawn(self._reaper, "service", self.start_path, capture=True)
        except OSError as exc:
            log.error("cannot start %s: %s", self.start_path, exc.strerror or exc)
            self.down = True
            return
        loop = asyncio.get_running_loop()
        self._tees = [t for t in self._tees if t.fd >= 0]
        assert child.popen.stdout is not None and child.popen.stderr is not None
        for pipe, target in ((child.popen.stdout, 1), (child.popen.stderr, 2)):
            fd = os.dup(pipe.fileno())
            pipe.close()
            self._tees.append(OutputTee(loop, fd, target, self.output))
        self.service = child
        self.down = False
        self._held_back = ""
        self._alarmed = False
        log.info("started %s (pid %d)", self.start_path, child.pid)
        self._spawn(self._watch(child))
        if self.version:
            self._report(f"server version: {self.version}")

    async def _watch(self, child: Child) -> None:
        code = await child.exited
        if child is not self.service:
            return
        if self.stopping:
            log.info("service exited (%s)", _status(code))
            return
        log.warning("service exited (%s)", _status(code))
        self.down = True
        self._report("[warn] server down")
        if self.deactivating:
            log.info("deactivating: the service is not restarted")
            return
        self._set_state(self._next(healthy=False), ["service not running"])
        await self._maybe_restart()

    async def _maybe_restart(self) -> None:
        if not self.down or self.stopping or self.deactivating or self.restarting:
            return
        if stop_requested(self.tars_path):
            self._hold_back("stop", "data/stop exists: the service is not restarted (remove "
                            "the file to restart it)")
            return
        now = time.monotonic()
        if not self.limiter.allowed(now):
            wait = self.limiter.next_allowed() - now
            self._hold_back("window", f"restart postponed by {wait:.0f}s: at most one "
                            f"restart per {self.limiter.window:g}s")
            return
        self.limiter.record(now)
        self.restarting = True
        try:
            await self._clear_old_service()
            if not (self.stopping or self.deactivating):
                log.info("restarting the service")
                self._start_service()
        finally:
            self.restarting = False

    def _hold_back(self, key: str, why: str) -> None:
        if key != self._held_back:
            log.warning("%s", why)
        self._held_back = key
        if not self._alarmed:
            self._alarmed = True
            self._report("[alarm] down, server is inactive")

    async def _clear_old_service(self) -> None:
        """TARS_STOP_PATH, then kill what is left of the old service."""
        if self.stop_path:
            code = await self._run_helper("TARS_STOP_PATH", self.stop_path, STOP_SCRIPT_TIMEOUT)
            log.info("TARS_STOP_PATH %s: %s", self.stop_path,
                     "timed out" if code is None else _status(code))
        await self._kill_leftovers(signal.SIGKILL, 5.0)

    async def _kill_leftovers(self, sig: int, patience: float) -> None:
        old = self.service
        spare = [h.pid for h in self._helpers if h.running]
        count = kill_tree(old.pid if old is not None else None, sig, spare)
        if count and old is not None:
            log.info("sent %s to what was left of the service", signal.Signals(sig).name)
            await old.wait(patience)
            # orphans are reaped as they die; give them the same patience
            loop = asyncio.get_running_loop()
            deadline = loop.time() + patience
            while loop.time() < deadline and kill_tree(None, 0, spare):
                await asyncio.sleep(0.05)

    async def _run_helper(self, name: str, command: str, timeout: float) -> int | None:
        """Run a helper command (output inherited); its exit code, None after a timeout."""
        assert self._reaper is not None
        try:
            child = spawn(self._reaper, name, command)
        except OSError as exc:
            log.warning("cannot run %s %r: %s", name, command, exc.strerror or exc)
            return -1
        self._helpers.add(child)
        try:
            code = await child.wait(timeout)
            if code is None:
                log.warning("%s did not finish within %gs: killed", name, timeout)
                child.signal_group(signal.SIGKILL)
                await child.wait(1.0)
            return code
        finally:
            self._helpers.discard(child)

    async def _before_check(self) -> None:
        if self.check_script:
            code = await self._run_helper("TARS_BEFORE_CHECK_SCRIPT", self.check_script,
                                          self.check_script_timeout)
            if code:
                log.warning("TARS_BEFORE_CHECK_SCRIPT: %s", _status(code))

    # -- checks and state -------------------------------------------------------------------

    async def _check_loop(self) -> None:
        while True:
            interval = self.check_interval
            if self.state == ACTIVATING and not self.deactivating:
                interval = min(interval, ACTIVATING_PROBE)
            await asyncio.sleep(interval)
            await self._check_once()

    async def _check_once(self) -> None:
        if not self.deactivating and prestop_claimed(self.tars_path):
            await self._enter_deactivating()
        if self.deactivating:
            touch_state(self.tars_path, DEACTIVATING)
            return
        await self._before_check()
        service = self.service
        if self.down or self.restarting or service is None or not service.running:
            failures = ["service not running"]
        else:
            failures = await self.checker.check()
        if self.deactivating or self.stopping:
            return
        self._set_state(self._next(healthy=not failures), failures)
        await self._maybe_restart()

    def _next(self, healthy: bool) -> str:
        return next_state(self.state, healthy, ever_active=self.ever_active,
                          since_start=time.monotonic() - self._started,
                          activating_timeout=self.activating_timeout)

    def _set_state(self, state: str, failures: list[str]) -> None:
        if state == "active":
            self.ever_active = True
        if state == self.state:
            touch_state(self.tars_path, state)
            if failures and state == ACTIVATING:
                log.debug("still activating: %s", "; ".join(failures))
            return
        detail = f": {'; '.join(failures)}" if failures and state != ACTIVATING else ""
        if state == INACTIVE and self.state == ACTIVATING and not self.ever_active:
            detail += f" (not active within TARS_ACTIVATING_TIMEOUT {self.activating_timeout:g}s)"
        log.info("state %s -> %s%s", self.state, state, detail)
        write_state(self.tars_path, state)
        self.state = state
        self._state_changed.set()

    async def _enter_deactivating(self) -> None:
        """The preStop hook ran: stop reporting (see step 6 of the docstring)."""
        self.deactivating = True
        marker = os.path.join(self.tars_path, "data", PRESTOP_MARKER)
        log.info("data/prestop exists: deactivating, no more reports or restarts")
        self.state = DEACTIVATING
        crossed = self._in_flight
        await self._stop_registry_calls()
        try:
            marked = os.stat(marker).st_mtime
        except OSError:
            marked = time.time()
        # a heartbeat answered before the marker was made reached the registry before the
        # hook's keepAlive(deactivating); one answered later, or in flight, may have crossed it
        if crossed or self._report_wall >= marked:
            log.info("a heartbeat may have crossed the hook's: repeating keepAlive(deactivating)")
            with contextlib.suppress(Exception):
                await self.client.keep_alive(DEACTIVATING)

    # -- stopping ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self.stopping = True
        self.deactivating = True
        await self._stop_registry_calls()
        flow = PrestopFlow(self.tars_path, self.info, self.client, self.prestop_wait,
                           who="tarscli supervisor", skip_wait=self._hurry)
        await run_flow(flow)
        self.state = DEACTIVATING
        await self._stop_service()
        await self._kill_leftovers(signal.SIGTERM, 0 if self._hurry.is_set() else 2.0)
        await self._kill_leftovers(signal.SIGKILL, 1.0)
        for tee in self._tees:  # the service's last words
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(tee.closed), 0.5)

    async def _stop_service(self) -> None:
        service = self.service
        if service is None or not service.running:
            return
        if self.info.local:
            try:
                await admin_shutdown(self.info.local, ADMIN_TIMEOUT)
                log.info("AdminObj.shutdown sent")
            except Exception as exc:
                log.warning("AdminObj.shutdown failed: %s", describe(exc))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_WAIT
        closed_at: float | None = None
        while service.running and not self._hurry.is_set():
            left = deadline - loop.time()
            if left <= 0:
                log.warning("the service did not stop within %gs", SHUTDOWN_WAIT)
                break
            if closed_at is not None and loop.time() - closed_at >= TERM_WAIT:
                break
            if await service.wait(min(1.0, left)) is not None:
                break
            if closed_at is None and self.checker.targets:
                failures = await self.checker.check(retry_timeout=0)
                if len(failures) == len(self.checker.targets):
                    log.info("every endpoint of the service is closed")
                    closed_at = loop.time()
        if service.running:
            log.info("sending SIGTERM to the service's process group")
            service.signal_group(signal.SIGTERM)
            if await service.wait(0 if self._hurry.is_set() else TERM_WAIT) is None:
                log.warning("the service ignored SIGTERM: sending SIGKILL")
                service.signal_group(signal.SIGKILL)
                await service.wait(2.0)
        code = service.returncode
        if code is not None:
            log.info("service stopped (%s)", _status(code))


class _RotatingFile(logging.FileHandler):
    """``logging.FileHandler`` moved to ``<file>.1`` at ``max_bytes`` (logging.handlers
    would cost 0.6 MB of imports)."""

    def __init__(self, path: str, max_bytes: int) -> None:
        super().__init__(path, encoding="utf-8")
        self.max_bytes = max_bytes

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        stream = self.stream
        if stream is not None and stream.tell() >= self.max_bytes:
            self.close()
            with contextlib.suppress(OSError):
                os.replace(self.baseFilename, self.baseFilename + ".1")
            self.stream = self._open()


def _setup_logging(settings: Settings) -> None:
    setup_logging("supervisor", settings.debug)
    path = settings.path("log", "supervisor.log")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handler = _RotatingFile(path, 5 * 1024 * 1024)
    except OSError as exc:
        log.warning("cannot write %s: %s", path, exc.strerror)
        return
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)


def _check_start_path(path: str) -> None:
    if path and not any(c.isspace() for c in path):
        if not os.path.exists(path):
            raise CliError(f"TARS_START_PATH={path!r}: no such file (the image must provide "
                           "it, or set TARS_START_PATH)")
        if not os.access(path, os.X_OK):
            raise CliError(f"TARS_START_PATH={path!r}: not executable (chmod +x)")


def prepare(settings: Settings) -> tuple[Info, RegistryClient]:
    """Everything before the loop: genconf, the first state, checks of the configuration."""
    settings.check("supervisor")
    info, warnings = generate_in_child(settings)
    for warning in warnings:
        sys.stderr.write(f"tarscli supervisor: warning: {warning}\n")
    _check_start_path(settings.start_path)
    client = RegistryClient(info, locator=settings.locator)
    tars_path = settings.tars_path
    write_state(tars_path, ACTIVATING)  # before any registry call (K8STARS #17)
    marker = os.path.join(tars_path, "data", PRESTOP_MARKER)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)
        sys.stderr.write(f"tarscli supervisor: removed {marker} of an earlier run\n")
    return info, client


def run(environ: dict[str, str] | None = None) -> int:
    """Run the supervisor until it is stopped by a signal; the exit status."""
    settings = Settings(environ)
    info, client = prepare(settings)
    _setup_logging(settings)
    if os.getpid() != 1 and not set_subreaper():
        log.info("not PID 1 and not a child subreaper: orphans of the service are not reaped "
                 "here")
    if settings.check_interval > settings.report_interval:
        log.warning("TARS_CHECK_INTERVAL (%gs) is longer than TARS_REPORT_INTERVAL (%gs): "
                    "hzcheck may find data/check_status stale", settings.check_interval,
                    settings.report_interval)
    log.info("supervising %s (%s) in %s, node %s%s", info.full_name, settings.start_path,
             settings.tars_path, info.node_name,
             f", pod {info.pod_name}" if info.pod_name else "")
    supervisor = Supervisor(settings, info, client)
    return asyncio.run(supervisor.run())
