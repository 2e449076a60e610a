"""The runner: owns the registry process and the pods, and carries out up, scale, restart, down.

A pod counts as *serving* when its readiness probe passes **and** the registry hands out every
one of its endpoints as active (QueryF, as clients ask): ``up`` returns, and a rolling
``restart`` lets the next old replica go, only then. Rolling restart is Kubernetes'
``maxSurge: 1, maxUnavailable: 0``: one new replica, serving, then the old one's delete
(preStop → the registry stops handing it out and clients drain during
``TARS_PRESTOP_WAITTIME`` → SIGTERM → SIGKILL after the grace period), one replica at a time.

Everything the runner does is reported as events (plain dicts) to its sinks: the terminal of a
foreground ``up``, the pipe of a detached one until it is ready, and the control-socket
clients (``scale``, ``restart``, ``down``) during their request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from ..tars.errors import TarsRpcError
from .pod import Pod, PodState
from .registry import RegistryProcess, RegistryView
from .spec import RunnerConfig, ServiceSpec, UserError, load_service, template_hash
from .state import StatePaths, find_processes, kill_processes, write_json_atomic

__all__ = ["Event", "Runner", "Sink"]

log = logging.getLogger("k8stars.local.runner")

Event = dict[str, Any]
Sink = Callable[[Event], None]

#: Registry polling period while an operation waits for pods, and otherwise (seconds).
WATCH_FAST = 0.2
WATCH_IDLE = 1.0
#: Progress lines while waiting, every this many seconds.
PROGRESS_EVERY = 1.0


class ServiceState:
    def __init__(self, spec: ServiceSpec, replicas: int) -> None:
        self.spec = spec
        self.replicas = replicas
        self.ordinal = 0
        self.version = ""


class Runner:
    """The pods and the registry of one state directory (one per process)."""

    def __init__(self, config: RunnerConfig, paths: StatePaths) -> None:
        self.config = config
        self.paths = paths
        self.sinks: list[Sink] = []
        self.services: dict[str, ServiceState] = {}
        self.pods: dict[str, Pod] = {}
        self.registry = RegistryProcess(config, paths)
        self.view: RegistryView | None = None
        self.phase = "starting"
        self.started = time.time()
        self.mode = "foreground"
        self.stop_requested = asyncio.Event()
        self.stopped = asyncio.Event()
        self.hurry = False
        self._op_lock = asyncio.Lock()
        self._op_task: asyncio.Task[Any] | None = None
        self._waiting = 0
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._ips: set[int] = set()
        self._slots: set[int] = set()
        self._next_ip = config.ip_first

    # -- events and state --------------------------------------------------------------------

    def emit(self, event: str, message: str = "", **extra: Any) -> None:
        data: Event = {"event": event, "message": message, "time": time.time(), **extra}
        if message:
            log.info("%s", message)
        for sink in list(self.sinks):
            try:
                sink(data)
            except Exception:
                log.exception("event sink failed")

    def _pod_changed(self, pod: Pod) -> None:
        self._dirty.set()
        self.emit("pod", "", pod=pod.name, state=pod.state)

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": 1,
            "pid": _pid(),
            "mode": self.mode,
            "phase": self.phase,
            "started": self.started,
            "state_dir": str(self.paths.root),
            "control": str(self.paths.control),
            "config": self.config.to_dict(),
            "registry": self.registry.to_dict(),
            "services": [dict(s.spec.to_dict(), replicas=s.replicas, version=s.version)
                         for s in self.services.values()],
            "pods": [p.to_dict() for p in sorted(self.pods.values(),
                                                 key=lambda p: (p.spec.name, p.created))],
        }

    def write_state(self) -> None:
        write_json_atomic(self.paths.state, self.snapshot())

    async def _state_writer(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await asyncio.to_thread(self.write_state)
            except OSError as exc:
                log.warning("cannot write %s: %s", self.paths.state, exc)
            self.emit("state", "", state=self.snapshot())
            await asyncio.sleep(0.1)

    def changed(self) -> None:
        self._dirty.set()

    # -- registry watch ----------------------------------------------------------------------

    async def _watch_registry(self) -> None:
        assert self.view is not None
        while True:
            proc = self.registry.process
            exited = f"exited ({proc.returncode})" if proc and proc.returncode is not None else ""
            if exited and self.phase == "running" and self.registry.state != exited:
                self.registry.state = exited
                self.emit("log", f"registry: {exited}; see {_shown(self.paths.registry_log)}")
                self.changed()
            await self.refresh_registry_states()
            await asyncio.sleep(WATCH_FAST if self._waiting else WATCH_IDLE)

    async def refresh_registry_states(self) -> None:
        assert self.view is not None
        answers: dict[str, tuple[set[str], set[str]]] = {}
        servants = {s for p in self.pods.values() for s in p.spec.servants}
        healthy = True
        for servant in sorted(servants):
            try:
                answers[servant] = await self.view.lookup(servant)
            except (TarsRpcError, OSError) as exc:
                healthy = False
                log.debug("QueryF %s: %s", servant, exc)
        if self.registry.state in ("healthy", "unreachable"):
            new = "healthy" if healthy else "unreachable"
            if new != self.registry.state:
                self.registry.state = new
                self.changed()
        for pod in list(self.pods.values()):
            state = _registry_state(pod, answers) if healthy else "?"
            if state != pod.registry_state:
                pod.registry_state = state
                self.changed()

    # -- pods --------------------------------------------------------------------------------

    def _allocate_ip(self) -> int:
        c = self.config
        span = c.ip_last - c.ip_first + 1
        for i in range(span):
            candidate = c.ip_first + (self._next_ip - c.ip_first + i) % span
            if candidate not in self._ips:
                self._ips.add(candidate)
                self._next_ip = candidate + 1
                return candidate
        raise UserError(f"no free POD_IP in 127.0.0.{c.ip_first}-{c.ip_last}", code=1)

    def _allocate_slot(self) -> int:
        c = self.config
        limit = max(1, (65535 - c.port_base) // c.ports_per_pod)
        for slot in range(limit):
            if slot not in self._slots:
                self._slots.add(slot)
                return slot
        raise UserError("no free port range for another pod", code=1)

    async def create_pod(self, service: ServiceState) -> Pod:
        spec = service.spec
        service.ordinal += 1
        version = await asyncio.to_thread(template_hash, spec.dir)
        service.version = version
        name = f"{spec.short}-{version}-{service.ordinal}"
        ip = self._allocate_ip()
        slot = self._allocate_slot()
        pod = Pod(spec, name, f"127.0.0.{ip}", slot, self.config, self.paths.pod_dir(name),
                  str(self.paths.root), self._pod_changed)
        self.pods[name] = pod
        try:
            await asyncio.to_thread(pod.prepare, version)
            await pod.start()
        except BaseException:
            await self._remove(pod, prestop=False)
            raise
        self.emit("log", f"pod {name}: created ({spec.name}, POD_IP {pod.ip})")
        return pod

    async def delete_pod(self, pod: Pod) -> None:
        await self._remove(pod, prestop=not self.hurry)

    async def _remove(self, pod: Pod, *, prestop: bool) -> None:
        started = time.monotonic()
        if pod.state != PodState.TERMINATED:
            if prestop:
                self.emit("log", f"pod {pod.name}: terminating (preStop, SIGTERM, "
                                 f"grace {self.config.grace:g}s)")
            await pod.terminate(grace=None if prestop else 0.0, prestop=prestop)
        self.pods.pop(pod.name, None)
        self._ips.discard(int(pod.ip.rsplit(".", 1)[1]))
        self._slots.discard(pod.slot)
        self.changed()
        self.emit("log", f"pod {pod.name}: gone ({time.monotonic() - started:.1f}s)")

    def serving(self, pod: Pod) -> bool:
        if pod.state != PodState.READY:
            return False
        return not pod.spec.adapters or pod.registry_state == "active"

    async def wait_serving(self, pods: list[Pod], what: str) -> float:
        """Wait until every pod is ready and handed out by the registry; returns the seconds.
        :class:`UserError` when a pod does not get there in ``ready_timeout``."""
        started = time.monotonic()
        deadline = started + self.config.ready_timeout
        next_progress = started + PROGRESS_EVERY
        self._waiting += 1
        try:
            while True:
                done = [p for p in pods if self.serving(p)]
                if len(done) == len(pods):
                    return time.monotonic() - started
                gone = [p for p in pods if p.state == PodState.TERMINATED]
                if gone:
                    raise UserError(f"pod {gone[0].name} was deleted while starting", code=1)
                now = time.monotonic()
                if now >= deadline:
                    raise UserError(self._not_ready_message(
                        [p for p in pods if not self.serving(p)]), code=1)
                if now >= next_progress:
                    next_progress = now + PROGRESS_EVERY
                    ready = sum(p.state == PodState.READY for p in pods)
                    self.emit("progress", f"{what}: {len(done)}/{len(pods)} serving, "
                                          f"{ready}/{len(pods)} ready ({now - started:.0f}s)",
                              elapsed=now - started)
                await asyncio.sleep(0.05)
        finally:
            self._waiting -= 1

    def _not_ready_message(self, pods: list[Pod]) -> str:
        pod = pods[0]
        why = pod.detail or pod.state
        if pod.state == PodState.READY:
            why = f"ready, but the registry does not hand it out (registry: " \
                  f"{pod.registry_state or 'not listed'})"
        log_file = Path(pod.tars_path) / "container.log"
        return (f"pod {pod.name} ({pod.spec.name}) not serving after "
                f"{self.config.ready_timeout:g}s: {why}{_service_hint(pod)} "
                f"(see {_shown(log_file)})")

    # -- operations --------------------------------------------------------------------------

    async def up(self, specs: list[ServiceSpec], replicas: int) -> None:
        c = self.config
        self.emit("log", f"registry: starting tarsregistry on {c.host}:{c.query_port} "
                         f"(SQLite {_shown(self.paths.registry_db)})")
        took = await self.registry.start(lambda m: self.emit("progress", m))
        self.emit("log", f"registry: healthy in {took:.1f}s (pid {self.registry.pid}),"
                         f" locator {c.locator}")
        self.view = RegistryView(c.locator)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch_registry()))
        self.changed()
        for spec in specs:
            self.services[spec.name] = ServiceState(spec, replicas)
        pods: list[Pod] = []
        total = replicas * len(specs)
        self.emit("log", f"pods: starting {total} ({replicas} x "
                         f"{', '.join(s.name for s in specs)})")
        for spec in specs:
            for _ in range(replicas):
                pods.append(await self.create_pod(self.services[spec.name]))
        took = await self.wait_serving(pods, "pods")
        self.phase = "running"
        self.write_state()
        self.emit("log", f"all {total} pods ready and registered in {took:.1f}s")

    def find_service(self, query: str) -> ServiceState:
        matches = [s for s in self.services.values() if s.spec.matches(query)]
        if len(matches) != 1:
            names = ", ".join(self.services) or "none"
            what = "is ambiguous" if matches else "is not running"
            raise UserError(f"service {query!r} {what} (services: {names})")
        return matches[0]

    def live_pods(self, service: ServiceState) -> list[Pod]:
        return sorted((p for p in self.pods.values()
                       if p.spec.name == service.spec.name and p.state != PodState.TERMINATING
                       and p.state != PodState.TERMINATED), key=lambda p: p.created)

    async def scale(self, query: str, replicas: int) -> str:
        if replicas < 0:
            raise UserError(f"replicas must be 0 or more, got {replicas}")
        service = self.find_service(query)
        service.replicas = replicas
        live = self.live_pods(service)
        started = time.monotonic()
        if replicas > len(live):
            new = [await self.create_pod(service) for _ in range(replicas - len(live))]
            try:
                await self.wait_serving(new, f"scale {service.spec.name}")
            except BaseException:
                await asyncio.gather(*(self._remove(p, prestop=False) for p in new))
                raise
        elif replicas < len(live):
            await asyncio.gather(*(self.delete_pod(p) for p in live[replicas:]))
        self.changed()
        return (f"{service.spec.name}: {replicas} replica(s) "
                f"({time.monotonic() - started:.1f}s)")

    async def restart(self, query: str) -> str:
        service = self.find_service(query)
        spec = await asyncio.to_thread(load_service, Path(service.spec.dir))
        if spec.name != service.spec.name:
            raise UserError(f"{service.spec.dir} now holds {spec.name}, not "
                            f"{service.spec.name}: use down and up to change the service")
        service.spec = spec
        old = self.live_pods(service)
        started = time.monotonic()
        deletions: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        try:
            for index, pod in enumerate(old, 1):
                self.emit("log", f"restart {spec.name}: replica {index}/{len(old)}: "
                                 f"new pod first")
                new = await self.create_pod(service)
                try:
                    took = await self.wait_serving([new], f"restart {spec.name}")
                except BaseException:
                    await self._remove(new, prestop=False)
                    raise
                self.emit("log", f"pod {new.name}: serving in {took:.1f}s; deleting "
                                 f"{pod.name}")
                deletions.append(loop.create_task(self.delete_pod(pod)))
        finally:
            if deletions:
                await asyncio.gather(*deletions, return_exceptions=True)
        return f"{spec.name}: {len(old)} replica(s) restarted ({time.monotonic() - started:.1f}s)"

    async def run_op(self, coro: Coroutine[Any, Any, str]) -> str:
        """Run one operation at a time; ``down`` cancels the one running."""
        if self.phase != "running":
            coro.close()
            raise UserError(f"the runner is {self.phase}", code=1)
        async with self._op_lock:
            task: asyncio.Task[str] = asyncio.ensure_future(coro)
            self._op_task = task
            try:
                return await task
            finally:
                self._op_task = None
                with contextlib.suppress(OSError):
                    self.write_state()

    def request_stop(self) -> None:
        if self.stop_requested.is_set():
            if not self.hurry:
                self.hurry = True
                self.emit("log", "stopping now: pods are killed without preStop")
                for pod in list(self.pods.values()):
                    pod.kill_now()
            return
        self.stop_requested.set()

    async def down(self) -> None:
        """Stop everything: pods (preStop, SIGTERM, SIGKILL), then the registry."""
        self.phase = "stopping"
        self.changed()
        if self._op_task is not None:
            self._op_task.cancel()
            with contextlib.suppress(BaseException):
                await self._op_task
        started = time.monotonic()
        pods = list(self.pods.values())
        if pods:
            self.emit("log", f"down: deleting {len(pods)} pod(s)")
            await asyncio.gather(*(self.delete_pod(p) for p in pods), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.view is not None:
            await self.view.close()
            self.view = None
        if self.registry.process is not None:
            self.emit("log", "registry: stopping")
            await self.registry.stop(timeout=0.5 if self.hurry else 12.0)
        left = await asyncio.to_thread(find_processes, str(self.paths.root))
        if left:
            log.warning("killing %d process(es) left behind: %s", len(left), left)
            kill_processes(left)
        self.phase = "stopped"
        self.emit("log", f"down: everything stopped in {time.monotonic() - started:.1f}s")
        self.stopped.set()

    def start_background(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._state_writer()))

    def clean_previous(self) -> None:
        """Wipe what an earlier run left in the state directory (pods, registry database)."""
        for path in (self.paths.pods,):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(str(self.paths.registry_db) + suffix).unlink()
        with contextlib.suppress(OSError):
            self.paths.registry_log.unlink()


def _registry_state(pod: Pod, answers: dict[str, tuple[set[str], set[str]]]) -> str:
    if not pod.endpoints:
        return ""
    states = set()
    for ep in pod.endpoints:
        active, inactive = answers.get(ep.servant, (set(), set()))
        if ep.address in active:
            states.add("active")
        elif ep.address in inactive:
            states.add("inactive")
        else:
            states.add("-")
    if states == {"active"}:
        return "active"
    if "active" in states:
        return "partial"
    return "inactive" if "inactive" in states else "-"


def _service_hint(pod: Pod) -> str:
    """``; the service exited (exit status 3), last output: ...`` from the pod's logs."""
    base = Path(pod.tars_path)
    exited = ""
    with contextlib.suppress(OSError):
        for line in (base / "container.log").read_text(errors="replace").splitlines():
            if "service exited (" in line:
                exited = line[line.index("service exited (") + len("service "):]
    if not exited:
        return ""
    last = ""
    with contextlib.suppress(OSError):
        out = base / "log" / f"{pod.spec.name}.out"
        lines = [ln for ln in out.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("--- ")]
        last = lines[-1].strip()[:200] if lines else ""
    return f"; the service {exited}" + (f", last output: {last}" if last else "")


def _pid() -> int:
    return os.getpid()


def _shown(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("../..") else rel
