"""A simulated pod: what the kubelet does for one replica, with processes instead of containers.

* **create**: a fresh ``TARS_PATH`` (``pods/<pod>/``) with the service directory copied into
  ``bin/`` (the image), the pod's environment (``POD_IP`` 127.0.0.x, ``POD_NAME``, ``POD_UID``,
  ``TARS_LOCATOR`` ... as the downward API and the manifest set them), and the container's main
  process ``tarscli supervisor`` in its own session; its output goes to ``container.log``
  (``kubectl logs``). With ``netns``, the pod's processes (main, probe, hook) run in that
  network namespace, as a pod's containers share the pod's network.
* **readiness probe**: ``tarscli hzcheck`` exec-ed with the pod's environment every period
  (every half period until the pod is first ready); ``failure_threshold`` failures in a row
  make a ready pod not ready.
* **restartPolicy Always**: a main process that exits on its own is started again after a
  back-off (1 s doubling to 30 s), in the same ``TARS_PATH``.
* **delete**: the preStop hook (``tarscli prestop`` with the pod's environment), then SIGTERM to
  the main process, then, when the grace period (counted from the start of the delete) is
  over, SIGKILL to every process of the pod (found by ``POD_UID``, as a runtime uses the
  container's cgroup).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .spec import RunnerConfig, ServiceSpec, copy_service
from .state import MARKER_VAR, find_processes, kill_processes

__all__ = ["Container", "Pod", "PodState", "tool_command"]

log = logging.getLogger("k8stars.local.pod")

#: Back-off of a crashing container: first delay, cap (seconds).
CRASH_BACKOFF = (1.0, 30.0)


class PodState:
    STARTING = "starting"
    READY = "ready"
    NOT_READY = "not ready"
    CRASHED = "crashed"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


def tool_command(name: str, module: str) -> list[str]:
    """The command line of a console script of this installation (``tarscli``,
    ``tarsregistry``): the script beside this Python, else ``python -m module``."""
    script = Path(sys.executable).parent / name
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", module]


@dataclass
class Container:
    """What a pod manifest says about the container: its command (the image's default here),
    readiness probe and preStop hook commands, env literals, env from the downward API
    (variable → ``fieldPath``), and the pod's namespace and labels those may refer to. The
    defaults are the wiring of every tarscli pod."""

    command: list[str] = field(default_factory=lambda: ["tarscli", "supervisor"])
    readiness: list[str] = field(default_factory=lambda: ["tarscli", "hzcheck"])
    prestop: list[str] = field(default_factory=lambda: ["tarscli", "prestop"])
    env: dict[str, str] = field(default_factory=dict)
    field_refs: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Endpoint:
    servant: str
    protocol: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class Pod:
    """One replica of a service; ``on_change`` is called after every visible change."""

    def __init__(self, spec: ServiceSpec, name: str, ip: str, slot: int, config: RunnerConfig,
                 directory: Path, state_dir: str, on_change: Callable[[Pod], None], *,
                 netns: str | None = None, container: Container | None = None) -> None:
        self.spec = spec
        self.name = name
        self.ip = ip
        self.slot = slot
        self.uid = str(uuid.uuid4())
        self.config = config
        self.dir = directory
        self.state_dir = state_dir
        self.on_change = on_change
        self.netns = netns
        self.container = container or Container()
        self.state = PodState.STARTING
        self.detail = ""
        self.tars_state = ""
        self.registry_state = ""
        self.restarts = 0
        self.created = time.time()
        self.ready_at: float | None = None
        self.endpoints: list[Endpoint] = []
        self.process: asyncio.subprocess.Process | None = None
        self.version = ""
        self.ever_ready = asyncio.Event()
        self.gone = asyncio.Event()
        self._terminating = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_exit: int | None = None
        self._hook: asyncio.subprocess.Process | None = None
        self._hurry = False

    # -- environment ----------------------------------------------------------------------

    @property
    def tars_path(self) -> str:
        return str(self.dir)

    def env(self) -> dict[str, str]:
        """The container's environment: the runner's settings for the pod, then the
        container's own ``env`` (literals, and values from the downward API)."""
        c = self.config
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TARS_", "POD_", "K8STARS_")) and k != "SERVER_VERSION"}
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", os.defpath)
        low = c.port_base + self.slot * c.ports_per_pod
        env.update({
            "TARS_PATH": self.tars_path,
            "POD_IP": self.ip,
            "POD_NAME": self.name,
            "POD_UID": self.uid,
            "TARS_LOCATOR": c.locator,
            "TARS_CHECK_INTERVAL": c.check_interval,
            "TARS_REPORT_INTERVAL": c.report_interval,
            "TARS_PRESTOP_WAITTIME": c.prestop_wait,
            "TARS_EP_UPTIME": c.ep_uptime,
            "TARS_RAND_PORT_MIN": str(low),
            "TARS_RAND_PORT_MAX": str(low + c.ports_per_pod - 1),
            "SERVER_VERSION": self.version,
            "PYTHON": sys.executable,
            "PYTHONUNBUFFERED": "1",
            "NODE_NO_WARNINGS": "1",
            MARKER_VAR: self.state_dir,
        })
        env.update(self.container.env)
        env.update({name: self.field_value(path)
                    for name, path in self.container.field_refs.items()})
        return env

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as run in the pod: ``tarscli`` is this installation's, and it runs inside
        the pod's network namespace, if it has one."""
        if argv and argv[0] == "tarscli":
            argv = [*tool_command("tarscli", "k8stars.cli.main"), *argv[1:]]
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def field_value(self, path: str) -> str:
        """The downward API: the value of ``fieldPath`` for this pod."""
        values = {"status.podIP": self.ip, "metadata.name": self.name,
                  "metadata.uid": self.uid, "metadata.namespace": self.container.namespace}
        if path in values:
            return values[path]
        if path.startswith("metadata.labels['") and path.endswith("']"):
            return self.container.labels.get(path[len("metadata.labels['"):-2], "")
        raise ValueError(f"pod {self.name}: unsupported downward API fieldPath {path!r}")

    # -- lifecycle --------------------------------------------------------------------------

    def prepare(self, version: str) -> None:
        """Lay out the pod's TARS_PATH: the service directory as ``bin/`` (the image). Run
        again before a restarted container: a container starts from its image, so ``bin/``,
        ``conf/`` and ``data/`` start afresh (``log/`` and ``container.log`` are kept, like
        ``kubectl logs --previous``)."""
        self.version = version
        self.dir.mkdir(parents=True, exist_ok=True)
        for sub in ("bin", "conf", "data"):
            if (self.dir / sub).exists():
                shutil.rmtree(self.dir / sub)
        (self.dir / "data").mkdir()
        copy_service(self.spec.dir, self.dir / "bin")

    async def start(self) -> None:
        await self._spawn()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch()), loop.create_task(self._probe_loop())]

    async def _spawn(self) -> None:
        logfile = open(self.dir / "container.log", "ab")  # noqa: SIM115 (handed to the child)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(self.container.command),
                env=self.env(), cwd=self.tars_path, stdin=asyncio.subprocess.DEVNULL,
                stdout=logfile, stderr=logfile, start_new_session=True)
        finally:
            logfile.close()
        self.detail = f"pid {self.process.pid}"
        self._changed()

    async def _watch(self) -> None:
        """restartPolicy Always: start the main process again when it exits on its own."""
        backoff = CRASH_BACKOFF[0]
        while True:
            proc = self.process
            assert proc is not None
            code = await proc.wait()
            if self._terminating or self._hurry:
                return
            self._last_exit = code
            # a container's processes die with it: nothing of the old run may stay behind
            left = await asyncio.to_thread(find_processes, self.state_dir, self.uid)
            kill_processes(left)
            self.state = PodState.CRASHED
            self.detail = f"main process exited ({_status(code)}); restart in {backoff:g}s"
            self.restarts += 1
            self._changed()
            log.warning("pod %s: %s", self.name, self.detail)
            await asyncio.sleep(backoff)
            if self._terminating or self._hurry:
                return
            backoff = min(backoff * 2, CRASH_BACKOFF[1])
            self.state = PodState.STARTING if self.ready_at is None else PodState.NOT_READY
            self.tars_state = ""
            self.endpoints = []
            await asyncio.to_thread(self.prepare, self.version)
            await self._spawn()

    async def _probe_loop(self) -> None:
        """The readiness probe; it keeps running while the pod terminates (as the kubelet's
        does), without changing the pod's state then."""
        c = self.config
        failures = 0
        while not self.gone.is_set():
            ok, message = await self.probe()
            if self._terminating:
                self._read_status()
                await asyncio.sleep(c.probe_period)
                continue
            if ok:
                failures = 0
                if self.state not in (PodState.READY, PodState.CRASHED):
                    self.state = PodState.READY
                    self.detail = ""
                    self._set_ready(True)
                    self._changed()
            else:
                failures += 1
                if message != self.detail and self.state != PodState.CRASHED:
                    self.detail = message
                    self._changed()
                if self.state == PodState.READY and failures >= c.failure_threshold:
                    self.state = PodState.NOT_READY
                    self._changed()
            self._read_status()
            period = c.probe_period if self.ever_ready.is_set() else c.probe_period / 2
            await asyncio.sleep(period)

    async def probe(self) -> tuple[bool, str]:
        """Run the readiness probe once: (ready, message)."""
        if self.process is None or self.process.returncode is not None:
            return False, "main process not running"
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(self.container.readiness), env=self.env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            return False, f"probe failed to start: {exc}"
        try:
            _, err = await asyncio.wait_for(proc.communicate(), self.config.probe_timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return False, f"probe timed out after {self.config.probe_timeout:g}s"
        lines = err.decode(errors="replace").strip().splitlines()
        text = lines[-1].removeprefix("tarscli hzcheck: ") if lines else ""
        text = text.replace(self.tars_path + os.sep, "")
        return proc.returncode == 0, text

    def _set_ready(self, ready: bool) -> None:
        if ready:
            self.ready_at = self.ready_at or time.time()
            self.ever_ready.set()

    def _read_status(self) -> None:
        """The supervisor's state file and, once, the endpoints genconf resolved."""
        try:
            text = (self.dir / "data" / "check_status").read_text().strip()
        except OSError:
            text = ""
        changed = False
        if text and text != self.tars_state:
            self.tars_state = text
            changed = True
        if not self.endpoints:
            self.endpoints = _read_endpoints(self.dir)
            changed = changed or bool(self.endpoints)
        if changed:
            self._changed()

    async def terminate(self, grace: float | None = None, *, prestop: bool = True) -> None:
        """Delete the pod: preStop, SIGTERM, SIGKILL after the grace period. Idempotent."""
        if self._terminating:
            await self.gone.wait()
            return
        self._terminating = True
        grace = self.config.grace if grace is None else grace
        deadline = time.monotonic() + grace
        self.state = PodState.TERMINATING
        self._changed()
        watcher = self._tasks[0] if self._tasks else None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        proc = self.process
        try:
            if proc is not None and proc.returncode is None:
                if prestop and grace > 0:
                    self.detail = "preStop: tarscli prestop"
                    self._changed()
                    await self._prestop(deadline)
                self.detail = "SIGTERM"
                self._changed()
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), max(0.0, deadline - time.monotonic()))
                if proc.returncode is None:
                    self.detail = f"SIGKILL (grace period {grace:g}s over)"
                    self._changed()
                    log.warning("pod %s: %s", self.name, self.detail)
            await self._kill_all()
        finally:
            self.state = PodState.TERMINATED
            self.detail = ""
            self.gone.set()
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()
            self._changed()

    async def _prestop(self, deadline: float) -> None:
        logfile = open(self.dir / "container.log", "ab")  # noqa: SIM115
        try:
            hook = await asyncio.create_subprocess_exec(
                *self.command(self.container.prestop), env=self.env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                start_new_session=True)
        finally:
            logfile.close()
        self._hook = hook
        try:
            await asyncio.wait_for(hook.wait(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(hook.pid, signal.SIGKILL)
            await hook.wait()
        finally:
            self._hook = None

    def kill_now(self) -> None:
        """SIGKILL every process of the pod at once (a second Ctrl-C); a delete in progress
        then finishes right away."""
        self._hurry = True
        for proc in (self._hook, self.process):
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        kill_processes(find_processes(self.state_dir, self.uid))

    async def _kill_all(self) -> None:
        """SIGKILL whatever is left of the pod (its process group and every process with its
        POD_UID), and reap the main process."""
        proc = self.process
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for _ in range(100):
            left = await asyncio.to_thread(find_processes, self.state_dir, self.uid)
            if not left:
                break
            kill_processes(left)
            await asyncio.sleep(0.05)
        if proc is not None:
            await proc.wait()

    async def wait_ready(self) -> None:
        await self.ever_ready.wait()

    @property
    def age(self) -> float:
        return time.time() - self.created

    def _changed(self) -> None:
        try:
            self.on_change(self)
        except Exception:  # a display problem must never break the pod
            log.exception("state callback failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.spec.name,
            "ip": self.ip,
            "uid": self.uid,
            "pid": self.process.pid if self.process else None,
            "state": self.state,
            "detail": self.detail,
            "tars_state": self.tars_state,
            "registry": self.registry_state,
            "restarts": self.restarts,
            "created": self.created,
            "ready_at": self.ready_at,
            "version": self.version,
            "tars_path": self.tars_path,
            "endpoints": [{"servant": e.servant, "protocol": e.protocol, "host": e.host,
                           "port": e.port} for e in self.endpoints],
        }


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


def _read_endpoints(tars_path: Path) -> list[Endpoint]:
    """The adapters' endpoints from ``data/server_info.yaml`` (written by genconf)."""
    from ..cli.meta import MetaError, load_server_info
    from ..tars.endpoint import parse_endpoint

    try:
        info = load_server_info(str(tars_path))
    except (MetaError, OSError):
        return []
    out = []
    for adapter in info.adapters:
        try:
            ep = parse_endpoint(adapter.endpoint)
        except ValueError:
            continue
        out.append(Endpoint(adapter.servant, adapter.protocol, ep.host, ep.port))
    return out
