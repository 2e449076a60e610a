"""Drive TarsNode's ``@tars/rpc`` as an independent RPC peer for module ``Interop`` / ``Calc``.

Scripts (``tests/interop/node/``, glue in ``calc_glue.js``):

* ``calc_server.js``: a Calc server. :func:`calc_server` starts it and yields a
  :class:`NodeProcess` once it listens (``--endpoint`` with port 0 by default, or ``--config``
  with a TARS config file; ``admin=`` also serves ``AdminObj``, emulating @tars/node-agent).
* ``query_stub.js``: a static ``tars.tarsregistry.QueryObj`` stand-in (:func:`query_stub`), for
  the locator path of the Node client.
* ``calc_client.js``: runs a list of calls (:func:`run_calc_client`); each call is
  ``{"op": NAME, "args": [...], "target": "calc"|"admin", "timeout": MS, "context": {...},
  "oneway": bool}`` and each result ``{"op", "ok": True, "ret", "outs", "ms"}`` (``tars_ping``
  adds ``"sbuffer"``, the answer's sBuffer in hex) or ``{"op", "ok": False, "code", "message"}``.
  Values use the JSON mapping of ``stream_peer.js`` (long as decimal strings, bytes as hex,
  maps as ``[key, value]`` pairs).
* ``rpc_load.js``: closed-loop load (:func:`run_rpc_load`), returns ``{"calls", "errors",
  "seconds", "calls_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "call",
  "concurrency", "connections", "error_codes"}``.

``npm ci`` runs once if ``node_modules`` is missing (see ``node_peer.py``). POSIX only.
Standard library only.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast

from .node_peer import NODE_DIR, NodePeerError, ensure_node_modules, find_node, node_available

__all__ = [
    "CALC_SERVANT",
    "NodeProcess",
    "NodeRpcError",
    "calc_server",
    "node_available",
    "query_stub",
    "run_calc_client",
    "run_rpc_load",
]

CALC_SERVANT = "App.NodeServer.CalcObj"

_CALC_SERVER = NODE_DIR / "calc_server.js"
_CALC_CLIENT = NODE_DIR / "calc_client.js"
_RPC_LOAD = NODE_DIR / "rpc_load.js"
_QUERY_STUB = NODE_DIR / "query_stub.js"


class NodeRpcError(NodePeerError):
    """A Node RPC script could not be started, failed, or printed something unexpected."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["NODE_NO_WARNINGS"] = "1"
    return env


def _node(node: str | None) -> str:
    exe = node or find_node()
    if exe is None:
        raise NodeRpcError("node executable not found (set K8STARS_NODE or put node on PATH)")
    ensure_node_modules()
    return exe


def _tail(fh: IO[bytes] | None, limit: int = 3000) -> str:
    if fh is None:
        return ""
    try:
        fh.seek(0)
        return fh.read()[-limit:].decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


@dataclass
class NodeProcess:
    """A running ``calc_server.js`` / ``query_stub.js`` and its ready line.

    ``endpoint`` is the first (Calc) adapter's actual endpoint (port 0 resolved), ``proxy`` is
    ``servant@endpoint``; ``admin_endpoint`` is set when AdminObj is served.
    """

    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    stderr: IO[bytes] = field(repr=False)

    @property
    def endpoint(self) -> str:
        return cast(str, self.ready["endpoint"])

    @property
    def servant(self) -> str:
        return cast(str, self.ready["servant"])

    @property
    def proxy(self) -> str:
        return cast(str, self.ready["proxy"])

    @property
    def port(self) -> int:
        words = self.endpoint.split()
        return int(words[words.index("-p") + 1])

    @property
    def admin_endpoint(self) -> str | None:
        return cast("str | None", self.ready.get("admin"))

    @property
    def admin_proxy(self) -> str | None:
        ep = self.admin_endpoint
        return None if ep is None else f"AdminObj@{ep}"

    @property
    def adapters(self) -> list[dict[str, str]]:
        return cast("list[dict[str, str]]", self.ready.get("adapters", []))

    def stderr_text(self) -> str:
        """What the process wrote to stderr so far (last 3000 characters)."""
        return _tail(self.stderr)

    def alive(self) -> bool:
        return self.process.poll() is None


