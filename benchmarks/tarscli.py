"""tarscli figures: the readiness probe's wall time and the supervisor's idle cost, in one run.

1. ``tarscli hzcheck`` against ``python -S -c pass`` (and ``python -c pass``), round-robin,
   median and p95: the runner of ``benchmarks/hzcheck.py`` (imported, not copied).
2. ``tarscli supervisor`` supervising a real service (our Python Calc server, from
   ``tests/cli/test_supervisor_service.py``) registered in a real ``tarsregistry`` (SQLite), with
   the production timings (TARS_CHECK_INTERVAL 10s, TARS_REPORT_INTERVAL 30s): once the service
   is active and a warm-up has passed, the supervisor's RSS and the CPU it uses over
   ``--seconds`` (default 20), from ``/proc/<pid>/task/*/schedstat`` (nanoseconds; the clock
   ticks of ``/proc/<pid>/stat`` where schedstat is missing).

    python benchmarks/tarscli.py [--runs 50] [--seconds 20]

Goals: hzcheck median <= 20 ms; supervisor <= 25 MB RSS and <= 0.2 % of a core idle.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hzcheck as hz  # benchmarks/hzcheck.py

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVICE = ROOT / "tests" / "cli" / "test_supervisor_service.py"
RSS_GOAL_MB = 25.0
CPU_GOAL_PERCENT = 0.2

META = """\
application: Bench
server: PyServer
adapters:
  - object: CalcObj
