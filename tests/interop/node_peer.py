"""Drive TarsNode's ``@tars/stream`` as an independent TARS codec peer.

``NodeStreamPeer`` runs ``tests/interop/node/stream_peer.js`` (one long-lived ``node`` process)
and talks JSON lines with it. Values use the JSON mapping documented at the top of
``stream_peer.js``: ``long`` as decimal strings, ``vector<byte>`` as lowercase hex, maps as lists
of ``[key, value]`` pairs, enums as ints, structs as objects keyed by IDL field name. Every type
is encoded as a bare field sequence (no StructBegin/StructEnd).

Types: ``"AllTypes"``, ``"Inner"`` (``tests/interop/idl/Interop.tars``), ``"EndpointF"`` and
``"QueryAnswer"`` (the response sBuffer of ``QueryF.findObjectByIdInSameGroup``).

If ``node_modules`` is missing, ``npm ci`` runs once in ``tests/interop/node`` (so a fresh
checkout works). ``K8STARS_NODE`` / ``K8STARS_NPM`` override the executables found on PATH.
POSIX only (``selectors`` on pipes). Standard library only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, cast

__all__ = [
    "NODE_DIR",
    "NodePeerError",
    "NodeStreamPeer",
    "PeerType",
    "ensure_node_modules",
    "find_node",
    "find_npm",
    "node_available",
]

PeerType = Literal["AllTypes", "Inner", "EndpointF", "QueryAnswer"]

NODE_DIR = Path(__file__).resolve().parent / "node"
_SCRIPT = NODE_DIR / "stream_peer.js"
_MARKER = NODE_DIR / "node_modules" / "@tars" / "stream" / "package.json"
_MIN_NODE_MAJOR = 18


class NodePeerError(RuntimeError):
    """The Node peer could not be started, failed, or answered ``{"ok": false}``."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["NODE_NO_WARNINGS"] = "1"
    return env


def find_node() -> str | None:
    """Path of a usable ``node`` executable (``$K8STARS_NODE``, else PATH), or None."""
    override = os.environ.get("K8STARS_NODE")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("node") or shutil.which("nodejs")


def find_npm(node: str | None = None) -> str | None:
    """Path of ``npm`` (``$K8STARS_NPM``, next to ``node``, else PATH), or None."""
    override = os.environ.get("K8STARS_NPM")
    if override:
        return override if os.access(override, os.X_OK) else None
    if node:
        sibling = Path(node).resolve().parent / "npm"
        if sibling.is_file() and os.access(sibling, os.X_OK):
            return str(sibling)
    return shutil.which("npm")


