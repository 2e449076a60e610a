"""Helpers of the local-runner tests: run ``k8stars`` in a subprocess, free ports, leftovers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from k8stars.local.state import StatePaths, find_processes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def registry_options() -> list[str]:
    """``up`` options putting the registry on free ports (tests never use the defaults)."""
    q, r, a, m = free_ports(4)
    return ["--query-port", str(q), "--registry-port", str(r), "--admin-port", str(a),
            "--metrics-port", str(m)]


def k8stars(state_dir: Path, *args: str, timeout: float = 120.0,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``k8stars --state-dir STATE ARGS...``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "k8stars.local.main", "--state-dir", str(state_dir), *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, check=False,
        env=_env())


def k8stars_popen(state_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "k8stars.local.main", "--state-dir", str(state_dir), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARS_", "POD_", "K8STARS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def state(state_dir: Path) -> dict[str, Any]:
    with open(StatePaths(state_dir).state, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def leftovers(state_dir: Path) -> list[int]:
    """Live processes started by the runner of ``state_dir``."""
    return find_processes(str(StatePaths(state_dir).root))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:
        return False


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def node_hello_copy(tmp: Path) -> Path | None:
    """examples/node-hello with the interop tests' node_modules (None without Node)."""
    import shutil

    from tests.interop.node_peer import ensure_node_modules, node_available

    if not node_available():
        return None
    ensure_node_modules()
    target = tmp / "node-hello"
    shutil.copytree(EXAMPLES / "node-hello", target,
                    ignore=shutil.ignore_patterns("node_modules"))
    own = EXAMPLES / "node-hello" / "node_modules"
    os.symlink(own if own.is_dir() else NODE_MODULES, target / "node_modules")
    return target
