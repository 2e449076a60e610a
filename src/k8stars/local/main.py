"""``k8stars``: run TARS services on this machine, each replica a simulated Kubernetes pod.

::

    k8stars up EXAMPLE_OR_DIR... [--replicas N] [--detach]   start the registry and the services
    k8stars status [--json] [--watch]                         the table of pods
    k8stars call SERVANT METHOD [ARG...]                      call a method through the registry
    k8stars http SERVANT [PATH]                               HTTP GET on a not_tars servant
    k8stars scale SERVICE N                                   change the number of replicas
    k8stars restart SERVICE                                   rolling restart (picks up new code)
    k8stars logs POD                                          a pod's output
    k8stars down                                              stop everything

``up`` returns once every replica is ready (readiness probe) *and* handed out by the registry.
Without ``--detach`` it stays in the foreground with a live table until Ctrl-C (or ``k8stars
down`` from another terminal) stops everything; with ``--detach`` a background runner keeps
the pods and ``up`` returns. Every command takes ``--state-dir`` (default ``.k8stars`` in the
current directory, or ``$K8STARS_STATE_DIR``).

Exit status: 0 ok, 1 failed, 2 bad input, 130 interrupted. Errors are one line on stderr:
``k8stars <command>: <message>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from .spec import RunnerConfig, UserError, load_services
from .state import (
    RunnerLock,
    StatePaths,
    already_running,
    check_ports_free,
    find_processes,
    kill_processes,
    read_state,
    runner_pid,
    wait_gone,
)
from .table import Console, render_table

__all__ = ["main"]

DEFAULT_STATE_DIR = ".k8stars"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="k8stars", description="Run TARS services locally, each replica a simulated pod, "
        "with the k8stars registry (no Kubernetes needed).")
    parser.add_argument("--state-dir", default=os.environ.get("K8STARS_STATE_DIR")
                        or DEFAULT_STATE_DIR,
                        help="state directory (default .k8stars, or $K8STARS_STATE_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="start the registry and the services")
    up.add_argument("dirs", nargs="+", metavar="EXAMPLE_OR_DIR",
                    help="a service directory (_server_meta.yaml, start.sh) or an example name")
    up.add_argument("--replicas", "-n", type=int, default=1, help="replicas per service (1)")
    up.add_argument("--detach", "-d", action="store_true",
                    help="return once everything serves; a background runner keeps it running")
    defaults = RunnerConfig(state_dir="")
    for option, dest, help_text in (
        ("--query-port", "query_port", "registry QueryObj port"),
        ("--registry-port", "registry_port", "registry Registry port"),
        ("--admin-port", "admin_port", "registry AdminObj port"),
        ("--metrics-port", "metrics_port", "registry /metrics and /healthz port"),
    ):
        up.add_argument(option, dest=dest, type=int, default=getattr(defaults, dest),
                        help=f"{help_text} ({getattr(defaults, dest)})")
    for option, dest, help_text in (
        ("--check-interval", "check_interval", "TARS_CHECK_INTERVAL of the pods"),
        ("--report-interval", "report_interval", "TARS_REPORT_INTERVAL of the pods"),
        ("--prestop-wait", "prestop_wait", "TARS_PRESTOP_WAITTIME of the pods"),
        ("--ep-uptime", "ep_uptime", "TARS_EP_UPTIME (client endpoint refresh) of the pods"),
    ):
        up.add_argument(option, dest=dest, default=getattr(defaults, dest),
                        help=f"{help_text} ({getattr(defaults, dest)})")
    up.add_argument("--grace", type=float, default=defaults.grace,
                    help=f"termination grace period in seconds ({defaults.grace:g})")
    up.add_argument("--ready-timeout", type=float, default=defaults.ready_timeout,
                    help=f"seconds a pod may take to serve ({defaults.ready_timeout:g})")

    status = sub.add_parser("status", help="the table of services and pods")
    status.add_argument("--json", action="store_true", help="the runner's state as JSON")
    status.add_argument("--watch", "-w", action="store_true", help="keep showing it")

    call = sub.add_parser("call", help="call a TARS method through the registry")
    call.add_argument("servant", help="e.g. App.SimpleServer.MainObj")
    call.add_argument("method")
    call.add_argument("args", nargs="*", help="one JSON value per in parameter")
    call.add_argument("--idl", action="append", help="the .tars file (default: the service's)")
    call.add_argument("--interface", help="the interface, when several have the method")
    call.add_argument("--locator", help="default: the running registry")
    call.add_argument("--timeout", type=int, default=5000, help="call timeout in ms (5000)")

    http = sub.add_parser("http", help="HTTP GET on a not_tars servant found in the registry")
    http.add_argument("servant", help="e.g. App.SimpleServer.HttpObj")
    http.add_argument("path", nargs="?", default="/")
    http.add_argument("--locator", help="default: the running registry")

    scale = sub.add_parser("scale", help="set the number of replicas of a service")
    scale.add_argument("service", help="App.Server, Server or the directory")
    scale.add_argument("replicas", type=int)

    restart = sub.add_parser("restart", help="rolling restart of a service")
    restart.add_argument("service")

    logs = sub.add_parser("logs", help="a pod's output (container.log)")
    logs.add_argument("pod")

    sub.add_parser("down", help="stop everything")
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["_runner"]:
        from .serve import daemon_main

        return daemon_main(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    command = args.command
    try:
        return int(COMMANDS[command](args))
    except UserError as exc:
        sys.stderr.write(f"k8stars {command}: {exc.message}\n")
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


# -- up ----------------------------------------------------------------------------------------


def _config(args: argparse.Namespace, paths: StatePaths) -> RunnerConfig:
    if args.replicas < 1:
        raise UserError(f"--replicas must be 1 or more, got {args.replicas}")
    config = RunnerConfig(state_dir=str(paths.root), replicas=args.replicas, grace=args.grace,
                          ready_timeout=args.ready_timeout)
    for name in ("query_port", "registry_port", "admin_port", "metrics_port", "check_interval",
                 "report_interval", "prestop_wait", "ep_uptime"):
        setattr(config, name, getattr(args, name))
    from ..cli.settings import parse_duration

    for name in ("check_interval", "report_interval", "prestop_wait", "ep_uptime"):
        try:
            parse_duration(getattr(config, name))
        except ValueError as exc:
            option = "--" + name.replace("_", "-")
            raise UserError(f"{option} {getattr(config, name)!r}: {exc} "
                            "(a duration such as 500ms, 3s or 1m)") from None
    return config


def cmd_up(args: argparse.Namespace) -> int:
    specs = load_services(args.dirs)
    paths = StatePaths(args.state_dir)
    config = _config(args, paths)
    if RunnerLock.held(paths):
        raise UserError(already_running(paths), code=1)
    left = find_processes(str(paths.root))
    if left:  # a runner that was killed left its pods and registry: they hold the ports
        print(f"stopping {len(left)} process(es) left by an earlier runner that was killed")
        kill_processes(left)
        wait_gone(str(paths.root), 10.0)
    check_ports_free(config.host, config.registry_ports())
    for spec in specs:
        for warning in spec.warnings:
            sys.stderr.write(f"k8stars up: warning: {warning}\n")
    dirs = [spec.dir for spec in specs]
    if args.detach:
        return _up_detached(config, dirs, paths)
    return _up_foreground(config, dirs)


def _up_foreground(config: RunnerConfig, dirs: list[str]) -> int:
    console = Console()
    outcome: dict[str, Any] = {}

    def sink(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "ready":
            console.done(event["state"])
            console.log("running: Ctrl-C (or `k8stars down` elsewhere) stops everything")
        elif kind == "failed":
            outcome["failed"] = event
        else:
            console.handle(event)

    from .runner import Runner
    from .serve import serve

    ticker: list[asyncio.Task[None]] = []

    def on_ready(runner: Runner) -> None:
        async def tick() -> None:  # keeps the AGE column of the live table moving
            while not runner.stop_requested.is_set():
                await asyncio.sleep(1.0)
                console.table(runner.snapshot())

        if console.live:
            ticker.append(asyncio.get_running_loop().create_task(tick()))

    status = asyncio.run(serve(config, dirs, sink, mode="foreground", on_ready=on_ready))
    console.done()
    if "failed" in outcome:
        sys.stderr.write(f"k8stars up: {outcome['failed']['message']}\n")
    return status


def _up_detached(config: RunnerConfig, dirs: list[str], paths: StatePaths) -> int:
    paths.create()
    request = json.dumps({"config": config.to_dict(), "dirs": dirs})
    env = dict(os.environ, K8STARS_RUNNER_PROCESS=str(paths.root))
    with open(paths.log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "k8stars.local.main", "_runner", request],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True, env=env)
    assert proc.stdout is not None
    console = Console()
    result: dict[str, Any] = {}
    interrupted = False
    while True:
        try:
            raw = proc.stdout.readline()
        except KeyboardInterrupt:
            interrupted = True
            console.log("interrupted: stopping what was started ...")
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            continue
        if not raw:
            break
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        kind = event.get("event")
        if kind == "ready":
            result = event
            break
        if kind == "failed":
            result = event
        else:
            console.handle(event)
    proc.stdout.close()
    if result.get("event") == "ready":
        console.done(result["state"])
        print(f"running in the background (runner pid {proc.pid}, log {paths.shown()}/"
              f"runner.log): `k8stars status`, `k8stars down`")
        return 0
    console.done()
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = 1
    if result.get("event") == "failed":
        sys.stderr.write(f"k8stars up: {result['message']}\n")
        return 130 if interrupted else int(result.get("code") or 1)
    sys.stderr.write(f"k8stars up: the runner exited ({code}) before everything was ready: "
                     f"{_last_line(paths.log)} (see {paths.shown()}/runner.log)\n")
    return 130 if interrupted else 1


def _last_line(path: os.PathLike[str] | str) -> str:
    try:
        with open(path, errors="replace") as fh:
            lines = fh.read().strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


# -- talking to the runner ---------------------------------------------------------------------


def _running_state(paths: StatePaths) -> dict[str, Any]:
    if not RunnerLock.held(paths):
        left = find_processes(str(paths.root))
        hint = (f"; {len(left)} process(es) of an earlier runner are left: `k8stars down` "
                "stops them") if left else ""
        raise UserError(f"k8stars is not running (state dir {paths.shown()}){hint}", code=1)
    for _ in range(50):
        state = read_state(paths)
        if state is not None:
            return state
        time.sleep(0.05)
    raise UserError(f"the runner holds {paths.lock} but wrote no state", code=1)


def request(paths: StatePaths, payload: dict[str, Any], console: Console | None = None
            ) -> dict[str, Any]:
    """Send a request to the runner; print its events; the final ``done`` event."""
    control = read_state(paths) or {}
    path = str(control.get("control") or paths.control)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot reach the runner at {path}: {exc.strerror or exc}", code=1
                        ) from None
    with sock, sock.makefile("rwb") as stream:
        stream.write(json.dumps(payload).encode() + b"\n")
        stream.flush()
        for raw in stream:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if event.get("event") == "done":
                if console is not None:
                    console.done()
                return dict(event)
            if event.get("event") == "state":
                return dict(event)
            if console is not None:
                console.handle(event)
    if console is not None:
        console.done()
    raise UserError("the runner closed the connection without an answer", code=1)


def cmd_status(args: argparse.Namespace) -> int:
    paths = StatePaths(args.state_dir)
    state = _running_state(paths)
    if args.json:
        print(json.dumps(state, indent=1))
        return 0
    if not args.watch:
        print("\n".join(render_table(state)))
        return 0
    console = Console()
    try:
        while RunnerLock.held(paths):
            state = read_state(paths) or state
            console.table(state, force=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    console.done()
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    if args.replicas < 0:
        raise UserError(f"replicas must be 0 or more, got {args.replicas}")
    return _op(args, {"op": "scale", "service": args.service, "replicas": args.replicas})


def cmd_restart(args: argparse.Namespace) -> int:
    return _op(args, {"op": "restart", "service": args.service})


def _op(args: argparse.Namespace, payload: dict[str, Any]) -> int:
    paths = StatePaths(args.state_dir)
    _running_state(paths)
    done = request(paths, payload, Console())
    if not done.get("ok"):
        raise UserError(str(done.get("message")), code=int(done.get("code") or 1))
    print(done.get("message"))
    state = read_state(paths)
    if state is not None:
        print("\n".join(render_table(state)))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    paths = StatePaths(args.state_dir)
    if not RunnerLock.held(paths):
        left = find_processes(str(paths.root))
        if left:
            print(f"the runner is gone; stopping {len(left)} process(es) it left behind")
            kill_processes(left)
            left = wait_gone(str(paths.root), 10.0)
        for stale in (paths.state, paths.control):
            with contextlib.suppress(OSError):
                stale.unlink()
        if left:
            raise UserError(f"could not stop pid(s) {left}", code=1)
        print(f"k8stars is not running (state dir {paths.shown()}): nothing to stop")
        return 0
    pid = runner_pid(paths)
    console = Console()
    try:
        done = request(paths, {"op": "down"}, console)
    except UserError as exc:
        # the runner holds the lock but does not answer: stop it the hard way
        console.log(f"{exc.message}; sending SIGTERM to the runner (pid {pid})")
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        done = {"ok": True, "message": "stopped"}
    deadline = time.monotonic() + 30.0
    while RunnerLock.held(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    if RunnerLock.held(paths) and pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    left = wait_gone(str(paths.root), 5.0)
    if left:
        kill_processes(left)
        left = wait_gone(str(paths.root), 5.0)
    if left:
        raise UserError(f"could not stop pid(s) {left}", code=1)
    if not done.get("ok"):
        raise UserError(str(done.get("message")), code=1)
    print("k8stars: everything stopped")
    return 0


# -- call, http, logs --------------------------------------------------------------------------


def _locator(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None]:
    if args.locator:
        return args.locator, None
    paths = StatePaths(args.state_dir)
    if not RunnerLock.held(paths):
        raise UserError(f"k8stars is not running (state dir {paths.shown()}): start it with "
                        "`k8stars up`, or give --locator", code=1)
    state = _running_state(paths)
    return str(state["registry"]["locator"]), state


def cmd_call(args: argparse.Namespace) -> int:
    from .call import call, find_method, idl_files_of, parse_args

    locator, state = _locator(args)
    idl = list(args.idl or [])
    if not idl:
        if state is None:
            raise UserError("give --idl FILE (no running runner to find the service's IDL)")
        service = _service_of(state, args.servant)
        idl = idl_files_of(service["dir"])
        if not idl:
            raise UserError(f"{service['name']}: no .tars file in {service['dir']} "
                            "(give --idl FILE)")
    interface, method = find_method(idl, args.method, args.interface)
    values = parse_args(method, args.args)
    from ..tars.errors import TarsRpcError

    try:
        result = asyncio.run(call(locator, args.servant, interface, method, values,
                                  args.timeout))
    except TarsRpcError as exc:
        raise UserError(f"{args.servant}.{args.method} failed: {exc}", code=1) from None
    print(json.dumps(result))
    return 0


def _service_of(state: dict[str, Any], servant: str) -> dict[str, Any]:
    for service in state.get("services", []):
        names = [a[0] for a in service.get("adapters", [])]
        if servant in names:
            return dict(service)
    for service in state.get("services", []):
        if servant.startswith(service["name"] + "."):
            return dict(service)
    known = ", ".join(a[0] for s in state.get("services", []) for a in s.get("adapters", []))
    raise UserError(f"no running service has servant {servant!r} (servants: {known or 'none'}); "
                    "give --idl FILE to call another one")


def cmd_http(args: argparse.Namespace) -> int:
    from .call import resolve_http
    from .registry import http_get

    locator, _ = _locator(args)
    path = args.path if args.path.startswith("/") else "/" + args.path

    async def get() -> tuple[int, str]:
        endpoints = await resolve_http(locator, args.servant)
        if not endpoints:
            raise UserError(f"the registry knows no active endpoint of {args.servant}", code=1)
        host, port = endpoints[0]
        return await http_get(host, port, path, timeout=10.0)

    from ..tars.errors import TarsRpcError

    try:
        status, body = asyncio.run(get())
    except (OSError, asyncio.TimeoutError, TarsRpcError) as exc:
        raise UserError(f"GET {args.servant}{path}: {exc}", code=1) from None
    sys.stdout.write(body if body.endswith("\n") else body + "\n")
    if not 200 <= status < 300:
        raise UserError(f"GET {args.servant}{path}: HTTP {status}", code=1)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    paths = StatePaths(args.state_dir)
    pod_dir = paths.pod_dir(args.pod)
    if "/" in args.pod or not pod_dir.is_dir():
        names = sorted(p.name for p in paths.pods.iterdir()) if paths.pods.is_dir() else []
        raise UserError(f"no pod {args.pod!r} (pods: {', '.join(names) or 'none'})")
    try:
        with open(pod_dir / "container.log", "rb") as fh:
            sys.stdout.buffer.write(fh.read())
    except FileNotFoundError:
        pass
    return 0


COMMANDS = {
    "up": cmd_up,
    "status": cmd_status,
    "call": cmd_call,
    "http": cmd_http,
    "scale": cmd_scale,
    "restart": cmd_restart,
    "logs": cmd_logs,
    "down": cmd_down,
}


if __name__ == "__main__":
    sys.exit(main())