@functools.cache
def _node_major(node: str) -> int | None:
    try:
        out = subprocess.run(
            [node, "--version"],
            capture_output=True,
            text=True,
            timeout=15,
            env=_env(),
            check=True,
        ).stdout.strip()
        return int(out.lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def node_available() -> bool:
    """True if Node (>= 18) runs here and the npm packages are installed or installable."""
    node = find_node()
    if node is None:
        return False
    major = _node_major(node)
    if major is None or major < _MIN_NODE_MAJOR:
        return False
    return _MARKER.is_file() or find_npm(node) is not None


@contextmanager
def _install_lock() -> Iterator[None]:
    """Serialise ``npm ci`` between processes (e.g. pytest-xdist workers)."""
    digest = hashlib.sha1(str(NODE_DIR).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"k8stars-npm-ci-{digest}.lock"
    with open(path, "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def ensure_node_modules(timeout: float = 600.0) -> None:
    """Run ``npm ci`` in ``tests/interop/node`` if ``node_modules`` is missing."""
    if _MARKER.is_file():
        return
    with _install_lock():
        if _MARKER.is_file():
            return
        npm = find_npm(find_node())
        if npm is None:
            raise NodePeerError(f"node_modules missing in {NODE_DIR} and npm not found")
        cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        try:
            proc = subprocess.run(
                cmd,
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_env(),
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise NodePeerError(f"{' '.join(cmd)} failed in {NODE_DIR}: {exc}") from exc
        if proc.returncode != 0 or not _MARKER.is_file():
            tail = (proc.stderr or proc.stdout)[-2000:]
            raise NodePeerError(
                f"{' '.join(cmd)} failed in {NODE_DIR} (exit {proc.returncode}):\n{tail}"
            )


class NodeStreamPeer:
    """A running ``stream_peer.js``; use as a context manager.

    ``timeout`` bounds each request (``bench`` adds its own duration). After a timeout or a
    dead peer the process is killed and the object is unusable; ``{"ok": false}`` answers only
    raise ``NodePeerError`` and the peer stays usable.
    """

    def __init__(self, *, node: str | None = None, timeout: float = 30.0) -> None:
        self._node = node
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._selector: selectors.BaseSelector | None = None
        self._buf = bytearray()
        self._next_id = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> NodeStreamPeer:
        if self._proc is not None:
            return self
        node = self._node or find_node()
        if node is None:
            raise NodePeerError("node executable not found (set K8STARS_NODE or put node on PATH)")
        ensure_node_modules()
        # Lives as long as the process; closed in close().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [node, str(_SCRIPT)],
                cwd=NODE_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=_env(),
                bufsize=0,
            )
        except OSError as exc:
            self._stderr.close()
            self._stderr = None
            raise NodePeerError(f"cannot start {node} {_SCRIPT}: {exc}") from exc
        assert self._proc.stdout is not None
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._proc.stdout, selectors.EVENT_READ)
        return self

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
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
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._buf.clear()

    def __enter__(self) -> NodeStreamPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- protocol ----------------------------------------------------------------------------

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _die(self, message: str) -> NodePeerError:
        tail = self._stderr_tail()
        self._kill()
        return NodePeerError(message + (f"\nnode stderr:\n{tail}" if tail else ""))

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.close()

    def _read_line(self, timeout: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        assert self._selector is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._die(f"no answer from the node peer within {timeout:.1f} s")
            if not self._selector.select(remaining):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self._proc.poll()
                raise self._die(f"node peer exited (code {code})")
            self._buf += chunk

    def request(self, req: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request object; return the answer if ``ok`` is true."""
        if self._proc is None:
            self.start()
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        rid = self._next_id
        line = json.dumps({**req, "id": rid}, ensure_ascii=True, allow_nan=False) + "\n"
        try:
            self._proc.stdin.write(line.encode("ascii"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._die(f"cannot write to the node peer: {exc}") from exc
        raw = self._read_line(self._timeout if timeout is None else timeout)
        try:
            resp = json.loads(raw)
        except ValueError as exc:
            raise self._die(f"unparsable answer from the node peer: {raw[:200]!r}") from exc
        if not isinstance(resp, dict) or resp.get("id") != rid:
            raise self._die(f"out-of-step answer from the node peer: {raw[:200]!r}")
        if resp.get("ok") is not True:
            raise NodePeerError(f"node peer: {resp.get('error', 'unknown error')}")
        return cast(dict[str, Any], resp)

    # -- operations --------------------------------------------------------------------------

    def encode(self, type_name: PeerType, value: Mapping[str, Any]) -> bytes:
        """Encode a JSON-mapped value with @tars/stream (bare field sequence)."""
        resp = self.request({"op": "encode", "type": type_name, "value": value})
        return bytes.fromhex(resp["hex"])

    def decode(self, type_name: PeerType, data: bytes) -> dict[str, Any]:
        """Decode bytes with @tars/stream; return the JSON-mapped value (all fields)."""
        resp = self.request({"op": "decode", "type": type_name, "hex": bytes(data).hex()})
        return cast(dict[str, Any], resp["value"])

    def bench(
        self, type_name: PeerType, value: Mapping[str, Any], seconds: float = 1.0
    ) -> dict[str, Any]:
        """@tars/stream encode/decode rates: ``encode_per_s``, ``decode_per_s``, ``bytes``, ..."""
        resp = self.request(
            {"op": "bench", "type": type_name, "value": value, "seconds": seconds},
            timeout=self._timeout + 2.0 * (seconds + max(0.2, seconds / 4)),
        )
        resp.pop("ok", None)
        resp.pop("id", None)
        return resp

    def info(self) -> dict[str, Any]:
        """Node and @tars/stream versions and the supported type names."""
        resp = self.request({"op": "info"})
        resp.pop("ok", None)
        resp.pop("id", None)
        return resp
