"""Registry benchmark: two ``tarsregistry`` processes on one fresh MariaDB database, one table.

1. Creates a database ``k8stars_bench_<random>`` on the MariaDB server (``--db``, else
   ``K8STARS_TEST_MYSQL_URL``, else what ``scripts/mariadb.sh`` prints) and starts two registry
   replicas (A and B: ``python -m k8stars.registry.main --db ...``) on it.
2. Registers 1,000 servers × 10 pods = 10,000 instances (one onStartup each: own pod IP, one
   adapter) through replica A's Registry servant with our Python client (``--reg-concurrency``
   calls in flight), and waits until replica B answers with all of them.
3. QueryF: ``findObjectByIdInSameGroup`` on random servants, driven by the TarsNode @tars/rpc
   client (``tests/interop/node/registry_load.js``, the QueryF proxy of @tars/registry), N
   calls in flight; lookups/s and p50/p99. For reference, the same load generator against a
   TarsNode (@tars/rpc) Calc server shows what the client side can drive on this machine.
4. keepAlive: the same Node script sends heartbeats (state active, random instance) to replica
   A for ``--hb-seconds``; heartbeats/s, and the database statements per heartbeat from
   MariaDB's ``Com_update`` / ``Questions`` deltas (all sessions: both replicas' polls too).
5. Propagation: writes through A -- keepAlive(inactive) and keepAlive(active) of a registered
   instance, onStartup of a new pod, in turn -- while B's QueryF answer is polled (every
   2 ms) until it shows the write; 20 samples, median / max (B polls the database every 0.5 s).

Everything started is stopped and the database dropped, also on errors or Ctrl-C.

    python benchmarks/registry.py [--quick] [--db mysql+pymysql://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402
from tests.interop.node_peer import NODE_DIR, ensure_node_modules, find_node  # noqa: E402
from tests.interop.node_rpc import calc_server, run_rpc_load  # noqa: E402

from k8stars.tars.client import Communicator  # noqa: E402
from k8stars.tars.idl.loader import framework  # noqa: E402

IDL = framework()
QUERY = IDL.interface("tars.QueryF")
REGISTRY = IDL.interface("tars.tarsregistry")
StartupReq: Any = IDL.struct("tars.onStartupReq")
AdapterConf: Any = IDL.struct("tars.AdapterConf")
KeepAliveReq: Any = IDL.struct("tars.keepAliveReq")

LOAD_JS = NODE_DIR / "registry_load.js"
APP = "Bench"

GOAL_LOOKUPS = 30_000.0
GOAL_BEATS = 10_000.0
GOAL_PROPAGATION_S = 1.0


class BenchError(Exception):
    """Something the benchmark needs failed (one line for the user)."""


# -- the instances ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    server: str
    node: str

    @property
    def servant(self) -> str:
        return f"{APP}.{self.server}.Obj"

    @property
    def endpoint(self) -> str:
        return f"tcp -h {self.node} -p 10000 -t 60000"


def instances(servers: int, pods: int) -> list[Instance]:
    """``servers`` × ``pods``; every pod its own IP (node), as under K8STARS."""
    out = []
    for pod in range(pods):
        for i in range(servers):
            out.append(Instance(f"S{i:05d}", f"10.{pod}.{i // 250}.{i % 250 + 1}"))
    return out


# -- processes ----------------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read()).decode()


@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes]
    query_port: int
    registry_port: int
    metrics_port: int
    stderr: IO[bytes] = field(repr=False)

    @property
    def query_proxy(self) -> str:
        return f"tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {self.query_port} -t 60000"

    @property
    def registry_proxy(self) -> str:
        return f"tars.tarsregistry.Registry@tcp -h 127.0.0.1 -p {self.registry_port} -t 60000"

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in http_get(f"http://127.0.0.1:{self.metrics_port}/metrics").splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def stderr_tail(self, limit: int = 2000) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-limit:].decode("utf-8", "replace")


@contextmanager
def replica(name: str, db_url: str, log_level: str) -> Iterator[Replica]:
    q, r, m = free_ports(3)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DB_", "TARS_REGISTRY", "POD_IP"))}  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    args = [sys.executable, "-m", "k8stars.registry.main", "--db", db_url, "--host", "127.0.0.1",
            "--advertise-host", "127.0.0.1", "--query-port", str(q), "--registry-port", str(r),
            "--admin-port", "0", "--metrics-port", str(m), "--log-level", log_level]  # fmt: skip
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
        rep = Replica(name, proc, q, r, m, stderr)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise BenchError(f"replica {name} exited: {rep.stderr_tail()}")
                try:
                    if http_get(f"http://127.0.0.1:{m}/healthz", 1).startswith("ok"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"replica {name} not healthy within 30 s")
                time.sleep(0.05)
            yield rep
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# -- the database -------------------------------------------------------------------------------


def mariadb_base(arg: str | None) -> str:
    if arg:
        return arg
    env = os.environ.get("K8STARS_TEST_MYSQL_URL")
    if env:
        return env
    script = ROOT / "scripts" / "mariadb.sh"
    try:
        out = subprocess.run([str(script)], capture_output=True, text=True, timeout=300,
                             check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"no MariaDB (give --db): {exc}") from None
    return out.stdout.strip().splitlines()[-1]


@contextmanager
def fresh_database(base: str) -> Iterator[tuple[str, Engine]]:
    """A new database on the server of ``base``; yields its URL and an engine on the server."""
    url = make_url(base)
    name = f"k8stars_bench_{uuid.uuid4().hex[:10]}"
    root = create_engine(url.set(database=""), poolclass=NullPool)
    with root.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4")
    try:
        yield url.set(database=name).render_as_string(hide_password=False), root
    finally:
        with root.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        root.dispose()


def db_counters(engine: Engine) -> dict[str, int]:
    names = ("Com_update", "Com_insert", "Com_select", "Com_delete", "Com_commit", "Questions")
    with engine.connect() as conn:
        rows = conn.execute(text("SHOW GLOBAL STATUS WHERE Variable_name IN :names"),
                            {"names": names}).all()  # fmt: skip
    return {str(k): int(v) for k, v in rows}


# -- registration -------------------------------------------------------------------------------


async def register(rep: Replica, items: Sequence[Instance], concurrency: int) -> float:
    """One onStartup per instance through ``rep``; returns the seconds it took."""
    async with Communicator() as comm:
        reg = comm.proxy(REGISTRY, rep.registry_proxy)
        queue = list(items)
        queue.reverse()

        async def worker() -> None:
            while queue:
                inst = queue.pop()
                req = StartupReq(nodeName=inst.node, application=APP, server=inst.server,
                                 adapters=[AdapterConf(servant=inst.servant,
                                                       endpoint=inst.endpoint)])  # fmt: skip
                await reg.onStartup(req, _timeout=60.0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def active_instances(rep: Replica) -> float:
    return rep.metrics().get('tarsregistry_instances{state="active"}', 0.0)


def wait_instances(rep: Replica, n: float, timeout: float) -> float:
    """Wait until ``rep`` shows ``n`` active instances; returns the seconds waited."""
    started = time.monotonic()
    while True:
        have = active_instances(rep)
        if have >= n:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise BenchError(f"replica {rep.name} shows {have:.0f} of {n} instances")
        time.sleep(0.1)


# -- Node load ----------------------------------------------------------------------------------


def node_load(call: str, proxy: str, ids: Path, concurrency: int, seconds: float,
              connections: int = 1, warmup: float = 1.0) -> dict[str, Any]:  # fmt: skip
    exe = find_node()
    if exe is None:
        raise BenchError("node not found (set K8STARS_NODE or put node on PATH)")
    ensure_node_modules()
    args = [exe, str(LOAD_JS), "--proxy", proxy, "--call", call, "--ids", str(ids),
            "--concurrency", str(concurrency), "--seconds", str(seconds), "--warmup", str(warmup),
            "--connections", str(connections), "--timeout", "5000"]  # fmt: skip
    out = subprocess.run(args, cwd=NODE_DIR, capture_output=True, text=True,
                         timeout=seconds + warmup + 60)  # fmt: skip
    if out.returncode != 0:
        raise BenchError(f"registry_load.js failed ({out.returncode}): {out.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def node_load_many(call: str, proxy: str, ids: Path, processes: int, concurrency: int,
                   seconds: float, connections: int = 1) -> dict[str, Any]:  # fmt: skip
    """``processes`` load generators at once; calls summed, latencies of the worst one."""
    if processes == 1:
        return node_load(call, proxy, ids, concurrency, seconds, connections)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(processes) as pool:
        results = list(pool.map(lambda _: node_load(call, proxy, ids, concurrency, seconds,
                                                    connections), range(processes)))  # fmt: skip
    total = dict(results[0])
    total["calls"] = sum(r["calls"] for r in results)
    total["errors"] = sum(r["errors"] for r in results)
    total["calls_per_s"] = sum(r["calls_per_s"] for r in results)
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        total[key] = max((r[key] or 0.0) for r in results)
    total["concurrency"] = concurrency * processes
    return total


# -- propagation --------------------------------------------------------------------------------


async def propagation(
    a: Replica, b: Replica, items: Sequence[Instance], samples: int
) -> dict[str, list[float]]:
    """Seconds from sending a write to A until B's QueryF answer shows it, by kind of write:
    keepAlive(inactive) and keepAlive(active) of a registered instance (found by B through the
    window checksum) and onStartup of a new pod (through the change log)."""
    rng = random.Random(7)
    delays: dict[str, list[float]] = {}
    async with Communicator() as comm:
        reg = comm.proxy(REGISTRY, a.registry_proxy)
        query = comm.proxy(QUERY, b.query_proxy)
        picked = rng.sample(list(items), samples)
        for n in range(samples):
            inst = picked[n - n % 3]  # inactive, active again, then a new pod of that server
            kind = ("keepAlive inactive", "keepAlive active", "onStartup new pod")[n % 3]
            await asyncio.sleep(rng.uniform(0.05, 0.6))  # no phase lock with B's polls
            started = time.perf_counter()
            if n % 3 == 2:
                inst = Instance(inst.server, f"10.250.{n // 250}.{n % 250 + 1}")
                req = StartupReq(nodeName=inst.node, application=APP, server=inst.server,
                                 adapters=[AdapterConf(servant=inst.servant,
                                                       endpoint=inst.endpoint)])  # fmt: skip
                await reg.onStartup(req)
            else:
                state = "inactive" if n % 3 == 0 else "active"
                await reg.keepAlive(KeepAliveReq(nodeName=inst.node, state=state,
                                                 application=APP, server=inst.server))  # fmt: skip
            want_active = n % 3 != 0
            while True:
                _, active, inactive = await query.findObjectByIdInSameGroup(inst.servant)
                if inst.node in {e.host for e in (active if want_active else inactive)}:
                    break
                if time.perf_counter() - started > 10:
                    raise BenchError(f"replica B did not show {kind} of {inst} within 10 s")
                await asyncio.sleep(0.002)
            delays.setdefault(kind, []).append(time.perf_counter() - started)
    return delays


# -- main ---------------------------------------------------------------------------------------


def _fmt_ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="MariaDB server URL (a fresh database is made and dropped)")
    parser.add_argument("--quick", action="store_true", help="shorter run, fewer instances")
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10, help="pods (nodes) per server")
    parser.add_argument("--reg-concurrency", type=int, default=64)
    parser.add_argument("--query-concurrency", type=int, default=100)
    parser.add_argument("--hb-concurrency", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0, help="QueryF measurement")
    parser.add_argument("--hb-seconds", type=float, default=10.0, help="keepAlive measurement")
    parser.add_argument("--samples", type=int, default=20, help="propagation samples")
    parser.add_argument("--log-level", default="WARNING", help="of the registry processes")
    args = parser.parse_args(argv)
    if args.quick:
        args.servers, args.seconds, args.hb_seconds = min(args.servers, 200), 2.0, 3.0
        args.samples = min(args.samples, 6)
    try:
        return run(args)
    except BenchError as exc:
        print(f"registry benchmark: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace) -> int:
    items = instances(args.servers, args.pods)
    base = mariadb_base(args.db)
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    with ExitStack() as stack:
        db_url, root = stack.enter_context(fresh_database(base))
        a = stack.enter_context(replica("A", db_url, args.log_level))
        b = stack.enter_context(replica("B", db_url, args.log_level))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="regbench")))
        servants = tmp / "servants.txt"
        servants.write_text("".join(f"{APP}.S{i:05d}.Obj\n" for i in range(args.servers)))
        beats = tmp / "beats.txt"
        beats.write_text("".join(f"{i.node} {APP} {i.server}\n" for i in items))

        # 1. registration
        time.sleep(1.0)  # both replicas show each other's own servants
        own_a, own_b = active_instances(a), active_instances(b)
        before = db_counters(root)
        took = asyncio.run(register(a, items, args.reg_concurrency))
        after = db_counters(root)
        seen_b = wait_instances(b, own_b + len(items), 60)
        wait_instances(a, own_a + len(items), 10)
        rate = len(items) / took
        rows.append((f"onStartup through A, {len(items)} instances (Python client, "
                     f"{args.reg_concurrency} in flight)",
                     f"{took:.1f} s = {rate:,.0f}/s", "< 60 s",
                     "PASS" if took < 60 else "MISS"))  # fmt: skip
        notes.append(f"replica B showed all {len(items)} instances {seen_b:.2f} s after the "
                     "last onStartup returned")  # fmt: skip
        per_reg = {k: (after[k] - before[k]) / len(items) for k in after}
        notes.append(f"registration: {per_reg['Com_commit']:.3f} COMMIT, "
                     f"{per_reg['Com_insert']:.3f} INSERT and {per_reg['Questions']:.2f} "
                     "statements in all per onStartup on the database server (both replicas, "
                     "polls included)")  # fmt: skip

        # 2. QueryF lookups
        q = node_load("find", a.query_proxy, servants, args.query_concurrency, args.seconds)
        rows.append(
            (
                f"QueryF findObjectByIdInSameGroup (Node @tars/rpc client, "
                f"{q['concurrency']} in flight)",
                f"{q['calls_per_s']:,.0f}/s  p50 {_fmt_ms(q['p50_ms'])}  "
                f"p99 {_fmt_ms(q['p99_ms'])}",
                f">= {GOAL_LOOKUPS:,.0f}/s",
                "PASS" if q["calls_per_s"] >= GOAL_LOOKUPS and not q["errors"] else "MISS",
            )
        )
        if q["errors"]:
            notes.append(f"QueryF errors: {q['errors']} {q['error_codes']}")
        if not args.quick:
            with calc_server() as peer:
                ref = run_rpc_load(peer.proxy, call="add", concurrency=args.query_concurrency,
                                   seconds=args.seconds / 2, warmup=1.0)  # fmt: skip
            rows.append(("  ceiling: @tars/rpc client vs TarsNode Calc server (rpc_load.js add)",
                         f"{ref['calls_per_s']:,.0f}/s  p50 {_fmt_ms(ref['p50_ms'])}  "
                         f"p99 {_fmt_ms(ref['p99_ms'])}", "-", ""))  # fmt: skip

        # 3. keepAlive
        before, m0 = db_counters(root), a.metrics()
        hb = node_load("keepalive", a.registry_proxy, beats, args.hb_concurrency, args.hb_seconds)
        time.sleep(0.5)  # the last batch is written
        after, m1 = db_counters(root), a.metrics()
        written = m1.get('tarsregistry_heartbeats_total{result="written"}', 0) - m0.get(
            'tarsregistry_heartbeats_total{result="written"}', 0
        )
        accepted = m1.get('tarsregistry_heartbeats_total{result="accepted"}', 0) - m0.get(
            'tarsregistry_heartbeats_total{result="accepted"}', 0
        )
        updates = after["Com_update"] - before["Com_update"]
        questions = after["Questions"] - before["Questions"]
        per = updates / accepted if accepted else float("nan")
        rows.append(
            (
                f"keepAlive through A (Node @tars/rpc client, {hb['concurrency']} in "
                f"flight, {args.hb_seconds:g} s)",
                f"{hb['calls_per_s']:,.0f}/s  p50 {_fmt_ms(hb['p50_ms'])}  "
                f"p99 {_fmt_ms(hb['p99_ms'])}",
                f">= {GOAL_BEATS:,.0f}/s",
                "PASS" if hb["calls_per_s"] >= GOAL_BEATS and not hb["errors"] else "MISS",
            )
        )
        pending = m1.get('tarsregistry_pending_writes{kind="heartbeat"}', 0)
        rows.append(("  database statements per heartbeat (UPDATE / all statements)",
                     f"{per:.4f} / {questions / accepted if accepted else float('nan'):.4f}",
                     "batched", "PASS" if per < 0.01 and not pending else "MISS"))  # fmt: skip
        notes.append(f"heartbeats: {accepted:.0f} accepted, {written:.0f} rows written (coalesced "
                     f"per instance per batch), {updates} UPDATE and {questions} statements in "
                     "all on the database server (both replicas, polls included); "
                     f"{pending:.0f} pending 0.5 s after the load")  # fmt: skip
        if hb["errors"]:
            notes.append(f"keepAlive errors: {hb['errors']} {hb['error_codes']}")

        # 4. propagation
        by_kind = asyncio.run(propagation(a, b, items, args.samples))
        delays = [d for kind in by_kind.values() for d in kind]
        med, worst = statistics.median(delays), max(delays)
        rows.append(
            (
                f"propagation A -> B ({len(delays)} writes, poll every 0.5 s)",
                f"median {med * 1000:.0f} ms  max {worst * 1000:.0f} ms",
                f"<= {GOAL_PROPAGATION_S:g} s",
                "PASS" if worst <= GOAL_PROPAGATION_S else "MISS",
            )
        )
        notes.append("propagation by write: " + ", ".join(
            f"{kind} median {statistics.median(d) * 1000:.0f} / max {max(d) * 1000:.0f} ms"
            for kind, d in by_kind.items()))  # fmt: skip

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(
        f"\nk8stars registry, 2 replicas on one MariaDB, {len(items)} instances "
        f"({args.servers} servers x {args.pods} pods), {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'measure':<{width}}  {'result':<{vwidth}}  {'goal':<11}  verdict")
    for name, value, goal, verdict in rows:
        print(f"{name:<{width}}  {value:<{vwidth}}  {goal:<11}  {verdict}")
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
