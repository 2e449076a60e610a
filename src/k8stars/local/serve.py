"""The runner process: lock, signals, the control socket, and the up → wait → down life.

:func:`serve` runs in the foreground ``k8stars up`` itself, or in the detached runner process
that ``k8stars up --detach`` starts (:func:`daemon_main`), which reports its start-up as JSON
lines on its stdout until everything serves, then lets go of it.

Control socket (``control.sock``, JSON lines): a client sends one request,
``{"op": "status" | "scale" | "restart" | "down", ...}``, and reads events until
``{"event": "done", "ok": bool, "message": str}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from ..tars.logs import LOG_FORMAT
from .runner import Event, Runner
from .spec import RunnerConfig, UserError, load_services
from .state import RunnerLock, StatePaths, find_processes, kill_processes, wait_gone

__all__ = ["daemon_main", "serve"]

log = logging.getLogger("k8stars.local.serve")


async def serve(config: RunnerConfig, dirs: list[str], sink: Callable[[Event], None], *,
                mode: str, on_ready: Callable[[Runner], None] | None = None) -> int:
    """Run the runner until it is stopped; returns the exit status.

    ``sink`` gets every event, including ``ready`` (everything serves), ``failed`` (start-up
    failed or was interrupted; everything started was stopped again) and ``stopped``.
    """
    paths = StatePaths(config.state_dir)
    lock = RunnerLock(paths)
    try:
        specs = load_services(dirs)
        lock.acquire()
    except UserError as exc:
        sink({"event": "failed", "message": exc.message, "code": exc.code})
        return exc.code
    runner = Runner(config, paths)
    runner.mode = mode
    runner.sinks.append(sink)
    server: asyncio.AbstractServer | None = None
    handlers: set[asyncio.Task[Any]] = set()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    try:
        left = await asyncio.to_thread(find_processes, str(paths.root))
        if left:
            runner.emit("log", f"cleaning up {len(left)} process(es) left by an earlier "
                               "runner that did not stop")
            kill_processes(left)
            await asyncio.to_thread(wait_gone, str(paths.root), 5.0)
        runner.clean_previous()
        for sig in signals:
            loop.add_signal_handler(sig, runner.request_stop)
        runner.start_background()
        runner.write_state()
        server = await _control_server(runner, paths, handlers)
        up = loop.create_task(runner.up(specs, config.replicas))
        stop = loop.create_task(runner.stop_requested.wait())
        await asyncio.wait({up, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not up.done():
            up.cancel()
            with contextlib.suppress(BaseException):
                await up
            runner.emit("log", "interrupted: stopping what was started")
            await runner.down()
            sink({"event": "failed", "message": "interrupted: nothing left running",
                  "code": 130})
            return 130
        stop.cancel()
        error = up.exception()
        if error is not None:
            message = error.message if isinstance(error, UserError) else \
                f"internal error: {type(error).__name__}: {error}"
            if not isinstance(error, UserError):
                log.error("up failed", exc_info=error)
            runner.emit("log", f"failed: {message}; stopping what was started")
            await runner.down()
            sink({"event": "failed", "message": message,
                  "code": error.code if isinstance(error, UserError) else 1})
            return error.code if isinstance(error, UserError) else 1
        sink({"event": "ready", "message": "ready", "state": runner.snapshot()})
        if on_ready is not None:
            on_ready(runner)
        await runner.stop_requested.wait()
        await runner.down()
        runner.emit("stopped", "stopped")
        return 0
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if handlers:
            await asyncio.wait(handlers, timeout=3.0)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        with contextlib.suppress(OSError):
            paths.control.unlink()
        with contextlib.suppress(OSError):
            paths.state.unlink()
        lock.release()


async def _control_server(runner: Runner, paths: StatePaths,
                          handlers: set[asyncio.Task[Any]]) -> asyncio.AbstractServer:
    with contextlib.suppress(FileNotFoundError):
        paths.control.unlink()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await _handle(runner, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_unix_server(handle, path=str(paths.control))
    os.chmod(paths.control, 0o600)
    return server


async def _handle(runner: Runner, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    line = await reader.readline()
    try:
        request = json.loads(line)
        op = request["op"]
    except (ValueError, KeyError, TypeError):
        return

    def send(event: Event) -> None:
        if event.get("event") in ("log", "progress", "ready", "failed", "done", "stopped"):
            writer.write(json.dumps(event).encode() + b"\n")

    async def finish(ok: bool, message: str, code: int = 0) -> None:
        send({"event": "done", "ok": ok, "message": message, "code": code})
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    if op == "status":
        writer.write(json.dumps({"event": "state", "state": runner.snapshot()}).encode() + b"\n")
        await finish(True, "")
        return
    runner.sinks.append(send)
    try:
        if op == "down":
            runner.request_stop()
            await runner.stopped.wait()
            await finish(True, "everything stopped")
        elif op == "scale":
            message = await runner.run_op(runner.scale(str(request["service"]),
                                                       int(request["replicas"])))
            await finish(True, message)
        elif op == "restart":
            message = await runner.run_op(runner.restart(str(request["service"])))
            await finish(True, message)
        else:
            await finish(False, f"unknown request {op!r}", 2)
    except UserError as exc:
        await finish(False, exc.message, exc.code)
    except asyncio.CancelledError:
        if runner.stop_requested.is_set():
            await finish(False, "cancelled: the runner is stopping", 1)
        else:
            raise
    except Exception as exc:
        log.exception("request %s failed", op)
        await finish(False, f"internal error: {type(exc).__name__}: {exc}", 1)
    finally:
        with contextlib.suppress(ValueError):
            runner.sinks.remove(send)


# -- the detached runner process ---------------------------------------------------------------


def daemon_main(argv: list[str]) -> int:
    """``python -m k8stars.local.main _runner JSON``: the detached runner.

    Start-up events go to stdout (a pipe to ``k8stars up --detach``) as JSON lines; once ready
    (or failed) stdout is pointed at the log file, so the parent sees EOF and may exit.
    """
    request = json.loads(argv[0])
    config = RunnerConfig.from_dict(request["config"])
    dirs = list(request["dirs"])
    paths = StatePaths(config.state_dir)
    handler = logging.StreamHandler(sys.stderr)  # stderr is runner.log
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pipe = sys.stdout

    def emit(event: Event) -> None:
        if event.get("event") == "state":
            return
        if pipe.closed:
            return
        try:
            pipe.write(json.dumps(event) + "\n")
            pipe.flush()
        except (OSError, ValueError):
            pass
        if event.get("event") in ("ready", "failed"):
            _let_go(pipe)

    def on_ready(runner: Runner) -> None:
        runner.sinks.remove(emit)

    del paths
    return asyncio.run(serve(config, dirs, emit, mode="detached", on_ready=on_ready))


def _let_go(pipe: Any) -> None:
    """Point stdout at /dev/null: the parent reading the pipe sees EOF."""
    with contextlib.suppress(OSError, ValueError):
        pipe.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, pipe.fileno())
        os.close(devnull)
