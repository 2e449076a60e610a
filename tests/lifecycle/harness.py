"""A small cluster for lifecycle tests: registries, kubelet-simulated pods, clients under load.

Pods are :class:`k8stars.local.pod.Pod` (the local runner's kubelet simulation: own TARS_PATH,
POD_IP, POD_UID, exec'd readiness probe, preStop/SIGTERM/SIGKILL) running the container of the
example Deployment ``deploy/k8s/overlays/examples/hello.yaml``: its image's default command, its
probe and preStop commands, its env and downward-API env, with shorter timings (below);
registries are ``tarsregistry`` processes; the clients are the Python :class:`Communicator` and
TarsNode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8stars.local.pod import Container, Pod, PodState, tool_command
from k8stars.local.registry import RegistryView, http_get
from k8stars.local.spec import RunnerConfig, ServiceSpec, load_service
from k8stars.local.state import MARKER_VAR, find_processes, kill_processes
from k8stars.tars.client import Communicator
from k8stars.tars.errors import TarsRpcError
from k8stars.tars.idl.loader import load

from ..deploy.artifacts import (
    effective_cmd,
    env_field_refs,
    env_literals,
    exec_commands,
    load_docs,
    pod_templates,
)
from ..local.support import free_ports
from ..netns import Namespace

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"
SERVANT = "TestApp.HelloPy.SayHelloObj"
NODE_LOOP = Path(__file__).with_name("hello_loop.js")
SAY_HELLO = load(HELLO / "SayHello.tars").interface("TestApp.SayHello")

MANIFEST = ROOT / "deploy" / "k8s" / "overlays" / "examples" / "hello.yaml"
#: The manifest's namespace (set by the overlay's kustomization).
NAMESPACE = "tars-system"

#: Short intervals (the clients refresh every REFRESH_MS; preStop waits longer than that). In the
#: manifest: probe period 10 s, TARS_PRESTOP_WAITTIME 80 s, grace period 90 s (clients refresh
#: every 60 s); here the same order, scaled down.
REFRESH_MS = 1000
CHECK_INTERVAL = "0.5s"
REPORT_INTERVAL = "1s"
PRESTOP_WAIT = "2500ms"
INACTIVE_AFTER = "3s"
GRACE = 10.0


class Registry:
    """One ``tarsregistry`` process on free ports; ``db`` is a URL shared by replicas."""

    def __init__(self, workdir: Path, db: str, name: str = "registry",
                 host: str = "127.0.0.1") -> None:
        self.dir = workdir / name
        self.host = host
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = db
        self.query_port, self.registry_port, self.metrics_port = free_ports(3)
        self.process: asyncio.subprocess.Process | None = None
        self.marker = str(workdir)

    @property
    def endpoint(self) -> str:
        return f"tcp -h {self.host} -p {self.query_port}"

    async def start(self, timeout: float = 20.0) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DB_", "POD_", "TARS_", "K8STARS_"))}
        env[MARKER_VAR] = self.marker
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.dir / "registry.log", "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *tool_command("tarsregistry", "k8stars.registry.main"),
                "--host", self.host, "--advertise-host", self.host,
                "--query-port", str(self.query_port), "--registry-port", str(self.registry_port),
                "--admin-port", "0", "--metrics-port", str(self.metrics_port),
                "--db", self.db, "--inactive-after", INACTIVE_AFTER, "--delete-after", "1h",
                "--log-level", "INFO", env=env, cwd=str(self.dir),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"tarsregistry exited: {self.log_tail()}")
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                status, _ = await http_get(self.host, self.metrics_port, "/healthz", 1.0)
                if status == 200:
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"tarsregistry not healthy: {self.log_tail()}")

    async def health(self) -> str:
        """The body of ``/healthz`` (``ok``, ``degraded: <reason>``); raises OSError if down."""
        status, body = await http_get(self.host, self.metrics_port, "/healthz", 2.0)
        return f"{status} {body.strip()}"

    def log_tail(self) -> str:
        try:
            return (self.dir / "registry.log").read_text()[-2000:]
        except OSError:
            return ""

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), 10.0)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


VERSION_LABEL = "app.kubernetes.io/version"


def manifest_container(version: str | None = None) -> Container:
    """The manifest's container as the kubelet runs it, with the test's short preStop drain."""
    [template] = pod_templates(load_docs(MANIFEST.read_text()))
    [spec] = template.containers
    command = effective_cmd(spec["image"])
    assert command, f"{MANIFEST}: no command for image {spec['image']}"
    hooks = dict(exec_commands(spec))
    labels = dict(template.labels)
    if version is not None:
        labels[VERSION_LABEL] = version
    env = env_literals(spec)
    assert "TARS_PRESTOP_WAITTIME" in env, "the manifest sets the drain explicitly"
    env["TARS_PRESTOP_WAITTIME"] = PRESTOP_WAIT
    return Container(command=command, readiness=hooks["readinessProbe"],
                     prestop=hooks["preStop"], env=env, field_refs=env_field_refs(spec),
                     namespace=NAMESPACE, labels=labels)


class _Config(RunnerConfig):
    """RunnerConfig whose locator lists every registry replica."""

    locators: str = ""

    @property  # type: ignore[override]
    def locator(self) -> str:
        return self.locators


def locator_of(registries: list[Registry]) -> str:
    return "tars.tarsregistry.QueryObj@" + ":".join(r.endpoint for r in registries)


@dataclass
class Cluster:
    workdir: Path
    registries: list[Registry]
    spec: ServiceSpec = field(default_factory=lambda: load_service(HELLO))
    pods: list[Pod] = field(default_factory=list)
    _ordinal: int = 0

    def __post_init__(self) -> None:
        self.config = _Config(
            state_dir=str(self.workdir), check_interval=CHECK_INTERVAL,
            report_interval=REPORT_INTERVAL, prestop_wait=PRESTOP_WAIT, ep_uptime="1s",
            grace=GRACE, probe_period=0.5, probe_timeout=5.0, failure_threshold=3,
            port_base=random.randrange(30000, 40000, 100), ports_per_pod=5)
        self.config.locators = locator_of(self.registries)
        # a block of IPs unlikely to be used by other tests of this machine
        self._ip_base = random.randrange(100, 240)
        self.view = RegistryView(self.config.locator)

    @property
    def locator(self) -> str:
        return self.config.locator

    async def create_pod(self, ip: str | None = None, slot: int | None = None,
                         netns: Namespace | None = None, version: str | None = None) -> Pod:
        """A new pod of the manifest at ``ip`` (default: the next 127.0.x.y), or in the
        namespace ``netns``; ``version`` replaces the template's version label."""
        self._ordinal += 1
        n = self._ordinal
        ip = netns.ip if netns else ip or f"127.0.{self._ip_base}.{10 + n}"
        slot = n if slot is None else slot
        name = f"hellopy-{n}"
        container = manifest_container(version)
        pod = Pod(self.spec, name, ip, slot, self.config, self.workdir / "pods" / name,
                  str(self.workdir), lambda p: None, netns=netns.name if netns else None,
                  container=container)
        await asyncio.to_thread(pod.prepare, container.labels[VERSION_LABEL])
        await pod.start()
        self.pods.append(pod)
        return pod

    def endpoint(self, pod: Pod) -> str | None:
        for e in pod.endpoints:
            if e.servant == SERVANT:
                return e.address
        return None

    async def active(self) -> set[str]:
        active, _ = await self.view.lookup(SERVANT)
        return active

    async def wait_serving(self, pod: Pod, timeout: float = 30.0) -> float:
        """Ready (hzcheck) and handed out as active by the registry; returns the seconds."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            ep = self.endpoint(pod)
            if pod.ever_ready.is_set() and ep:
                with contextlib.suppress(TarsRpcError, OSError):
                    if ep in await self.active():
                        return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError(f"pod {pod.name} not serving after {timeout}s: "
                             f"{pod.state} {pod.detail} {pod.tars_state}\n"
                             f"{(pod.dir / 'container.log').read_text()[-2000:]}")

    async def delete(self, pod: Pod, *, prestop: bool = True) -> None:
        await pod.terminate(grace=None if prestop else 0.0, prestop=prestop)
        if pod in self.pods:
            self.pods.remove(pod)

    def sigkill(self, pod: Pod) -> None:
        """The container dies at once (OOM, node loss): no preStop, no SIGTERM."""
        pod.kill_now()

    async def close(self) -> None:
        for pod in list(self.pods):
            pod.kill_now()
            with contextlib.suppress(Exception):
                await pod.terminate(grace=0.0, prestop=False)
        self.pods.clear()
        await self.view.close()
        for reg in self.registries:
            await reg.stop(signal.SIGKILL)
        kill_processes(find_processes(str(self.workdir)))


@dataclass
class Counts:
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_failure: float = 0.0

    def snapshot(self) -> tuple[int, int]:
        return self.ok, self.failed


class PythonLoad:
    """``concurrency`` Python callers in a loop through the locator (or to ``target``, a proxy
    string with endpoints)."""

    def __init__(self, locator: str, concurrency: int = 2, pause: float = 0.01,
                 target: str = SERVANT) -> None:
        self.locator = locator
        self.target = target
        self.concurrency = concurrency
        self.pause = pause
        self.counts = Counts()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.comm: Communicator | None = None

    async def start(self) -> None:
        self.comm = Communicator(locator=self.locator, sync_invoke_timeout=3000,
                                 refresh_endpoint_interval=REFRESH_MS)
        # SayHello only reads: a call lost with a killed pod may go to another one
        proxy = self.comm.proxy(SAY_HELLO, self.target, idempotent=True)
        # the first answer before the load starts: failures afterwards are the scenario's
        await proxy.SayHello("warmup")
        self._tasks = [asyncio.get_running_loop().create_task(self._run(proxy))
                       for _ in range(self.concurrency)]

    async def _run(self, proxy: Any) -> None:
        c = self.counts
        while not self._stop.is_set():
            try:
                await proxy.SayHello("py")
                c.ok += 1
            except TarsRpcError as exc:
                c.failed += 1
                c.last_failure = time.monotonic()
                key = type(exc).__name__ + ": " + str(exc)[:80]
                c.errors[key] = c.errors.get(key, 0) + 1
            await asyncio.sleep(self.pause)

    async def stop(self) -> Counts:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.comm is not None:
            await self.comm.close()
        return self.counts


class NodeLoad:
    """TarsNode (``@tars/rpc``) calling in a loop through the locator."""

    def __init__(self, locator: str, workdir: Path) -> None:
        self.locator = locator
        self.log = workdir / "node-load.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        # the example's glue finds @tars/* in its own node_modules, else in the interop tests'
        modules = Path(__file__).resolve().parents[1] / "interop" / "node" / "node_modules"
        env = dict(os.environ, NODE_NO_WARNINGS="1", NODE_PATH=str(modules))
        with open(self.log, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                "node", str(NODE_LOOP), self.locator, SERVANT, str(REFRESH_MS),
                stdout=asyncio.subprocess.PIPE, stderr=log, env=env,
                stdin=asyncio.subprocess.DEVNULL)
        # wait for the first successful call
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            lines = self.log.read_text().strip().splitlines()
            if lines and json.loads(lines[-1]).get("ok", 0) > 0:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"node client never succeeded: {self.log.read_text()[-1000:]}")

    def progress(self) -> dict[str, Any]:
        lines = self.log.read_text().strip().splitlines()
        return json.loads(lines[-1]) if lines else {}

    async def stop(self) -> Counts:
        assert self.proc is not None and self.proc.stdout is not None
        self.proc.send_signal(signal.SIGTERM)
        out = await asyncio.wait_for(self.proc.stdout.read(), 10)
        await self.proc.wait()
        data = json.loads(out.decode().strip().splitlines()[-1])
        return Counts(ok=data["ok"], failed=data["failed"], errors=data.get("errors", {}))


async def rolling_update(cluster: Cluster, old: list[Pod], version: str) -> list[Pod]:
    """surge 1, unavailable 0: a new pod (of the template labelled ``version``) serving, then
    an old one deleted; per old pod."""
    new = []
    for pod in old:
        fresh = await cluster.create_pod(version=version)
        await cluster.wait_serving(fresh)
        new.append(fresh)
        await cluster.delete(pod)
    return new


async def serving_cluster(workdir: Path, registries: list[Registry], replicas: int = 3,
                          netns: list[Namespace] | None = None
                          ) -> tuple[Cluster, PythonLoad, NodeLoad]:
    """Registries started, ``replicas`` pods serving (one per namespace of ``netns`` if given),
    and a Python and a TarsNode client calling through the registry. On failure everything
    started is stopped."""
    cluster = Cluster(workdir, registries)
    py, node = PythonLoad(cluster.locator), NodeLoad(cluster.locator, workdir)
    try:
        for reg in registries:
            await reg.start()
        pods = [await cluster.create_pod(netns=netns[i] if netns else None)
                for i in range(replicas)]
        for pod in pods:
            await cluster.wait_serving(pod)
        await py.start()
        await node.start()
    except BaseException:
        if node.proc is not None and node.proc.returncode is None:
            node.proc.kill()
        if py.comm is not None:
            await py.comm.close()
        await cluster.close()
        raise
    await asyncio.sleep(1.0)
    return cluster, py, node


async def watch_ready(cluster: Cluster, stop: asyncio.Event) -> list[str]:
    """Every state other than ready of a pod that was ready (and is not being deleted) seen
    while ``stop`` is not set."""
    seen: list[str] = []
    while not stop.is_set():
        seen += [f"{p.name}: {p.state} {p.detail}" for p in cluster.pods
                 if p.ever_ready.is_set()
                 and p.state not in (PodState.READY, PodState.TERMINATING, PodState.TERMINATED)]
        await asyncio.sleep(0.1)
    return seen