"""


def hzcheck_rows(runs: int) -> list[tuple[str, float, float]]:
    """(label, median ms, p95 ms) of the baseline, python -c pass and tarscli hzcheck."""
    with tempfile.TemporaryDirectory(prefix="tarscli-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tars_path = tmp / "tars"
        (tars_path / "data").mkdir(parents=True)
        (tars_path / "data" / "check_status").write_text("active")
        script, _ = hz.find_script(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARS")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["TARS_PATH"] = str(tars_path)
        cached = dict(env, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
        rows = [
            ("python -S -c pass (baseline)", [sys.executable, "-S", "-c", "pass"], env),
            ("python -c pass", [sys.executable, "-c", "pass"], env),
            ("tarscli hzcheck", [str(script), "hzcheck"], cached),
        ]
        for _, cmd, row_env in rows:  # warm-up, and the bytecode cache of hzcheck
            for _ in range(3):
                hz.run_once(cmd, row_env, 0)
        times: dict[str, list[float]] = {label: [] for label, _, _ in rows}
        for _ in range(runs):
            for label, cmd, row_env in rows:
                times[label].append(hz.run_once(cmd, row_env, 0))
    return [(label, statistics.median(v), hz.percentile(v, 0.95)) for label, v in times.items()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far."""
    total_ns = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total_ns += int(fh.read().split()[0])
        if total_ns:
            return total_ns / 1e9
    except OSError:
        pass
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> dict[str, int]:
    found = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def supervisor_idle(seconds: float, warmup: float) -> dict[str, float]:
    """Start a registry and a supervised service; measure the idle supervisor."""
    tmp = Path(tempfile.mkdtemp(prefix="tarscli-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        query, registry = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TARS", "POD_", "DB_"))}
        with open(tmp / "tarsregistry.log", "wb") as log:
            procs.append(subprocess.Popen(
                [str(BIN / "tarsregistry"), "--host", "127.0.0.1", "--query-port", str(query),
                 "--registry-port", str(registry), "--admin-port", "0", "--metrics-port", "0",
                 "--db", f"sqlite:///{tmp / 'db.sqlite'}"],
                cwd=tmp, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        wait_until(lambda: listening(query), 20, "tarsregistry")
        tars_path = tmp / "pod"
        (tars_path / "bin").mkdir(parents=True)
        (tars_path / "bin" / "_server_meta.yaml").write_text(META)
        start = tars_path / "bin" / "start.sh"
        start.write_text(f"#!/bin/sh\nexec {sys.executable} {SERVICE} "
                         f'--config "$TARS_PATH/conf/PyServer.conf"\n')
        start.chmod(0o755)
        pod_env = dict(env, TARS_PATH=str(tars_path), POD_IP="127.0.0.9", PYTHONPATH=str(ROOT),
                       TARS_LOCATOR=f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {query}",
                       POD_NAME="bench-0", POD_UID="bench-uid-0")
        with open(tmp / "supervisor.log", "wb") as log:
            sup = subprocess.Popen([str(BIN / "tarscli"), "supervisor"], env=pod_env,
                                   stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        procs.append(sup)
        state = tars_path / "data" / "check_status"
        wait_until(lambda: state.exists() and state.read_text() == "active", 60,
                   "the service to become active")
        time.sleep(warmup)
        before_cpu, before = cpu_seconds(sup.pid), time.monotonic()
        peak_rss = 0
        end = before + seconds
        while time.monotonic() < end:
            peak_rss = max(peak_rss, memory_kb(sup.pid)["VmRSS"])
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        cpu = cpu_seconds(sup.pid) - before_cpu
        elapsed = time.monotonic() - before
        mem = memory_kb(sup.pid)
        if sup.poll() is not None:
            raise SystemExit(f"the supervisor exited:\n{(tmp / 'supervisor.log').read_text()}")
        return {
            "rss_mb": mem["VmRSS"] / 1024,
            "peak_rss_mb": max(peak_rss, mem["VmRSS"]) / 1024,
            "anon_mb": mem.get("RssAnon", 0) / 1024,
            "file_mb": mem.get("RssFile", 0) / 1024,
            "cpu_ms_per_min": cpu / elapsed * 60_000,
            "cpu_percent": cpu / elapsed * 100,
            "seconds": elapsed,
        }
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="hzcheck runs (default 50)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="supervisor idle measurement (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="idle before measuring")
    args = parser.parse_args()

    rows = hzcheck_rows(args.runs)
    idle = supervisor_idle(args.seconds, args.warmup)
    baseline = rows[0][1]
    hz_median, hz_p95 = rows[2][1], rows[2][2]

    print(f"tarscli figures ({sys.executable}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs)")
    print()
    print(f"{'hzcheck start-up (' + str(args.runs) + ' runs each)':<36} {'median ms':>10} "
          f"{'p95 ms':>8} {'x baseline':>11}")
    for label, median, p95 in rows:
        print(f"{label:<36} {median:>10.1f} {p95:>8.1f} {median / baseline:>11.2f}")
    print()
    print(f"{'figure':<44} {'measured':>12} {'goal':>10}  verdict")
    table = [
        ("hzcheck median wall time", f"{hz_median:.1f} ms", f"<= {hz.GOAL_MS:.0f} ms",
         hz_median <= hz.GOAL_MS),
        ("hzcheck p95 wall time", f"{hz_p95:.1f} ms", "", None),
        ("supervisor idle RSS", f"{idle['rss_mb']:.1f} MB", f"<= {RSS_GOAL_MB:.0f} MB",
         idle["peak_rss_mb"] <= RSS_GOAL_MB),
        ("  (anonymous / file-backed)", f"{idle['anon_mb']:.1f}/{idle['file_mb']:.1f}", "",
         None),
        (f"supervisor CPU over {idle['seconds']:.0f} s idle", f"{idle['cpu_percent']:.3f} %",
         f"<= {CPU_GOAL_PERCENT} %", idle["cpu_percent"] <= CPU_GOAL_PERCENT),
        ("  CPU per minute", f"{idle['cpu_ms_per_min']:.0f} ms", "", None),
    ]
    for label, value, goal, ok in table:
        verdict = "" if ok is None else ("meets" if ok else "MISSES")
        print(f"{label:<44} {value:>12} {goal:>10}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