def _read_ready(proc: subprocess.Popen[bytes], stderr: IO[bytes], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NodeRpcError(f"no ready line within {timeout:.1f} s\n{_tail(stderr)}")
            if not sel.select(remaining):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = proc.wait(timeout=5)
                raise NodeRpcError(f"exited before ready (code {code})\n{_tail(stderr)}")
            buf += chunk
    line = bytes(buf[: buf.index(b"\n")])
    try:
        ready = json.loads(line)
    except ValueError as exc:
        raise NodeRpcError(f"unparsable ready line {line[:300]!r}\n{_tail(stderr)}") from exc
    if not isinstance(ready, dict) or ready.get("ready") is not True:
        raise NodeRpcError(f"start failed: {line[:500]!r}\n{_tail(stderr)}")
    return ready


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def _node_process(
    script: Path, args: Sequence[str], *, node: str | None, timeout: float
) -> Iterator[NodeProcess]:
    exe = _node(node)
    with tempfile.TemporaryFile() as stderr:
        try:
            # stdin stays open: the script runs with --watch-stdin and exits at EOF, so it
            # dies with us even if we are killed.
            proc = subprocess.Popen(
                [exe, str(script), *args, "--watch-stdin"],
                cwd=NODE_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_env(),
                bufsize=0,
            )
        except OSError as exc:
            raise NodeRpcError(f"cannot start {exe} {script}: {exc}") from exc
        try:
            try:
                ready = _read_ready(proc, stderr, timeout)
            except NodeRpcError as exc:
                raise NodeRpcError(f"{script.name}: {exc}") from None
            yield NodeProcess(process=proc, ready=ready, stderr=stderr)
        finally:
            if proc.poll() is None:
                _stop(proc)
            else:
                proc.wait()
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None:
                        with suppress(OSError):
                            pipe.close()


@contextmanager
def calc_server(
    *,
    endpoint: str | None = None,
    servant: str = CALC_SERVANT,
    config: str | os.PathLike[str] | None = None,
    admin: bool | str = False,
    host: str = "127.0.0.1",
    node: str | None = None,
    timeout: float = 20.0,
) -> Iterator[NodeProcess]:
    """Run ``calc_server.js`` until the block ends; yield it once every adapter listens.

    Without ``endpoint`` and ``config`` it listens on ``tcp -h {host} -p 0 -t 60000``.
    ``config`` is a TARS config file (every ``<server>`` sub-domain is an adapter; all serve
    Calc). ``admin=True`` serves AdminObj on the config's ``local`` endpoint (or on a free
    port of ``host`` without ``config``); a string is the AdminObj endpoint itself.
    """
    if endpoint is not None and config is not None:
        raise ValueError("give endpoint or config, not both")
    args: list[str]
    if config is not None:
        args = ["--config", os.fspath(config)]
    else:
        args = ["--endpoint", endpoint or f"tcp -h {host} -p 0 -t 60000", "--servant", servant]
    if isinstance(admin, str):
        args += ["--admin", admin]
    elif admin:
        args += ["--admin"] if config is not None else ["--admin", f"tcp -h {host} -p 0 -t 3000"]
    with _node_process(_CALC_SERVER, args, node=node, timeout=timeout) as proc:
        yield proc


@contextmanager
def query_stub(
    objects: Mapping[str, str | Sequence[str]],
    *,
    host: str = "127.0.0.1",
    node: str | None = None,
    timeout: float = 20.0,
) -> Iterator[NodeProcess]:
    """Run ``query_stub.js`` answering QueryF lookups from ``objects`` (name -> endpoint(s)).

    The yielded process's ``proxy`` is the locator string for clients.
    """
    args = ["--endpoint", f"tcp -h {host} -p 0 -t 60000"]
    for name, eps in objects.items():
        for ep in [eps] if isinstance(eps, str) else eps:
            args += ["--object", f"{name}={ep}"]
    with _node_process(_QUERY_STUB, args, node=node, timeout=timeout) as proc:
        yield proc


def _run(cmd: Sequence[str], *, stdin: str | None, timeout: float) -> str:
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=NODE_DIR,
            input=None if stdin is None else stdin.encode(),
            capture_output=True,
            timeout=timeout,
            env=_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NodeRpcError(f"{cmd[1]} did not finish within {timeout:.1f} s") from exc
    except OSError as exc:
        raise NodeRpcError(f"cannot run {cmd[0]} {cmd[1]}: {exc}") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")[-3000:]
        raise NodeRpcError(f"{Path(cmd[1]).name} exited with {proc.returncode}:\n{err}")
    return proc.stdout.decode("utf-8")


def run_calc_client(
    calls: Sequence[Mapping[str, Any]],
    *,
    proxy: str | None = None,
    admin: str | None = None,
    locator: str | None = None,
    timeout_ms: int = 3000,
    tup: Literal[0, 2, 3] = 0,
    node: str | None = None,
    process_timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Run ``calc_client.js`` with ``calls``; return one result dict per call, in order.

    ``proxy`` is the Calc object (``Obj@endpoint``, or a bare name with ``locator``), ``admin``
    the AdminF object for calls with ``"target": "admin"``. ``tup`` 2/3 sends TUP instead of
    plain TARS. RPC failures are results (``ok`` false), not exceptions.
    """
    if proxy is None and admin is None:
        raise ValueError("proxy or admin is required")
    cmd = [_node(node), str(_CALC_CLIENT), "--timeout", str(timeout_ms)]
    if proxy is not None:
        cmd += ["--proxy", proxy]
    if admin is not None:
        cmd += ["--admin", admin]
    if locator is not None:
        cmd += ["--locator", locator]
    if tup:
        cmd += ["--tup", str(tup)]
    if process_timeout is None:
        per_call = sum(float(c.get("timeout", timeout_ms)) for c in calls) / 1000.0
        process_timeout = 20.0 + per_call
    out = _run(cmd, stdin=json.dumps(list(calls), allow_nan=False), timeout=process_timeout)
    results: list[dict[str, Any]] = []
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise NodeRpcError(f"calc_client.js printed {line[:300]!r}") from exc
        if not isinstance(item, dict):
            raise NodeRpcError(f"calc_client.js printed {line[:300]!r}")
        results.append(item)
    if len(results) != len(calls):
        raise NodeRpcError(f"calc_client.js gave {len(results)} results for {len(calls)} calls")
    return results


def run_rpc_load(
    proxy: str,
    *,
    call: Literal["add", "echo4k"] = "add",
    concurrency: int = 1,
    seconds: float = 1.0,
    warmup: float = 0.5,
    timeout_ms: int = 3000,
    connections: int = 1,
    locator: str | None = None,
    node: str | None = None,
) -> dict[str, Any]:
    """Run ``rpc_load.js`` against ``proxy`` and return its JSON result."""
    cmd = [
        _node(node), str(_RPC_LOAD), "--proxy", proxy, "--call", call,
        "--concurrency", str(concurrency), "--seconds", repr(float(seconds)),
        "--warmup", repr(float(warmup)), "--timeout", str(timeout_ms),
        "--connections", str(connections),
    ]  # fmt: skip
    if locator is not None:
        cmd += ["--locator", locator]
    out = _run(cmd, stdin=None, timeout=30.0 + seconds + warmup + timeout_ms / 1000.0)
    lines = [line for line in out.splitlines() if line.strip()]
    if len(lines) != 1:
        raise NodeRpcError(f"rpc_load.js printed {out[:500]!r}")
    try:
        result = json.loads(lines[0])
    except ValueError as exc:
        raise NodeRpcError(f"rpc_load.js printed {lines[0][:300]!r}") from exc
    if not isinstance(result, dict):
        raise NodeRpcError(f"rpc_load.js printed {lines[0][:300]!r}")
    return result
